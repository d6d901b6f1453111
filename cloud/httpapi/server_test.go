package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/dispatch"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// broker is a CommandPublisher that takes commands, or refuses while down.
type broker struct {
	mu   sync.Mutex
	down bool
	sent []string
}

func (b *broker) PublishCommand(_ context.Context, c *cloud.Command) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker")
	}
	b.sent = append(b.sent, c.ID)
	return nil
}

func (b *broker) setDown(d bool) {
	b.mu.Lock()
	b.down = d
	b.mu.Unlock()
}

// fixture is a Server over a real database and Redis holding two vehicles,
// served by httptest, with a token of each role.
type fixture struct {
	t      *testing.T
	ts     *httptest.Server
	s      *httpapi.Server
	db     *postgres.DB
	dbURL  string
	live   *redis.LiveState
	broker *broker
	tokens map[cloud.Role]string // secrets
}

func newFixture(t *testing.T, modify ...func(*httpapi.Server)) *fixture {
	t.Helper()
	ctx := context.Background()
	u := testenv.Postgres(t)
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	db := postgres.NewDB(u)
	db.Now = func() time.Time { return now }
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	live := redis.NewLiveState(testenv.Redis(t))
	if err := live.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })

	full := telemetry.Position{Seq: 1, UnixMs: now.Add(-time.Hour).UnixMilli(), LatE7: 437384166, LonE7: 74246333,
		Has:   telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
		AltCm: 5230, SpeedMmps: 13891, CourseCdeg: 4520, Mode: 3, Quality: 1, SatsUsed: 9, HDOPc: 90}
	bare := telemetry.Position{Seq: 2, UnixMs: now.Add(-time.Hour).UnixMilli() + 1000, LatE7: 437384200, LonE7: 74246400}
	b := &telemetry.Batch{VehicleID: "veh-001", StreamID: 0xfedcba9876543210,
		Positions: []telemetry.Position{full, bare},
		OBD: []telemetry.OBDSample{
			{Seq: 3, UnixMs: now.Add(-time.Hour).UnixMilli() + 412, PID: 0x010C, Value: 1303.75},
			{Seq: 4, UnixMs: now.Add(-time.Hour).UnixMilli() + 500, PID: 0x010D, Value: 50},
		},
		Events: []telemetry.Event{
			{Seq: 5, UnixMs: now.Add(-time.Hour).UnixMilli() + 600, Type: telemetry.EventDTCSet, Code: "P0301"},
			{Seq: 6, UnixMs: now.Add(-time.Hour).UnixMilli() + 700, Type: telemetry.EventIgnitionOff},
		}}
	idle := &telemetry.Batch{VehicleID: "veh-002", StreamID: 1,
		OBD: []telemetry.OBDSample{{Seq: 1, UnixMs: now.Add(-time.Hour).UnixMilli(), PID: 0x0105, Value: 90}}}
	status := cloud.DeviceStatus{VehicleID: "veh-001", Online: true, Time: now.Add(-30 * time.Minute), AgentVersion: "1.2.3",
		StreamID: 0xfedcba9876543210, NextSeq: 7, OutboxDepth: 4, OutboxBytes: 400, OldestUnsentAge: 2 * time.Second,
		FixMode: 3, RTT: 40 * time.Millisecond, Uptime: time.Hour, Counters: map[string]uint64{"gps.bad_checksum": 1}, ReceivedAt: now.Add(-30 * time.Minute),
		ClockSource: cloud.ClockGNSS, ClockOffset: -1500 * time.Millisecond, OutboxTrouble: "filesystem_full", OBDState: "bus_fault: CAN ERROR"}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b, idle}, Statuses: []cloud.DeviceStatus{status}, ReceivedAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, dbURL: u, live: live, broker: &broker{}, tokens: map[cloud.Role]string{}}
	s := httpapi.NewServer(":0")
	s.Vehicles, s.Positions, s.OBD, s.Events, s.Statuses, s.Commands, s.DeadLetters, s.Tokens = db, db, db, db, db, db, db, db
	d := dispatch.New(db, f.broker)
	d.Now = func() time.Time { return now }
	s.Sender = d
	s.Live, s.Slots = live, live
	s.Now = func() time.Time { return now }
	s.Ready = []httpapi.Check{{Name: "PostgreSQL", Pinger: db}}
	s.Heartbeat = 200 * time.Millisecond
	hub := httpapi.NewHub(live)
	s.Hub = hub
	for _, m := range modify {
		m(s)
	}
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hub.Run(hctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "the hub subscribed", func() error { return testenv.True(hub.Ready()) })
	for _, r := range []cloud.Role{cloud.RoleViewer, cloud.RoleOperator, cloud.RoleAdmin} {
		_, secret, err := httpapi.NewToken(ctx, db, "test-"+r.String(), r, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[r] = secret
	}
	f.s = s
	f.ts = httptest.NewServer(s.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

// as returns a client carrying the token of role (none for RoleNone).
func (f *fixture) as(r cloud.Role) *client { return newClient(f.t, f.ts, f.tokens[r]) }

// same reports whether got equals the JSON want, as a diff.
func same(t *testing.T, what, want string, got map[string]any) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation for %s: %v", what, err)
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

const device001 = `{"online":true,"time":"2026-11-27T11:30:00.000Z","online_since":"2026-11-27T11:30:00.000Z","agent_version":"1.2.3",
	"stream_id":"fedcba9876543210","next_seq":7,"outbox_depth":4,"outbox_bytes":400,"oldest_unsent_age_s":2,"dropped":0,"fix_mode":3,
	"rtt_ms":40,"uptime_s":3600,"clock_source":"gnss","clock_offset_ms":-1500,"outbox_trouble":"filesystem_full","obd_state":"bus_fault: CAN ERROR",
	"counters":{"gps.bad_checksum":1},"received":"2026-11-27T11:30:00.000Z"}`

func TestEndpoints(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleViewer)
	q := "?from=" + url.QueryEscape("2026-11-27T10:00:00Z") + "&to=" + url.QueryEscape("2026-11-27T13:00:00+01:00")
	tests := []struct {
		path string
		want string
	}{
		{"/health", `{"status":"ok"}`},
		{"/ready", `{"status":"ready","checks":{"PostgreSQL":"ok"}}`},
		{"/api/v1/vehicles", `{"source":"redis","vehicles":[
			{"id":"veh-001","first_seen":"2026-11-27T11:30:00.000Z","last_seen":"2026-11-27T11:59:00.000Z","online":true,
			 "position":{"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464},"device":` + device001 + `,
			 "trouble_codes":[{"code":"P0301","since":"2026-11-27T11:00:00.600Z"}]},
			{"id":"veh-002","first_seen":"2026-11-27T11:59:00.000Z","last_seen":"2026-11-27T11:59:00.000Z","online":false,"trouble_codes":[]}]}`},
		{"/api/v1/vehicles/veh-001", `{"id":"veh-001","first_seen":"2026-11-27T11:30:00.000Z","last_seen":"2026-11-27T11:59:00.000Z","online":true,
			 "position":{"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464},"device":` + device001 + `,
			 "trouble_codes":[{"code":"P0301","since":"2026-11-27T11:00:00.600Z"}],"source":"redis"}`},
		{"/api/v1/vehicles/veh-001/positions", `{"vehicle_id":"veh-001","positions":[
			{"stream_id":"fedcba9876543210","seq":1,"time":"2026-11-27T11:00:00.000Z","lat":43.7384166,"lon":7.4246333,
			 "alt_m":52.3,"speed_mps":13.891,"course_deg":45.2,"mode":3,"quality":1,"sats":9,"hdop":0.9},
			{"stream_id":"fedcba9876543210","seq":2,"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}]}`},
		{"/api/v1/vehicles/veh-001/positions?from=2026-11-27T11:00:00.5Z", `{"vehicle_id":"veh-001","positions":[
			{"stream_id":"fedcba9876543210","seq":2,"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}]}`},
		{"/api/v1/vehicles/veh-001/positions?to=2026-11-26T00:00:00Z", `{"vehicle_id":"veh-001","positions":[]}`},
		{"/api/v1/vehicles/veh-001/positions" + q + "&format=geojson&geometry=linestring", `{"type":"Feature",
			"geometry":{"type":"LineString","coordinates":[[7.4246333,43.7384166,52.3],[7.42464,43.73842]]},
			"properties":{"vehicle_id":"veh-001","from":"2026-11-27T10:00:00.000Z","to":"2026-11-27T12:00:00.000Z","fixes":2}}`},
		{"/api/v1/vehicles/veh-001/positions?format=geojson&to=2026-11-27T11:00:00.5Z", `{"type":"FeatureCollection","features":[
			{"type":"Feature","geometry":{"type":"Point","coordinates":[7.4246333,43.7384166,52.3]},
			 "properties":{"time":"2026-11-27T11:00:00.000Z","stream_id":"fedcba9876543210","seq":1,"alt_m":52.3,"speed_mps":13.891,
			  "course_deg":45.2,"mode":3,"quality":1,"sats":9,"hdop":0.9}}],
			"properties":{"vehicle_id":"veh-001","from":"2026-11-26T11:00:00.500Z","to":"2026-11-27T11:00:00.500Z","fixes":1}}`},
		{"/api/v1/vehicles/veh-002/positions?format=geojson&geometry=linestring", `{"type":"Feature","geometry":null,
			"properties":{"vehicle_id":"veh-002","from":"2026-11-26T12:00:00.000Z","to":"2026-11-27T12:00:00.000Z","fixes":0}}`},
		{"/api/v1/vehicles/veh-001/obd", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":3,"time":"2026-11-27T11:00:00.412Z","pid":"0C","mode":"01","value":1303.75},
			{"stream_id":"fedcba9876543210","seq":4,"time":"2026-11-27T11:00:00.500Z","pid":"0D","mode":"01","value":50}]}`},
		{"/api/v1/vehicles/veh-001/obd?pid=0D", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":4,"time":"2026-11-27T11:00:00.500Z","pid":"0D","mode":"01","value":50}]}`},
		{"/api/v1/vehicles/veh-001/obd?pid=010c", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":3,"time":"2026-11-27T11:00:00.412Z","pid":"0C","mode":"01","value":1303.75}]}`},
		{"/api/v1/vehicles/veh-002/positions", `{"vehicle_id":"veh-002","positions":[]}`},
		{"/api/v1/vehicles/veh-001/events", `{"vehicle_id":"veh-001","events":[
			{"stream_id":"fedcba9876543210","seq":5,"time":"2026-11-27T11:00:00.600Z","type":"dtc_set","code":"P0301"},
			{"stream_id":"fedcba9876543210","seq":6,"time":"2026-11-27T11:00:00.700Z","type":"ignition_off"}]}`},
		{"/api/v1/vehicles/veh-001/events?type=dtc_set,dtc_cleared", `{"vehicle_id":"veh-001","events":[
			{"stream_id":"fedcba9876543210","seq":5,"time":"2026-11-27T11:00:00.600Z","type":"dtc_set","code":"P0301"}]}`},
		{"/api/v1/vehicles/veh-001/trouble-codes", `{"vehicle_id":"veh-001","trouble_codes":[{"code":"P0301","since":"2026-11-27T11:00:00.600Z"}]}`},
		{"/api/v1/vehicles/veh-002/trouble-codes", `{"vehicle_id":"veh-002","trouble_codes":[]}`},
		{"/api/v1/vehicles/veh-001/device-history", `{"vehicle_id":"veh-001","statuses":[` + strings.Replace(device001, `"online_since":"2026-11-27T11:30:00.000Z",`, "", 1) + `]}`},
		{"/api/v1/vehicles/veh-001/commands", `{"vehicle_id":"veh-001","commands":[]}`},
		{"/api/v1/session", `{"name":"test-viewer","role":"viewer","via":"bearer"}`},
	}
	// The latest positions come from Redis: put what ingest would have.
	if err := f.live.UpdateLatest(context.Background(), []cloud.VehicleState{{VehicleID: "veh-001", UpdatedAt: now,
		Position: cloud.Position{StreamID: 0xfedcba9876543210, Seq: 2, Time: now.Add(-time.Hour + time.Second), Lat: 43.73842, Lon: 7.42464}}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := c.get(tt.path)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			same(t, tt.path, tt.want, r.body)
		})
	}
}

