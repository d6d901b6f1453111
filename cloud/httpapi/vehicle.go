package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// timeFormat is RFC 3339 with milliseconds; times are written in UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Time is a time that marshals as RFC 3339 UTC with milliseconds.
type Time time.Time

// MarshalText writes t as 2006-01-02T15:04:05.000Z (JSON quotes it; a
// TextMarshaler costs JSON less than a Marshaler, whose output it checks).
func (t Time) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, len(timeFormat)), timeFormat), nil
}

type vehicleJSON struct {
	ID           string            `json:"id"`
	FirstSeen    Time              `json:"first_seen"`
	LastSeen     Time              `json:"last_seen"`
	Online       bool              `json:"online"`
	Position     *latestJSON       `json:"position,omitempty"`
	Device       *deviceJSON       `json:"device,omitempty"`
	TroubleCodes []troubleCodeJSON `json:"trouble_codes"`
	DistanceM    *float64          `json:"distance_m,omitempty"`
}

// deviceJSON is the agent's latest status: the device health.
type deviceJSON struct {
	Online           bool              `json:"online"`
	Time             Time              `json:"time"`
	OnlineSince      *Time             `json:"online_since,omitempty"`
	AgentVersion     string            `json:"agent_version"`
	StreamID         string            `json:"stream_id"`
	NextSeq          uint64            `json:"next_seq"`
	OutboxDepth      uint64            `json:"outbox_depth"`
	OutboxBytes      uint64            `json:"outbox_bytes"`
	OldestUnsentAgeS float64           `json:"oldest_unsent_age_s"`
	Dropped          uint64            `json:"dropped"`
	FixMode          int               `json:"fix_mode"`
	NoFixSince       *Time             `json:"no_fix_since,omitempty"`
	RTTMs            int64             `json:"rtt_ms"`
	UptimeS          float64           `json:"uptime_s"`
	ClockSource      string            `json:"clock_source,omitempty"`
	ClockOffsetMs    *int64            `json:"clock_offset_ms,omitempty"`
	OutboxTrouble    string            `json:"outbox_trouble"`
	OBDState         string            `json:"obd_state"`
	Counters         map[string]uint64 `json:"counters"`
	Received         Time              `json:"received"`
}

func toDeviceJSON(d *cloud.DeviceStatus) *deviceJSON {
	if d == nil {
		return nil
	}
	out := &deviceJSON{Online: d.Online, Time: Time(d.Time), AgentVersion: d.AgentVersion, StreamID: streamHex(d.StreamID),
		NextSeq: d.NextSeq, OutboxDepth: d.OutboxDepth, OutboxBytes: d.OutboxBytes, OldestUnsentAgeS: d.OldestUnsentAge.Seconds(),
		Dropped: d.Dropped, FixMode: d.FixMode, RTTMs: d.RTT.Milliseconds(), UptimeS: d.Uptime.Seconds(),
		Counters: d.Counters, Received: Time(d.ReceivedAt),
		ClockSource: d.ClockSource.String(), OutboxTrouble: d.OutboxTrouble, OBDState: d.OBDState}
	if d.ClockOffset != 0 {
		ms := d.ClockOffset.Milliseconds()
		out.ClockOffsetMs = &ms
	}
	if !d.OnlineSince.IsZero() {
		t := Time(d.OnlineSince)
		out.OnlineSince = &t
	}
	if !d.NoFixSince.IsZero() {
		t := Time(d.NoFixSince)
		out.NoFixSince = &t
	}
	return out
}

type latestJSON struct {
	Time      Time     `json:"time"`
	Lat       float64  `json:"lat"`
	Lon       float64  `json:"lon"`
	SpeedMPS  *float64 `json:"speed_mps,omitempty"`
	CourseDeg *float64 `json:"course_deg,omitempty"`
}

func toVehicleJSON(v *cloud.Vehicle) vehicleJSON {
	out := vehicleJSON{ID: v.ID, FirstSeen: Time(v.FirstSeen), LastSeen: Time(v.LastSeen), Device: toDeviceJSON(v.Device),
		TroubleCodes: toTroubleCodes(v.TroubleCodes), DistanceM: v.DistanceM}
	out.Online = v.Device != nil && v.Device.Online
	if p := v.Position; p != nil {
		out.Position = &latestJSON{Time: Time(p.Time), Lat: p.Lat, Lon: p.Lon, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg}
	}
	return out
}

// Sources of the latest positions and of the geographic filters.
const (
	sourceRedis    = "redis"
	sourcePostgres = "postgres"
)

