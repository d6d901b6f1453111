// Package redis keeps the fleet's live state in Redis with go-redis: each
// vehicle's latest fix by record time (a hash written by a Lua script only
// when the new fix is newer, so late history never moves a vehicle
// backwards), a GEO index of the fleet, and the live feed: every accepted
// update (a new latest fix, a new device status, an event) is appended to a
// capped stream, which gives it its id and keeps a short buffer for clients
// that resume, and announced on a pub/sub channel from which every replica
// serves its live streams. It also counts each token's live streams. Every
// key and the channel are under the configured prefix. It is the only
// package that imports the Redis client.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fleetgate/fleetgate/cloud"
)

// LiveState is the live store. Create it with NewLiveState, then Open it. Its
// methods are safe for concurrent use once it is open.
type LiveState struct {
	URL    string // redis://host:port/db
	Prefix string // put before every key and the channel, e.g. "fleetgate:"
	// Buffer is about how many updates the live feed keeps for clients
	// that resume (the stream's MAXLEN, trimmed approximately).
	Buffer int
	// SlotLease is how long a live stream's slot (LiveSlots) lasts unless
	// renewed.
	SlotLease time.Duration

	client *redis.Client
	// filled is set once the fleet's hash holds every vehicle's state
	// (fillFleet): LatestStates then reads nothing else.
	filled atomic.Bool
}

// Defaults of a LiveState (NewLiveState).
const (
	DefaultBuffer    = 100_000
	DefaultSlotLease = time.Minute
)

var (
	_ cloud.LiveState     = (*LiveState)(nil)
	_ cloud.LiveAnnouncer = (*LiveState)(nil)
	_ cloud.LiveReader    = (*LiveState)(nil)
	_ cloud.LiveFeed      = (*LiveState)(nil)
	_ cloud.LiveSlots     = (*LiveState)(nil)
	_ cloud.Pinger        = (*LiveState)(nil)
)

// NewLiveState returns a LiveState for the Redis at url, keys under prefix,
// with the defaults above.
func NewLiveState(url, prefix string) *LiveState {
	return &LiveState{URL: url, Prefix: prefix, Buffer: DefaultBuffer, SlotLease: DefaultSlotLease}
}

// CheckURL reports whether url is one the Redis client accepts (the checks
// Open makes before it connects).
func CheckURL(url string) error {
	_, err := redis.ParseURL(url)
	return err
}

// Open connects and checks that Redis answers. It returns an error with code
// EINVALID for a bad URL and EUNAVAILABLE when Redis cannot be reached.
func (s *LiveState) Open(ctx context.Context) error {
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "parse REDIS_URL: %w", err)
	}
	s.client = redis.NewClient(opt)
	if err := s.Ping(ctx); err != nil {
		s.client.Close()
		s.client = nil
		return err
	}
	// Not filled (Redis failed, a state did not parse): lists read the
	// vehicles' own hashes for what the fleet's lacks, as they must.
	_ = s.fillFleet(ctx)
	return nil
}

// fleetFilledKey returns the key that says the fleet's hash holds every
// state the vehicles' own hashes hold.
func (s *LiveState) fleetFilledKey() string { return s.Prefix + "fleet:filled" }

// fillFleet copies into the fleet's hash the states that only the
// vehicles' own hashes hold (written before it existed), once per Redis:
// HSETNX, so that a newer state the script wrote meanwhile stays. It
// returns an error, and leaves the hash unfilled, when Redis fails or a
// stored state does not parse.
func (s *LiveState) fillFleet(ctx context.Context) error {
	if n, err := s.client.Exists(ctx, s.fleetFilledKey()).Result(); err != nil {
		return err
	} else if n == 1 {
		s.filled.Store(true)
		return nil
	}
	var ids []string
	var errs []error
	flush := func() error {
		cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				p.HMGet(ctx, s.VehicleKey(id), stateFields...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range cmds {
				st, err := hashState(ids[i], c.(*redis.SliceCmd).Val())
				if err != nil {
					errs = append(errs, fmt.Errorf("live state of %q: %w", ids[i], err))
				} else if st != nil { // nil: deleted since the scan
					p.HSetNX(ctx, s.FleetKey(), ids[i], packState(st))
				}
			}
			return nil
		})
		ids = ids[:0]
		return err
	}
	vehicle := s.VehicleKey("")
	iter := s.client.Scan(ctx, 0, globEscape(vehicle)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		ids = append(ids, strings.TrimPrefix(iter.Val(), vehicle))
		if len(ids) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.client.Set(ctx, s.fleetFilledKey(), "1", 0).Err(); err != nil {
		return err
	}
	s.filled.Store(true)
	return nil
}

