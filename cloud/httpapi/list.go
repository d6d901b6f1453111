package httpapi

import (
	"strconv"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// renderedList is a page of the vehicle list with each vehicle's JSON
// written but for what the live store changes: its position and its
// distance from a near point. Each vehicle's head (up to its position) and
// tail (device and trouble codes) lie one after the other in buf. It is
// never modified once rendered, so that requests may share it.
type renderedList struct {
	buf   []byte
	ids   []string
	ends  []int             // ends[2i], ends[2i+1]: ends of vehicle i's head and tail in buf
	pos   []*cloud.Position // PostgreSQL's latest fix of each vehicle
	dists []*float64        // PostgreSQL's distance from the near point
	more  bool
}

// renderList renders a page of vehicles.
func renderList(vs []*cloud.Vehicle, more bool) *renderedList {
	l := &renderedList{buf: make([]byte, 0, 600*len(vs)), ids: make([]string, len(vs)), ends: make([]int, 0, 2*len(vs)),
		pos: make([]*cloud.Position, len(vs)), dists: make([]*float64, len(vs)), more: more}
	for i, v := range vs {
		j := toVehicleJSON(v)
		l.buf = appendVehicleHead(l.buf, &j)
		l.ends = append(l.ends, len(l.buf))
		l.buf = appendVehicleTail(l.buf, &j)
		l.ends = append(l.ends, len(l.buf))
		l.ids[i], l.pos[i], l.dists[i] = v.ID, v.Position, v.DistanceM
	}
	return l
}

// parts returns vehicle i's head and tail.
func (l *renderedList) parts(i int) (head, tail []byte) {
	start := 0
	if i > 0 {
		start = l.ends[2*i-1]
	}
	return l.buf[start:l.ends[2*i]], l.buf[l.ends[2*i]:l.ends[2*i+1]]
}

// newest returns the newer of PostgreSQL's latest fix and the live
// store's (nil when neither is known): the live store's on a tie, as it is
// the one written first.
func newest(pg *cloud.Position, st *cloud.VehicleState) *cloud.Position {
	if st != nil && (pg == nil || !st.Position.Time.Before(pg.Time)) {
		return &st.Position
	}
	return pg
}

// listCache keeps the PostgreSQL part of recent vehicle lists (rendered)
// for at most a TTL, per replica: within it, a dashboard polling the list
// of the whole fleet costs PostgreSQL one query. Positions are not taken
// from it: they are read afresh from the live store on every request (and
// a list whose live store fails is read from PostgreSQL afresh). A list
// asked for in the second half of its TTL is read again in the background
// (once), so that a list polled steadily is never waited for. Its zero
// value is ready, with the system clock.
type listCache struct {
	now   func() time.Time // nil: time.Now
	mu    sync.Mutex
	lists map[listKey]cachedList
}

// maxCachedLists bounds the lists a replica keeps (pages after cursors
// make many keys); expired ones are dropped first.
const maxCachedLists = 64

type listKey struct {
	online string // "", "true", "false"
	after  string
	limit  int
}

type cachedList struct {
	l         *renderedList
	at        time.Time // when its query started
	refreshed time.Time // when a read in the background was asked for; zero: none
}

func (c *listCache) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// get returns the list of k read less than ttl ago, or nil; and whether
// the caller should read it again in the background (and put it): it is
// past half its TTL and no other caller was told so within the TTL.
func (c *listCache) get(k listKey, ttl time.Duration) (*renderedList, bool) {
	if ttl <= 0 {
		return nil, false
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lists[k]
	if !ok || now.Sub(e.at) >= ttl || now.Before(e.at) {
		return nil, false
	}
	if now.Sub(e.at) < ttl/2 || (!e.refreshed.IsZero() && now.Sub(e.refreshed) < ttl) {
		return e.l, false
	}
	e.refreshed = now
	c.lists[k] = e
	return e.l, true
}

// put keeps l, whose query started at at, for ttl from then, unless a
// list of k read later is kept.
func (c *listCache) put(k listKey, l *renderedList, at time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lists == nil {
		c.lists = make(map[listKey]cachedList)
	}
	for key, e := range c.lists {
		if now.Sub(e.at) >= ttl {
			delete(c.lists, key)
		}
	}
	if e, ok := c.lists[k]; ok && e.at.After(at) {
		return
	}
	if _, ok := c.lists[k]; ok || len(c.lists) < maxCachedLists {
		c.lists[k] = cachedList{l: l, at: at}
	}
}

// cacheKey returns f's key, and false when f's list is not cached: one
// filtered by ids (those of the GEO index, which move all the time).
func cacheKey(f *cloud.VehicleFilter) (listKey, bool) {
	if f.IDs != nil || f.Near != nil || f.BBox != nil {
		return listKey{}, false
	}
	k := listKey{after: f.After, limit: f.Limit}
	if f.Online != nil {
		k.online = strconv.FormatBool(*f.Online)
	}
	return k, true
}