// TestNewEventTypes: the event types agents gained (clock source, OBD
// adapter, outbox trouble) are stored, named and selectable by name.
func TestNewEventTypes(t *testing.T) {
	f := newFixture(t)
	at := now.Add(-time.Hour).UnixMilli()
	b := &telemetry.Batch{VehicleID: "veh-003", StreamID: 3, Events: []telemetry.Event{
		{Seq: 1, UnixMs: at, Type: telemetry.EventClockSource, Code: "gnss"},
		{Seq: 2, UnixMs: at + 1, Type: telemetry.EventOBDAdapter, Code: "bus_fault", Detail: "CAN ERROR"},
		{Seq: 3, UnixMs: at + 2, Type: telemetry.EventOutboxTrouble, Code: "filesystem_full", Value: 1 << 20},
		{Seq: 4, UnixMs: at + 3, Type: 99, Code: "future"},
	}}
	if _, err := f.db.Commit(context.Background(), &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	c := f.as(cloud.RoleViewer)
	for _, tt := range []struct{ path, want string }{
		{"/api/v1/vehicles/veh-003/events", `{"vehicle_id":"veh-003","events":[
			{"stream_id":"0000000000000003","seq":1,"time":"2026-11-27T11:00:00.000Z","type":"clock_source","code":"gnss"},
			{"stream_id":"0000000000000003","seq":2,"time":"2026-11-27T11:00:00.001Z","type":"obd_adapter","code":"bus_fault","detail":"CAN ERROR"},
			{"stream_id":"0000000000000003","seq":3,"time":"2026-11-27T11:00:00.002Z","type":"outbox_trouble","code":"filesystem_full","value":1048576},
			{"stream_id":"0000000000000003","seq":4,"time":"2026-11-27T11:00:00.003Z","type":"unknown_99","code":"future"}]}`},
		{"/api/v1/vehicles/veh-003/events?type=outbox_trouble,clock_source", `{"vehicle_id":"veh-003","events":[
			{"stream_id":"0000000000000003","seq":1,"time":"2026-11-27T11:00:00.000Z","type":"clock_source","code":"gnss"},
			{"stream_id":"0000000000000003","seq":3,"time":"2026-11-27T11:00:00.002Z","type":"outbox_trouble","code":"filesystem_full","value":1048576}]}`},
	} {
		r := c.get(tt.path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tt.path, r.status, r.raw)
		}
		same(t, tt.path, tt.want, r.body)
	}
}