// vehicles is GET /api/v1/vehicles: a page of vehicles by id, filtered by
// online, bbox or near (a point and radius_m). The geographic filters and
// the latest positions come from the live store (Redis) when it answers,
// else from PostgreSQL: "source" says which.
func (s *Server) vehicles(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, []string{"online", "bbox", "near", "radius_m", "limit", "after"}); err != nil {
		s.Error(w, r, err)
		return
	}
	if s.Vehicles == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "vehicles are not configured"))
		return
	}
	q := r.URL.Query()
	f, err := parseVehicleFilter(q)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	scope := "vehicles " + q.Get("online") + " " + q.Get("bbox") + " " + q.Get("near") + " " + q.Get("radius_m")
	limit, after, err := parsePage(q, scope)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f.Limit = limit
	if after != nil {
		f.After = after.Key
	}
	source := sourcePostgres
	var dist map[string]float64
	if s.Live != nil && (f.Near != nil || f.BBox != nil) {
		if dist, err = s.geoFilter(r, &f); err == nil {
			source = sourceRedis
		} else {
			s.Logger.Warn("live store unavailable: filtering in PostgreSQL", "err", err)
		}
	}
	// The PostgreSQL part, from the replica's cache when the positions
	// come from the live store.
	key, cacheable := cacheKey(&f)
	cacheable = cacheable && s.Live != nil
	var l *renderedList
	var refresh bool
	if cacheable {
		l, refresh = s.lists.get(key, s.ListCacheTTL)
	}
	if refresh {
		go s.refreshList(f, key)
	}
	cached := l != nil
	if l == nil {
		if l, err = s.findList(r.Context(), f, key, cacheable); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	states, source, failed := s.liveStates(r, l.ids, source, f.Near == nil && f.BBox == nil)
	if failed && cached {
		// The positions come from PostgreSQL: the cached ones may be a
		// TTL old, so read them afresh.
		if l, err = s.findList(r.Context(), f, key, false); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	s.writeList(w, l, states, dist, scope, source)
}

// findList reads a page of vehicles from PostgreSQL and renders it,
// keeping it in the cache under key when cache is true.
func (s *Server) findList(ctx context.Context, f cloud.VehicleFilter, key listKey, cache bool) (*renderedList, error) {
	start := s.lists.clock()
	vs, more, err := s.Vehicles.FindVehicles(ctx, f)
	if err != nil {
		return nil, err
	}
	l := renderList(vs, more)
	if cache {
		s.lists.put(key, l, start, s.ListCacheTTL)
	}
	return l, nil
}

// refreshList reads a cached list again, in the background of the request
// that found it past half its TTL, within the request timeout.
func (s *Server) refreshList(f cloud.VehicleFilter, key listKey) {
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(s.RequestTimeout, DefaultRequestTimeout))
	defer cancel()
	if _, err := s.findList(ctx, f, key, true); err != nil {
		s.Logger.Warn("vehicle list: read again in the background", "err", err)
	}
}

// listBuffers are the buffers the list is written through.
var listBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// writeList writes {"vehicles":[…],"next":…,"source":…}: each vehicle's
// rendered head and tail around its newest position and its distance,
// streamed in pieces of about 32 KiB (the list may hold 10,000 vehicles).
func (s *Server) writeList(w http.ResponseWriter, l *renderedList, states map[string]*cloud.VehicleState, dist map[string]float64, scope, source string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bp := listBuffers.Get().(*[]byte)
	defer listBuffers.Put(bp)
	b := append((*bp)[:0], `{"vehicles":[`...)
	for i, id := range l.ids {
		if i > 0 {
			b = append(b, ',')
		}
		head, tail := l.parts(i)
		b = append(b, head...)
		if p := newest(l.pos[i], states[id]); p != nil {
			b = appendPosition(b, &latestJSON{Time: Time(p.Time), Lat: p.Lat, Lon: p.Lon, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg})
		}
		b = append(b, tail...)
		if d, ok := dist[id]; ok {
			b = appendOptFloat(b, `,"distance_m":`, &d)
		} else {
			b = appendOptFloat(b, `,"distance_m":`, l.dists[i])
		}
		b = append(b, '}')
		if len(b) >= 32<<10 {
			w.Write(b)
			b = b[:0]
		}
	}
	b = append(b, ']')
	if l.more && len(l.ids) > 0 {
		b = append(b, `,"next":`...)
		b = appendString(b, cloud.Cursor{Key: l.ids[len(l.ids)-1]}.Encode(scope))
	}
	b = append(b, `,"source":`...)
	b = appendString(b, source)
	w.Write(append(b, "}\n"...))
	*bp = b[:0]
}

// geoFilter turns f's near and bbox into the ids the GEO index finds (f.IDs)
// and returns the distances from the near point.
func (s *Server) geoFilter(r *http.Request, f *cloud.VehicleFilter) (map[string]float64, error) {
	var ids []string
	var dist map[string]float64
	if f.Near != nil {
		d, err := s.Live.Nearby(r.Context(), *f.Near)
		if err != nil {
			return nil, err
		}
		dist = d
		ids = make([]string, 0, len(d))
		for id := range d {
			ids = append(ids, id)
		}
	}
	if f.BBox != nil {
		in, err := s.Live.InBox(r.Context(), *f.BBox)
		if err != nil {
			return nil, err
		}
		if f.Near != nil {
			in = slices.DeleteFunc(in, func(id string) bool { _, ok := dist[id]; return !ok })
		}
		ids = in
	}
	slices.Sort(ids)
	f.IDs, f.Near, f.BBox = append([]string{}, ids...), nil, nil
	return dist, nil
}

