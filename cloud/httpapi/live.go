package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// Defaults of a Hub (NewHub).
const (
	DefaultClientBuffer = 4096
	DefaultHubRetryMin  = 100 * time.Millisecond
	DefaultHubRetryMax  = 5 * time.Second
)

// Hub fans the live feed out to this replica's live streams: one
// subscription to the feed (Redis pub/sub) per replica, whatever the number
// of clients, each update encoded once. A client that does not keep up (its
// buffer of ClientBuffer updates fills) is dropped: its stream ends, and
// the browser's EventSource reconnects with Last-Event-ID and resumes from
// the feed's buffer. Create it with NewHub and Run it.
type Hub struct {
	Feed         cloud.LiveFeed
	Logger       *slog.Logger
	ClientBuffer int
	// RetryMin and RetryMax bound the backoff between subscriptions when
	// the feed fails; after one, the updates missed meanwhile are replayed.
	RetryMin, RetryMax time.Duration

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	where   map[string][2]float64 // each vehicle's last position seen (for bbox filters)
	last    string                // id of the last update delivered
	ready   atomic.Bool
	sent    atomic.Int64
	dropped atomic.Int64
}

// NewHub returns a Hub over feed with the defaults above.
func NewHub(feed cloud.LiveFeed) *Hub {
	return &Hub{Feed: feed, Logger: slog.New(slog.DiscardHandler), ClientBuffer: DefaultClientBuffer,
		RetryMin: DefaultHubRetryMin, RetryMax: DefaultHubRetryMax,
		subs: map[*subscriber]struct{}{}, where: map[string][2]float64{}}
}

// HubStats are a Hub's figures for the metrics.
type HubStats struct {
	Clients int   // live streams now
	Sent    int64 // updates handed to streams
	Dropped int64 // streams dropped for not keeping up
}

// Stats returns the hub's figures now.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	return HubStats{Clients: n, Sent: h.sent.Load(), Dropped: h.dropped.Load()}
}

// Ready reports whether the hub is subscribed to the feed.
func (h *Hub) Ready() bool { return h.ready.Load() }