func TestGeoJSONByAcceptHeader(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleViewer)
	r := c.get("/api/v1/vehicles/veh-001/positions", "Accept: application/geo+json")
	if r.status != 200 || r.header.Get("Content-Type") != "application/geo+json" || r.body["type"] != "FeatureCollection" {
		t.Errorf("Accept: application/geo+json: %d %s %s", r.status, r.header.Get("Content-Type"), r.raw)
	}
	r = c.get("/api/v1/vehicles/veh-001/positions", "Accept: application/json, application/geo+json")
	if r.status != 200 || r.body["positions"] == nil {
		t.Errorf("Accept: application/json first: %s", r)
	}
}

func TestFollowingNextVisitsEveryRow(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleViewer)
	var seqs []float64
	path := "/api/v1/vehicles/veh-001/obd?limit=1"
	for range 10 {
		r := c.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", path, r)
		}
		for _, s := range r.body["samples"].([]any) {
			seqs = append(seqs, s.(map[string]any)["seq"].(float64))
		}
		next, ok := r.body["next"].(string)
		if !ok {
			break
		}
		path = "/api/v1/vehicles/veh-001/obd?limit=1&after=" + url.QueryEscape(next)
	}
	if diff := cmp.Diff([]float64{3, 4}, seqs); diff != "" {
		t.Errorf("seqs over the pages (-want +got):\n%s", diff)
	}
	// The vehicle list pages too.
	var ids []string
	path = "/api/v1/vehicles?limit=1"
	for range 5 {
		r := c.get(path)
		for _, v := range r.body["vehicles"].([]any) {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		next, ok := r.body["next"].(string)
		if !ok {
			break
		}
		path = "/api/v1/vehicles?limit=1&after=" + url.QueryEscape(next)
	}
	if diff := cmp.Diff([]string{"veh-001", "veh-002"}, ids); diff != "" {
		t.Errorf("vehicles over the pages (-want +got):\n%s", diff)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleAdmin)
	long := strings.Repeat("x", 65)
	obdNext := c.get("/api/v1/vehicles/veh-001/obd?limit=1").body["next"].(string)
	posNext := c.get("/api/v1/vehicles/veh-001/positions?limit=1").body["next"].(string)
	tests := []struct {
		path    string
		status  int
		code    string
		message string
	}{
		{"/api/v1/vehicles/nobody", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/positions", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/positions?format=geojson", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/obd", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/events", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/trouble-codes", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/device-history", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/commands", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/veh-001/commands/nope", 404, "ENOTFOUND", `has no command "nope"`},
		{"/api/v1/nothing", 404, "ENOTFOUND", "no such endpoint"},
		{"/api/v1/vehicles/" + long, 400, "EINVALID", "invalid vehicle id"},
		{"/api/v1/vehicles/bad.id/positions", 400, "EINVALID", "invalid vehicle id"},
		{"/api/v1/vehicles/veh-001/positions?from=yesterday", 400, "EINVALID", `invalid from "yesterday"`},
		{"/api/v1/vehicles/veh-001/positions?to=2026-13-01T00:00:00Z", 400, "EINVALID", "invalid to"},
		{"/api/v1/vehicles/veh-001/positions?from=2026-11-27T12:00:00Z&to=2026-11-27T11:00:00Z", 400, "EINVALID", "is not before to"},
		{"/api/v1/vehicles/veh-001/positions?from=2026-01-01T00:00:00Z&to=2026-11-27T11:00:00Z", 400, "EINVALID", "longer than 31 days"},
		{"/api/v1/vehicles/veh-001/positions?limit=0", 400, "EINVALID", `invalid limit "0"`},
		{"/api/v1/vehicles/veh-001/positions?limit=-5", 400, "EINVALID", "invalid limit"},
		{"/api/v1/vehicles/veh-001/positions?limit=10001", 400, "EINVALID", "from 1 to 10000"},
		{"/api/v1/vehicles/veh-001/positions?limit=ten", 400, "EINVALID", "invalid limit"},
		{"/api/v1/vehicles/veh-001/positions?after=garbage", 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles/veh-001/positions?after=gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles/veh-001/positions?after=" + url.QueryEscape(obdNext), 400, "EINVALID", "not the \"next\" value of a page of this list"},
		{"/api/v1/vehicles/veh-002/positions?after=" + url.QueryEscape(posNext), 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles/veh-001/positions?to=2026-11-27T10:00:00Z&after=" + url.QueryEscape(posNext), 400, "EINVALID", "outside"},
		{"/api/v1/vehicles/veh-001/positions?form=2026-11-27T10:00:00Z", 400, "EINVALID", `unknown parameter "form"`},
		{"/api/v1/vehicles/veh-001/positions?limit=1&limit=2", 400, "EINVALID", "given 2 times"},
		{"/api/v1/vehicles/veh-001/positions?pid=0C", 400, "EINVALID", `unknown parameter "pid"`},
		{"/api/v1/vehicles/veh-001/positions?format=xml", 400, "EINVALID", `invalid format "xml"`},
		{"/api/v1/vehicles/veh-001/positions?format=geojson&limit=5", 400, "EINVALID", "leave out limit"},
		{"/api/v1/vehicles/veh-001/positions?format=geojson&geometry=polygon", 400, "EINVALID", `invalid geometry`},
		{"/api/v1/vehicles/veh-001/positions?geometry=point", 400, "EINVALID", "geometry is for GeoJSON"},
		{"/api/v1/vehicles/veh-001/obd?pid=XYZ", 400, "EINVALID", `invalid pid "XYZ"`},
		{"/api/v1/vehicles/veh-001/obd?pid=C", 400, "EINVALID", "invalid pid"},
		{"/api/v1/vehicles/veh-001/obd?pid=0000", 400, "EINVALID", "service 00 is not an OBD-II service"},
		{"/api/v1/vehicles/veh-001/obd?pid=0B0C", 400, "EINVALID", "service 0B"},
		{"/api/v1/vehicles/veh-001/obd?after=AAAA", 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles/veh-001/events?type=fire", 400, "EINVALID", `event type "fire"`},
		{"/api/v1/vehicles?limit=0", 400, "EINVALID", `invalid limit`},
		{"/api/v1/vehicles?online=maybe", 400, "EINVALID", `invalid online`},
		{"/api/v1/vehicles?bbox=1,2,3", 400, "EINVALID", `invalid bbox`},
		{"/api/v1/vehicles?bbox=0,50,10,40", 400, "EINVALID", `invalid bbox`},
		{"/api/v1/vehicles?near=43.7,7.4", 400, "EINVALID", `go together`},
		{"/api/v1/vehicles?near=43.7,7.4&radius_m=-1", 400, "EINVALID", `invalid radius_m`},
		{"/api/v1/vehicles?near=95,7.4&radius_m=10", 400, "EINVALID", `invalid near`},
		{"/api/v1/vehicles?after=" + url.QueryEscape(posNext), 400, "EINVALID", `invalid cursor`},
		{"/api/v1/dead-letters?after=xyz", 400, "EINVALID", `invalid cursor`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := c.get(tt.path)
			if r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if r.errorCode() != tt.code || !strings.Contains(r.errorMessage(), tt.message) {
				t.Errorf("error %s, want code %s and a message containing %q", r.raw, tt.code, tt.message)
			}
		})
	}
}

// A wrong method is 405 with Allow, as JSON; an unknown path 404.
func TestWrongMethod(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleAdmin)
	for _, tt := range []struct {
		method, path, allow string
	}{
		{"DELETE", "/api/v1/vehicles/veh-001", "GET, HEAD"},
		{"PUT", "/api/v1/vehicles/veh-001/commands", "GET, HEAD, POST"},
		{"GET", "/api/v1/vehicles/veh-001/commands/x/cancel", "POST"},
		{"POST", "/health", "GET, HEAD"},
	} {
		r := c.do(tt.method, tt.path, "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != tt.allow || r.errorCode() != "EMETHOD" {
			t.Errorf("%s %s: %d Allow %q: %s; want 405 with Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"), r.raw, tt.allow)
		}
	}
}