// globEscape escapes the characters SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close closes the connections.
func (s *LiveState) Close() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}

// Ping returns nil when Redis answers.
func (s *LiveState) Ping(ctx context.Context) error {
	if s.client == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "Redis: not open")
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "ping Redis: %w", err)
	}
	return nil
}

// VehicleKey returns the key of the hash holding a vehicle's latest state.
func (s *LiveState) VehicleKey(id string) string { return s.Prefix + "vehicle:" + id }

// FleetKey returns the key of the hash of the whole fleet's latest states
// (field: vehicle id, value: the state packed by packState), written with
// each vehicle's hash so that a list of vehicles reads its states with one
// command however long it is.
func (s *LiveState) FleetKey() string { return s.Prefix + "fleet" }

// GeoKey returns the key of the GEO index of the fleet's latest positions
// (members are vehicle ids).
func (s *LiveState) GeoKey() string { return s.Prefix + "geo" }

// Channel returns the pub/sub channel on which accepted updates are
// announced: each message is the update's stream id, a space, and the
// update as JSON (an Update).
func (s *LiveState) Channel() string { return s.Prefix + "live" }

// StreamKey returns the key of the stream that keeps the last Buffer
// updates (field "u": the update as JSON), for clients that resume.
func (s *LiveState) StreamKey() string { return s.Prefix + "live:buffer" }

// Update is an update of the live feed as Redis carries it (JSON). Kind is
// "position" (the position fields are set), "status" (Status) or "event"
// (Event). Unknown measures are omitted.
type Update struct {
	Kind      cloud.LiveKind `json:"kind"`
	VehicleID string         `json:"vehicle_id"`
	Time      string         `json:"time,omitempty"`
	StreamID  string         `json:"stream_id,omitempty"`
	Seq       uint64         `json:"seq,omitempty"`
	Lat       float64        `json:"lat,omitempty"`
	Lon       float64        `json:"lon,omitempty"`
	SpeedMPS  *float64       `json:"speed_mps,omitempty"`
	CourseDeg *float64       `json:"course_deg,omitempty"`
	Status    *Status        `json:"status,omitempty"`
	Event     *Event         `json:"event,omitempty"`
}

// maxGeoLat is the largest |latitude| a Redis GEO index takes (Web Mercator).
const maxGeoLat = 85.05112878

// announceLua is the Lua that appends an update to the stream (whose id it
// gets) and publishes it, with the stream, the channel, the update's JSON
// and the stream's MAXLEN at the given places of KEYS and ARGV.
func announceLua(stream, channel, msg, maxLen int) string {
	return fmt.Sprintf(`
local id = redis.call('XADD', KEYS[%d], 'MAXLEN', '~', ARGV[%d], '*', 'u', ARGV[%d])
redis.call('PUBLISH', ARGV[%d], id .. ' ' .. ARGV[%d])
`, stream, maxLen, msg, channel, msg)
}

// latest replaces a vehicle's state hash only when the new record time is
// newer than the stored one (or the stored one is stamped after the clock
// limit, when there is one), and its field of the fleet's hash, then
// updates the GEO index and announces it.
//
//	KEYS[1] the vehicle's hash   KEYS[2] the GEO index   KEYS[3] the stream
//	KEYS[4] the fleet's hash
//	ARGV[1] time_ms  ARGV[2] lon  ARGV[3] lat  ARGV[4] vehicle id
//	ARGV[5] channel  ARGV[6] message  ARGV[7] clock limit in ms, -1: none
//	ARGV[8] the packed state   ARGV[9] the stream's MAXLEN
//	ARGV[10..] field, value, ...
var latest = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'time_ms')
local limit = tonumber(ARGV[7])
if cur and tonumber(cur) >= tonumber(ARGV[1]) and (limit < 0 or tonumber(cur) <= limit) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('HSET', KEYS[4], ARGV[4], ARGV[8])
if math.abs(tonumber(ARGV[3])) <= ` + strconv.FormatFloat(maxGeoLat, 'f', -1, 64) + ` then
  redis.call('GEOADD', KEYS[2], ARGV[2], ARGV[3], ARGV[4])
else
  redis.call('ZREM', KEYS[2], ARGV[4])