// Run subscribes to the feed and fans out its updates until ctx is done; it
// returns nil then. A failed subscription is retried with backoff, and the
// updates missed meanwhile are replayed from the feed's buffer (streams
// that missed more than it holds get a reset event).
func (h *Hub) Run(ctx context.Context) error {
	for attempt := 0; ; {
		err := h.Feed.Listen(ctx, func() { h.onReady(ctx) }, h.deliver)
		h.ready.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		attempt++
		d := cloud.Backoff(h.RetryMin, h.RetryMax, attempt)
		if attempt&(attempt-1) == 0 {
			h.Logger.Warn("live feed subscription lost; retrying", "attempt", attempt, "backoff", d, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// onReady replays what was missed since the last update delivered.
func (h *Hub) onReady(ctx context.Context) {
	h.ready.Store(true)
	if h.last == "" {
		return
	}
	us, complete, err := h.Feed.Replay(ctx, h.last)
	if err != nil {
		h.Logger.Warn("live feed: replay after a lost subscription failed", "err", err)
		complete = false
	}
	if !complete {
		h.resetAll("the server missed updates")
	}
	for _, u := range us {
		h.deliver(u)
	}
}

// deliver fans one update out (it is called by one goroutine at a time).
func (h *Hub) deliver(u cloud.LiveUpdate) {
	if h.last != "" && cloud.CompareLiveIDs(u.ID, h.last) <= 0 {
		return // a replayed update already delivered
	}
	h.last = u.ID
	f, err := newFrame(u)
	if err != nil {
		h.Logger.Warn("live update not encoded", "id", u.ID, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.hasPos {
		h.where[f.vehicle] = [2]float64{f.lat, f.lon}
	} else if p, ok := h.where[f.vehicle]; ok {
		f.lat, f.lon, f.known = p[0], p[1], true
	}
	for s := range h.subs {
		if !s.filter.match(f) {
			continue
		}
		select {
		case s.ch <- f:
			h.sent.Add(1)
		default:
			h.drop(s)
		}
	}
}

// resetAll drops every stream with a reason: each client resumes and finds
// it missed updates.
func (h *Hub) resetAll(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.drop(s)
	}
	h.Logger.Warn("live streams reset", "reason", reason)
}

// drop ends a subscriber's stream (h.mu held).
func (h *Hub) drop(s *subscriber) {
	delete(h.subs, s)
	close(s.ch)
	h.dropped.Add(1)
}

func (h *Hub) subscribe(f liveFilter) *subscriber {
	s := &subscriber{filter: f, ch: make(chan *frame, max(h.ClientBuffer, 1))}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
	h.mu.Unlock()
}

// position of a vehicle as the hub last saw it.
func (h *Hub) position(vehicle string) ([2]float64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.where[vehicle]
	return p, ok
}

type subscriber struct {
	filter liveFilter
	ch     chan *frame // closed when the hub drops or forgets it
}

// frame is one update as a stream sends it, encoded once for all streams.
type frame struct {
	id      string
	kind    cloud.LiveKind
	vehicle string
	lat     float64
	lon     float64
	hasPos  bool // a position update
	known   bool // lat and lon hold the vehicle's last position
	data    []byte
}

type livePositionJSON struct {
	VehicleID string   `json:"vehicle_id"`
	StreamID  string   `json:"stream_id"`
	Seq       uint64   `json:"seq"`
	Time      Time     `json:"time"`
	Lat       float64  `json:"lat"`
	Lon       float64  `json:"lon"`
	SpeedMPS  *float64 `json:"speed_mps,omitempty"`
	CourseDeg *float64 `json:"course_deg,omitempty"`
}

type liveStatusJSON struct {
	VehicleID string      `json:"vehicle_id"`
	Device    *deviceJSON `json:"device"`
}

type liveEventJSON struct {
	VehicleID string    `json:"vehicle_id"`
	Event     eventJSON `json:"event"`
}

func newFrame(u cloud.LiveUpdate) (*frame, error) {
	f := &frame{id: u.ID, kind: u.Kind, vehicle: u.VehicleID}
	var v any
	switch {
	case u.Kind == cloud.LivePosition && u.Position != nil:
		p := u.Position
		f.lat, f.lon, f.hasPos, f.known = p.Lat, p.Lon, true, true
		v = livePositionJSON{VehicleID: u.VehicleID, StreamID: streamHex(p.StreamID), Seq: p.Seq, Time: Time(p.Time),
			Lat: p.Lat, Lon: p.Lon, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg}
	case u.Kind == cloud.LiveStatus && u.Status != nil:
		v = liveStatusJSON{VehicleID: u.VehicleID, Device: toDeviceJSON(u.Status)}
	case u.Kind == cloud.LiveEvent && u.Event != nil:
		v = liveEventJSON{VehicleID: u.VehicleID, Event: toEventJSON(u.Event)}
	default:
		return nil, cloud.Errorf(cloud.EINVALID, "live update %s of kind %q without its content", u.ID, u.Kind)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	f.data = make([]byte, 0, len(data)+len(u.ID)+len(u.Kind)+24)
	f.data = append(f.data, "id: "...)
	f.data = append(f.data, u.ID...)
	f.data = append(f.data, "\nevent: "...)
	f.data = append(f.data, u.Kind...)
	f.data = append(f.data, "\ndata: "...)
	f.data = append(f.data, data...)
	f.data = append(f.data, "\n\n"...)
	return f, nil
}

// liveFilter is what a stream asked for; empty parts let everything
// through.
type liveFilter struct {
	vehicles []string // sorted
	bbox     *cloud.BBox
	kinds    []cloud.LiveKind
}

func (l liveFilter) match(f *frame) bool {
	if len(l.kinds) > 0 && !slices.Contains(l.kinds, f.kind) {
		return false
	}
	if len(l.vehicles) > 0 {
		if _, ok := slices.BinarySearch(l.vehicles, f.vehicle); !ok {
			return false
		}
	}
	if l.bbox != nil && (!f.known || !l.bbox.Contains(f.lat, f.lon)) {
		return false
	}
	return true
}

// parseLiveFilter reads vehicles (ids, comma-separated), bbox and types.
func parseLiveFilter(r *http.Request) (liveFilter, error) {
	var l liveFilter
	q := r.URL.Query()
	if v := q.Get("vehicles"); v != "" {
		for _, id := range strings.Split(v, ",") {
			if err := validID(id); err != nil {
				return l, err
			}
			l.vehicles = append(l.vehicles, id)
		}
		slices.Sort(l.vehicles)
	}
	if q.Get("bbox") != "" {
		f, err := parseVehicleFilter(map[string][]string{"bbox": {q.Get("bbox")}})
		if err != nil {
			return l, err
		}
		l.bbox = f.BBox
	}
	if v := q.Get("types"); v != "" {
		for _, k := range strings.Split(v, ",") {
			kind := cloud.LiveKind(k)
			if kind != cloud.LivePosition && kind != cloud.LiveStatus && kind != cloud.LiveEvent {
				return l, cloud.Errorf(cloud.EINVALID, "invalid types %q: want position, status and/or event, comma-separated", v)
			}
			l.kinds = append(l.kinds, kind)
		}
	}
	return l, nil
}

// live is GET /api/v1/live: the live stream as Server-Sent Events.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, []string{"vehicles", "bbox", "types", "last_event_id"}); err != nil {
		s.Error(w, r, err)
		return
	}
	filter, err := parseLiveFilter(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if v := r.URL.Query().Get("last_event_id"); v != "" {
		lastID = v
	}
	if lastID != "" && !cloud.ValidLiveID(lastID) {
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "invalid Last-Event-ID %q: want an id the stream sent, e.g. 1764237600000-0", lastID))
		return
	}
	if s.Hub == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "the live stream is not configured"))
		return
	}
	ctx := r.Context()
	tok := who(r).token
	streamID := randomID()
	if s.Slots != nil {
		ok, err := s.Slots.AcquireSlot(ctx, tok.Name, streamID, s.MaxStreams)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if !ok {
			w.Header().Set("Retry-After", "10")
			s.Error(w, r, cloud.Errorf(cloud.ETOOMANYREQUESTS, "token %q already holds %d live streams, its limit: close one", tok.Name, s.MaxStreams))
			return
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := s.Slots.ReleaseSlot(rctx, tok.Name, streamID); err != nil {
				s.Logger.Warn("live stream slot not released; it lapses by itself", "token", tok.Name, "err", err)
			}
		}()
	}
	sub := s.Hub.subscribe(filter)
	defer s.Hub.unsubscribe(sub)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := []byte("retry: 2000\n: fleetgate live stream\n\n")
	if lastID != "" {
		us, complete, err := s.Hub.Feed.Replay(ctx, lastID)
		if err != nil {
			s.Logger.Warn("live stream: replay failed", "err", err)
		}
		if err != nil || !complete {
			out = append(out, "event: reset\ndata: {\"reason\":\"updates since the last event id are no longer buffered: reload the state, then follow the stream\"}\n\n"...)
		}
		for _, u := range us {
			f, err := newFrame(u)
			if err != nil {
				continue
			}
			if !f.hasPos {
				if p, ok := s.Hub.position(f.vehicle); ok {
					f.lat, f.lon, f.known = p[0], p[1], true
				}
			}
			lastID = u.ID
			if filter.match(f) {
				out = append(out, f.data...)
			}
		}
	}
	if !s.send(rc, w, out) {
		return
	}
	beat := time.NewTicker(s.Heartbeat)
	defer beat.Stop()
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case f, ok := <-sub.ch:
			if !ok {
				return // dropped: the client resumes from its last id
			}
			buf = buf[:0]
			add := func(f *frame) {
				if lastID == "" || cloud.CompareLiveIDs(f.id, lastID) > 0 {
					buf = append(buf, f.data...)
					lastID = f.id
				}
			}
			add(f)
		drain: // whatever else is queued goes in the same write
			for len(buf) < 256<<10 {
				select {
				case f, ok := <-sub.ch:
					if !ok {
						s.send(rc, w, buf)
						return
					}
					add(f)
				default:
					break drain
				}
			}
			if !s.send(rc, w, buf) {
				return
			}
		case <-beat.C:
			if s.Slots != nil {
				if _, err := s.Slots.AcquireSlot(ctx, tok.Name, streamID, s.MaxStreams); err != nil {
					s.Logger.Warn("live stream slot not renewed", "err", err)
				}
			}
			if !s.send(rc, w, []byte(": heartbeat\n\n")) {
				return
			}
		case <-ctx.Done():
			return
		case <-s.endingStreams():
			return
		}
	}
}

// liveWriteTimeout bounds one write to a stream's client.
const liveWriteTimeout = 30 * time.Second

// send writes b and flushes it; false when the client is gone or stuck.
func (s *Server) send(rc *http.ResponseController, w http.ResponseWriter, b []byte) bool {
	rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// endStreams ends every live stream (the server is shutting down).
func (s *Server) endStreams() {
	s.endingStreams()
	s.endOnce.Do(func() { close(s.ending) })
}

func (s *Server) endingStreams() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ending == nil {
		s.ending = make(chan struct{})
	}
	return s.ending
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
