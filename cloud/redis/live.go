package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Status is a device status in an Update.
type Status struct {
	Online            bool              `json:"online"`
	TimeMs            int64             `json:"time_ms"`
	OnlineSinceMs     int64             `json:"online_since_ms,omitempty"`
	AgentVersion      string            `json:"agent_version,omitempty"`
	StreamID          uint64            `json:"stream_id,omitempty"`
	NextSeq           uint64            `json:"next_seq,omitempty"`
	OutboxDepth       uint64            `json:"outbox_depth,omitempty"`
	OutboxBytes       uint64            `json:"outbox_bytes,omitempty"`
	OldestUnsentAgeMs int64             `json:"oldest_unsent_age_ms,omitempty"`
	Dropped           uint64            `json:"dropped,omitempty"`
	FixMode           int               `json:"fix_mode,omitempty"`
	NoFixSinceMs      int64             `json:"no_fix_since_ms,omitempty"`
	RTTMs             int64             `json:"rtt_ms,omitempty"`
	UptimeMs          int64             `json:"uptime_ms,omitempty"`
	Counters          map[string]uint64 `json:"counters,omitempty"`
	ReceivedMs        int64             `json:"received_ms"`
}

// Event is an event in an Update.
type Event struct {
	StreamID uint64 `json:"stream_id"`
	Seq      uint64 `json:"seq"`
	TimeMs   int64  `json:"time_ms"`
	Type     int32  `json:"type"`
	Code     string `json:"code,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Value    int64  `json:"value,omitempty"`
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// encode returns u as an Update's JSON.
func encode(u *cloud.LiveUpdate) ([]byte, error) {
	w := Update{Kind: u.Kind, VehicleID: u.VehicleID}
	switch {
	case u.Kind == cloud.LiveStatus && u.Status != nil:
		d := u.Status
		w.Status = &Status{Online: d.Online, TimeMs: ms(d.Time), OnlineSinceMs: ms(d.OnlineSince), AgentVersion: d.AgentVersion,
			StreamID: d.StreamID, NextSeq: d.NextSeq, OutboxDepth: d.OutboxDepth, OutboxBytes: d.OutboxBytes,
			OldestUnsentAgeMs: d.OldestUnsentAge.Milliseconds(), Dropped: d.Dropped, FixMode: d.FixMode,
			NoFixSinceMs: ms(d.NoFixSince), RTTMs: d.RTT.Milliseconds(), UptimeMs: d.Uptime.Milliseconds(),
			Counters: d.Counters, ReceivedMs: ms(d.ReceivedAt)}
	case u.Kind == cloud.LiveEvent && u.Event != nil:
		e := u.Event
		w.Event = &Event{StreamID: e.StreamID, Seq: e.Seq, TimeMs: ms(e.Time), Type: int32(e.Type), Code: e.Code, Detail: e.Detail, Value: e.Value}
	default:
		return nil, fmt.Errorf("announce: a %q update without its %s", u.Kind, u.Kind)
	}
	return json.Marshal(w)
}

// decode reads an Update's JSON with its id.
func decode(id string, data []byte) (cloud.LiveUpdate, error) {
	var w Update
	if err := json.Unmarshal(data, &w); err != nil {
		return cloud.LiveUpdate{}, fmt.Errorf("live update %s: %w", id, err)
	}
	u := cloud.LiveUpdate{ID: id, Kind: w.Kind, VehicleID: w.VehicleID}
	switch w.Kind {
	case cloud.LivePosition:
		t, err := time.Parse(timeFormat, w.Time)
		if err != nil {
			return u, fmt.Errorf("live update %s: time: %w", id, err)
		}
		stream, err := strconv.ParseUint(w.StreamID, 16, 64)
		if err != nil {
			return u, fmt.Errorf("live update %s: stream id: %w", id, err)
		}
		u.Position = &cloud.Position{VehicleID: w.VehicleID, StreamID: stream, Seq: w.Seq, Time: t.UTC(), Lat: w.Lat, Lon: w.Lon,
			SpeedMPS: w.SpeedMPS, CourseDeg: w.CourseDeg}
	case cloud.LiveStatus:
		d := w.Status
		if d == nil {
			return u, fmt.Errorf("live update %s: a status update without a status", id)
		}
		u.Status = &cloud.DeviceStatus{VehicleID: w.VehicleID, Online: d.Online, Time: fromMs(d.TimeMs), OnlineSince: fromMs(d.OnlineSinceMs),
			AgentVersion: d.AgentVersion, StreamID: d.StreamID, NextSeq: d.NextSeq, OutboxDepth: d.OutboxDepth, OutboxBytes: d.OutboxBytes,
			OldestUnsentAge: time.Duration(d.OldestUnsentAgeMs) * time.Millisecond, Dropped: d.Dropped, FixMode: d.FixMode,
			NoFixSince: fromMs(d.NoFixSinceMs), RTT: time.Duration(d.RTTMs) * time.Millisecond,
			Uptime: time.Duration(d.UptimeMs) * time.Millisecond, Counters: d.Counters, ReceivedAt: fromMs(d.ReceivedMs)}
	case cloud.LiveEvent:
		e := w.Event
		if e == nil {
			return u, fmt.Errorf("live update %s: an event update without an event", id)
		}
		u.Event = &cloud.Event{VehicleID: w.VehicleID, StreamID: e.StreamID, Seq: e.Seq, Time: fromMs(e.TimeMs),
			Type: telemetry.EventType(e.Type), Code: e.Code, Detail: e.Detail, Value: e.Value}
	default:
		return u, fmt.Errorf("live update %s: unknown kind %q", id, w.Kind)
	}
	return u, nil
}

// announceScript appends an update to the stream and publishes it.
//
//	KEYS[1] the stream   ARGV[1] channel   ARGV[2] the update's JSON   ARGV[3] MAXLEN
var announceScript = redis.NewScript(announceLua(1, 1, 2, 3) + "return 1")

// Announce appends each status or event update to the live feed; see
// cloud.LiveAnnouncer.
func (s *LiveState) Announce(ctx context.Context, updates []cloud.LiveUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	return s.runScript(ctx, announceScript, "announce live updates in Redis", len(updates), func(i int) ([]string, []any, error) {
		msg, err := encode(&updates[i])
		if err != nil {
			return nil, nil, err
		}
		return []string{s.StreamKey()}, []any{s.Channel(), msg, s.Buffer}, nil
	})
}

// listenPing is how long Listen waits for a message before it pings Redis to
// tell a quiet channel from a dead connection.
const listenPing = 15 * time.Second

// Listen subscribes to the live channel and calls fn with every update, in
// order, until ctx is done (it returns nil) or the connection fails (an
// error with code EUNAVAILABLE; call it again, and Replay what was missed).
// A message that does not decode is skipped. See cloud.LiveFeed.
func (s *LiveState) Listen(ctx context.Context, ready func(), fn func(cloud.LiveUpdate)) error {
	ps := s.client.Subscribe(ctx, s.Channel())
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return cloud.Errorf(cloud.EUNAVAILABLE, "subscribe to the live channel: %w", err)
	}
	ready()
	for {
		msg, err := ps.ReceiveTimeout(ctx, listenPing)
		if ctx.Err() != nil {
			return nil
		}
		var nerr interface{ Timeout() bool }
		if errors.As(err, &nerr) && nerr.Timeout() {
			if err := ps.Ping(ctx); err != nil {
				return cloud.Errorf(cloud.EUNAVAILABLE, "live channel: ping: %w", err)
			}
			continue
		}
		if err != nil {
			return cloud.Errorf(cloud.EUNAVAILABLE, "live channel: %w", err)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a pong, a subscription confirmation
		}
		id, data, ok := strings.Cut(m.Payload, " ")
		if !ok || !cloud.ValidLiveID(id) {
			continue
		}
		u, err := decode(id, []byte(data))
		if err != nil {
			continue
		}
		fn(u)
	}
}

// Replay returns the buffered updates after id; see cloud.LiveFeed.
func (s *LiveState) Replay(ctx context.Context, after string) ([]cloud.LiveUpdate, bool, error) {
	if !cloud.ValidLiveID(after) {
		return nil, false, cloud.Errorf(cloud.EINVALID, "invalid event id %q: want one the stream sent, e.g. 1700000000000-0", after)
	}
	first, err := s.client.XRangeN(ctx, s.StreamKey(), "-", "+", 1).Result()
	if err != nil {
		return nil, false, cloud.Errorf(cloud.EUNAVAILABLE, "read the live buffer: %w", err)
	}
	complete := len(first) == 0 || cloud.CompareLiveIDs(first[0].ID, after) <= 0
	msgs, err := s.client.XRange(ctx, s.StreamKey(), "("+after, "+").Result()
	if err != nil {
		return nil, false, cloud.Errorf(cloud.EUNAVAILABLE, "read the live buffer: %w", err)
	}
	out := make([]cloud.LiveUpdate, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["u"].(string)
		u, err := decode(m.ID, []byte(data))
		if err != nil {
			continue
		}
		out = append(out, u)
	}
	return out, complete, nil
}

// stateFields are the fields of a vehicle's hash that LatestStates reads.
var stateFields = []string{"time", "stream_id", "seq", "lat", "lon", "updated_at", "speed_mps", "course_deg"}

// LatestStates returns the stored state of each of ids that has one: one
// HMGET of the fleet's hash, then, for the ids it lacks, the vehicles'
// own hashes in one pipeline unless Open filled the fleet's hash with
// them (fillFleet); see cloud.LiveReader.
func (s *LiveState) LatestStates(ctx context.Context, ids []string) (map[string]*cloud.VehicleState, error) {
	out := make(map[string]*cloud.VehicleState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	packed, err := s.client.HMGet(ctx, s.FleetKey(), ids...).Result()
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "read live states from Redis: %w", err)
	}
	var missing []string
	states := make([]cloud.VehicleState, len(ids))
	floats := make([]float64, 2*len(ids))
	for i, v := range packed {
		p, ok := v.(string)
		if !ok {
			missing = append(missing, ids[i])
			continue
		}
		if err := unpackStateInto(&states[i], ids[i], p, floats[2*i:2*i+2]); err != nil {
			return nil, cloud.Errorf(cloud.EINTERNAL, "live state of %q in Redis: %w", ids[i], err)
		}
		out[ids[i]] = &states[i]
	}
	if len(missing) == 0 || s.filled.Load() {
		return out, nil
	}
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range missing {
			p.HMGet(ctx, s.VehicleKey(id), stateFields...)
		}
		return nil
	})
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "read live states from Redis: %w", err)
	}
	for i, c := range cmds {
		st, err := hashState(missing[i], c.(*redis.SliceCmd).Val())
		if err != nil {
			return nil, cloud.Errorf(cloud.EINTERNAL, "live state of %q in Redis: %w", missing[i], err)
		}
		if st != nil {
			out[missing[i]] = st
		}
	}
	return out, nil
}

// hashState returns the state of a vehicle's hash as an HMGET of
// stateFields read it, nil when the hash is empty.
func hashState(id string, vals []any) (*cloud.VehicleState, error) {
	h := make(map[string]string, len(stateFields))
	for j, v := range vals {
		if s, ok := v.(string); ok {
			h[stateFields[j]] = s
		}
	}
	if len(h) == 0 {
		return nil, nil
	}
	return parseState(id, h)
}

// Nearby returns the vehicles of the GEO index within c, with their
// distance in metres; see cloud.LiveReader.
func (s *LiveState) Nearby(ctx context.Context, c cloud.Circle) (map[string]float64, error) {
	locs, err := s.client.GeoSearchLocation(ctx, s.GeoKey(), &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: c.Lon, Latitude: c.Lat, Radius: c.RadiusM, RadiusUnit: "m"},
		WithDist:       true,
	}).Result()
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "search the GEO index: %w", err)
	}
	out := make(map[string]float64, len(locs))
	for _, l := range locs {
		out[l.Name] = l.Dist
	}
	return out, nil
}

// InBox returns the vehicles of the GEO index within b; see
// cloud.LiveReader. Redis searches a box in metres around a point: it is
// asked for one that holds b, and what it returns is checked against b.
func (s *LiveState) InBox(ctx context.Context, b cloud.BBox) ([]string, error) {
	lonSpan := b.MaxLon - b.MinLon
	if lonSpan < 0 {
		lonSpan += 360
	}
	lat := (b.MinLat + b.MaxLat) / 2
	lon := b.MinLon + lonSpan/2
	if lon > 180 {
		lon -= 360
	}
	lat = max(-maxGeoLat, min(maxGeoLat, lat))
	// Widest where the box is nearest the equator.
	nearest := 0.0
	if b.MinLat > 0 {
		nearest = b.MinLat
	} else if b.MaxLat < 0 {
		nearest = -b.MaxLat
	}
	const mPerDeg = 2 * math.Pi * earthRadiusM / 360
	width := lonSpan * mPerDeg * math.Cos(nearest*math.Pi/180) * 1.01
	height := (b.MaxLat-b.MinLat)*mPerDeg*1.01 + 2*math.Abs((b.MinLat+b.MaxLat)/2-lat)*mPerDeg
	locs, err := s.client.GeoSearchLocation(ctx, s.GeoKey(), &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: lon, Latitude: lat, BoxWidth: width + 1, BoxHeight: height + 1, BoxUnit: "m"},
		WithCoord:      true,
	}).Result()
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "search the GEO index: %w", err)
	}
	var out []string
	for _, l := range locs {
		if b.Contains(l.Latitude, l.Longitude) {
			out = append(out, l.Name)
		}
	}
	return out, nil
}

// earthRadiusM is the radius Redis's GEO commands use.
const earthRadiusM = 6372797.560856

// SlotKey returns the key of the sorted set of a token's live streams.
func (s *LiveState) SlotKey(token string) string { return s.Prefix + "live:slots:" + token }

// acquireSlot drops the lapsed slots of a token, then renews the stream's
// slot or takes a new one if fewer than the maximum are held.
//
//	KEYS[1] the token's slots   ARGV[1] stream id   ARGV[2] max   ARGV[3] lease in ms
var acquireSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// AcquireSlot takes or renews one of max live-stream slots of token; a slot
// lapses SlotLease after it was last taken or renewed. See cloud.LiveSlots.
func (s *LiveState) AcquireSlot(ctx context.Context, token, id string, max int) (bool, error) {
	n, err := acquireSlot.Run(ctx, s.client, []string{s.SlotKey(token)}, id, max, s.SlotLease.Milliseconds()).Int()
	if err != nil {
		return false, cloud.Errorf(cloud.EUNAVAILABLE, "take a live stream slot: %w", err)
	}
	return n == 1, nil
}

// ReleaseSlot releases a live stream's slot; see cloud.LiveSlots.
func (s *LiveState) ReleaseSlot(ctx context.Context, token, id string) error {
	if err := s.client.ZRem(ctx, s.SlotKey(token), id).Err(); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "release a live stream slot: %w", err)
	}
	return nil
}