end
` + announceLua(3, 5, 6, 9) + `
return 1
`)

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// UpdateLatest applies each state whose position is newer than the stored one
// (see cloud.LiveState), pipelined in one round trip. It returns an error with
// code EUNAVAILABLE when Redis fails; states already applied stay applied.
func (s *LiveState) UpdateLatest(ctx context.Context, states []cloud.VehicleState) error {
	if len(states) == 0 {
		return nil
	}
	return s.runScript(ctx, latest, "update live state in Redis", len(states), func(i int) ([]string, []any, error) {
		return s.scriptArgs(&states[i])
	})
}

// runScript runs script n times in one pipeline with the keys and
// arguments of args(i), loading it again when Redis lost its script cache.
// It returns an error with code EUNAVAILABLE when Redis fails.
func (s *LiveState) runScript(ctx context.Context, script *redis.Script, op string, n int, args func(i int) ([]string, []any, error)) error {
	run := func(ctx context.Context) error {
		cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				keys, argv, err := args(i)
				if err != nil {
					return err
				}
				script.EvalSha(ctx, p, keys, argv...)
			}
			return nil
		})
		if err == nil {
			return nil
		}
		for _, c := range cmds {
			if c.Err() != nil {
				return c.Err()
			}
		}
		return err
	}
	err := run(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or flushed its script cache: load it and go again
		// (the scripts are idempotent, or announce again at worst).
		if err = script.Load(ctx, s.client).Err(); err == nil {
			err = run(ctx)
		}
	}
	if err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "%s: %w", op, err)
	}
	return nil
}

func (s *LiveState) scriptArgs(st *cloud.VehicleState) ([]string, []any, error) {
	p := &st.Position
	u := Update{
		Kind: cloud.LivePosition, VehicleID: st.VehicleID, Time: p.Time.UTC().Format(timeFormat), StreamID: fmt.Sprintf("%016x", p.StreamID),
		Seq: p.Seq, Lat: p.Lat, Lon: p.Lon, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg,
	}
	msg, err := json.Marshal(u)
	if err != nil {
		return nil, nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	limit := int64(-1)
	if !st.ClockLimit.IsZero() {
		limit = st.ClockLimit.UnixMilli()
	}
	args := []any{p.Time.UnixMilli(), f(p.Lon), f(p.Lat), st.VehicleID, s.Channel(), msg, limit, packState(st), s.Buffer,
		"time_ms", p.Time.UnixMilli(), "time", u.Time, "stream_id", u.StreamID, "seq", p.Seq,
		"lat", f(p.Lat), "lon", f(p.Lon), "updated_at", st.UpdatedAt.UTC().Format(timeFormat)}
	if p.SpeedMPS != nil {
		args = append(args, "speed_mps", f(*p.SpeedMPS))
	}
	if p.CourseDeg != nil {
		args = append(args, "course_deg", f(*p.CourseDeg))
	}
	return []string{s.VehicleKey(st.VehicleID), s.GeoKey(), s.StreamKey(), s.FleetKey()}, args, nil
}

// Latest returns the stored state of a vehicle, or an error with code
// ENOTFOUND when there is none, EUNAVAILABLE when Redis fails.
func (s *LiveState) Latest(ctx context.Context, vehicleID string) (*cloud.VehicleState, error) {
	h, err := s.client.HGetAll(ctx, s.VehicleKey(vehicleID)).Result()
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "read live state from Redis: %w", err)
	}
	if len(h) == 0 {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "no live state for vehicle %q", vehicleID)
	}
	st, err := parseState(vehicleID, h)
	if err != nil {
		return nil, cloud.Errorf(cloud.EINTERNAL, "live state of %q in Redis: %w", vehicleID, err)
	}
	return st, nil
}

func parseState(id string, h map[string]string) (*cloud.VehicleState, error) {
	st := &cloud.VehicleState{VehicleID: id, Position: cloud.Position{VehicleID: id}}
	p := &st.Position
	var errs []error
	num := func(field string) float64 {
		v, err := strconv.ParseFloat(h[field], 64)
		errs = append(errs, err)
		return v
	}
	opt := func(field string) *float64 {
		if _, ok := h[field]; !ok {
			return nil
		}
		v := num(field)
		return &v
	}
	when := func(field string) time.Time {
		t, err := time.Parse(timeFormat, h[field])
		errs = append(errs, err)
		return t
	}
	var err error
	p.StreamID, err = strconv.ParseUint(h["stream_id"], 16, 64)
	errs = append(errs, err)
	p.Seq, err = strconv.ParseUint(h["seq"], 10, 64)
	errs = append(errs, err)
	p.Time, st.UpdatedAt = when("time"), when("updated_at")
	p.Lat, p.Lon = num("lat"), num("lon")
	p.SpeedMPS, p.CourseDeg = opt("speed_mps"), opt("course_deg")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("fields %s: %w", strings.Join(keys(h), ","), err)
	}
	return st, nil
}

func keys(h map[string]string) []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}