func TestTimeWithUnescapedPlus(t *testing.T) {
	f := newFixture(t)
	// "+01:00" unescaped in a query string arrives as " 01:00".
	r := f.as(cloud.RoleViewer).get("/api/v1/vehicles/veh-001/positions?from=2026-11-27T12:00:00+01:00&to=2026-11-27T12:00:00.5+01:00")
	if r.status != http.StatusOK || len(r.body["positions"].([]any)) != 1 {
		t.Errorf("%s", r)
	}
}

// /ready names what is down and nothing about the database: no user, host
// or database name (those are in the log).
func TestNotReady(t *testing.T) {
	f := newFixture(t)
	bad := "postgres://secretuser@127.0.0.1:1/secretdb?sslmode=disable&connect_timeout=1"
	f.s.Ready = []httpapi.Check{
		{Name: "PostgreSQL", Pinger: f.db},
		{Name: "Redis", Pinger: redis.NewLiveState("redis://127.0.0.1:1/0", "x:")}, // never opened
		{Name: "archive", Pinger: cloud.PingFunc(func(ctx context.Context) error { return postgres.Reachable(ctx, bad) })},
		{Name: "other", Pinger: cloud.PingFunc(func(context.Context) error {
			return fmt.Errorf("connect to user=secretuser database=secretdb host=10.1.2.3")
		})},
	}
	r := newClient(t, f.ts, "").get("/ready")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("%s", r)
	}
	checks := r.body["checks"].(map[string]any)
	if checks["PostgreSQL"] != "ok" || checks["Redis"] != "unavailable: Redis: not open" || checks["archive"] != "unavailable: connect" ||
		checks["other"] != "unavailable: not reachable" || r.errorCode() != "EUNAVAILABLE" ||
		!strings.HasPrefix(r.errorMessage(), "not reachable: Redis, archive, other") {
		t.Errorf("body %s", r.raw)
	}
	for _, secret := range []string{"secretuser", "secretdb", "10.1.2.3", "127.0.0.1"} {
		if strings.Contains(string(r.raw), secret) {
			t.Errorf("/ready shows %q: %s", secret, r.raw)
		}
	}
}

func TestUnavailableDatabase(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleViewer)
	// Tokens are checked in the same database: an API key lookup that
	// cannot be made is 503, never 401.
	f.db.Close()
	r := c.get("/api/v1/vehicles")
	if r.status != http.StatusServiceUnavailable || r.errorCode() != "EUNAVAILABLE" {
		t.Errorf("%s", r)
	}
	if strings.Contains(string(r.raw), "closed") {
		t.Errorf("internal detail shown to the client: %s", r.raw)
	}
}

func TestRunServesAndStops(t *testing.T) {
	s := httpapi.NewServer(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, "listening", func() error { return testenv.True(s.ListenAddr() != nil) })
	c := clientOf(t, "http://"+s.Addr, "")
	if r := c.get("/health"); r.status != 200 {
		t.Errorf("/health: %s", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