// liveStates reads the latest states of ids from the live store and
// returns them with the source of the answer: source, or postgres (and
// failed) when the live store fails (when may is false the answer's
// source stays as is, since the filters already read one).
func (s *Server) liveStates(r *http.Request, ids []string, source string, may bool) (map[string]*cloud.VehicleState, string, bool) {
	if s.Live == nil || len(ids) == 0 {
		return nil, source, false
	}
	states, err := s.Live.LatestStates(r.Context(), ids)
	if err != nil {
		s.Logger.Warn("live store unavailable: latest positions from PostgreSQL", "err", err)
		return nil, sourcePostgres, true
	}
	if may {
		return states, sourceRedis, false
	}
	return states, source, false
}

// overlayLatest replaces v's latest position with the live store's when
// that is newer and returns the source of the answer (see liveStates).
func (s *Server) overlayLatest(r *http.Request, v *cloud.Vehicle) string {
	states, source, _ := s.liveStates(r, []string{v.ID}, sourcePostgres, true)
	v.Position = newest(v.Position, states[v.ID])
	return source
}

// parseVehicleFilter reads online, bbox, near and radius_m.
func parseVehicleFilter(q url.Values) (cloud.VehicleFilter, error) {
	var f cloud.VehicleFilter
	switch v := q.Get("online"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.Online = &b
	default:
		return f, cloud.Errorf(cloud.EINVALID, "invalid online %q: want true or false", v)
	}
	if v := q.Get("bbox"); v != "" {
		n, err := floats("bbox", v, 4, "min_lon,min_lat,max_lon,max_lat")
		if err != nil {
			return f, err
		}
		b := cloud.BBox{MinLon: n[0], MinLat: n[1], MaxLon: n[2], MaxLat: n[3]}
		if !validLon(b.MinLon) || !validLon(b.MaxLon) || !validLat(b.MinLat) || !validLat(b.MaxLat) || b.MinLat > b.MaxLat {
			return f, cloud.Errorf(cloud.EINVALID, "invalid bbox %q: longitudes -180 to 180, latitudes -90 to 90, min_lat at most max_lat (min_lon above max_lon crosses the antimeridian)", v)
		}
		f.BBox = &b
	}
	near, radius := q.Get("near"), q.Get("radius_m")
	if (near == "") != (radius == "") {
		return f, cloud.Errorf(cloud.EINVALID, "near and radius_m go together: near=lat,lon&radius_m=metres")
	}
	if near != "" {
		n, err := floats("near", near, 2, "lat,lon")
		if err != nil {
			return f, err
		}
		if !validLat(n[0]) || !validLon(n[1]) {
			return f, cloud.Errorf(cloud.EINVALID, "invalid near %q: latitude -90 to 90, longitude -180 to 180", near)
		}
		r, err := strconv.ParseFloat(radius, 64)
		if err != nil || !(r > 0 && r <= 20_000_000) {
			return f, cloud.Errorf(cloud.EINVALID, "invalid radius_m %q: want metres above 0, at most 20000000", radius)
		}
		f.Near = &cloud.Circle{Lat: n[0], Lon: n[1], RadiusM: r}
	}
	return f, nil
}

// floats reads n comma-separated finite numbers.
func floats(name, v string, n int, form string) ([]float64, error) {
	parts := strings.Split(v, ",")
	if len(parts) != n {
		return nil, cloud.Errorf(cloud.EINVALID, "invalid %s %q: want %s", name, v, form)
	}
	out := make([]float64, n)
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, cloud.Errorf(cloud.EINVALID, "invalid %s %q: want %s", name, v, form)
		}
		out[i] = f
	}
	return out, nil
}

func validLat(v float64) bool { return v >= -90 && v <= 90 }
func validLon(v float64) bool { return v >= -180 && v <= 180 }

// vehicle is GET /api/v1/vehicles/{id}.
func (s *Server) vehicle(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err == nil && s.Vehicles == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "vehicles are not configured")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v, err := s.Vehicles.FindVehicleByID(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	source := s.overlayLatest(r, v)
	s.json(w, http.StatusOK, struct {
		vehicleJSON
		Source string `json:"source"`
	}{toVehicleJSON(v), source})
}

// vehicleID returns the {id} of the path, or EINVALID when it is not a vehicle id.
func vehicleID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	return id, validID(id)
}

// validID returns EINVALID when id is not a vehicle id.
func validID(id string) error {
	if err := telemetry.ValidVehicleID(id); err != nil {
		return cloud.Errorf(cloud.EINVALID, "invalid vehicle id %q: want 1 to 64 of A-Z a-z 0-9 _ -", id)
	}
	return nil
}

func streamHex(id uint64) string { return fmt.Sprintf("%016x", id) }
