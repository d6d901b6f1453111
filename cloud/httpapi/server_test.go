package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture: a real database holding two vehicles, served by httptest.
func newServer(t *testing.T) (*httptest.Server, *httpapi.Server, *postgres.DB) {
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

	full := telemetry.Position{Seq: 1, UnixMs: now.Add(-time.Hour).UnixMilli(), LatE7: 437384166, LonE7: 74246333,
		Has:   telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
		AltCm: 5230, SpeedMmps: 13891, CourseCdeg: 4520, Mode: 3, Quality: 1, SatsUsed: 9, HDOPc: 90}
	bare := telemetry.Position{Seq: 2, UnixMs: now.Add(-time.Hour).UnixMilli() + 1000, LatE7: 437384200, LonE7: 74246400}
	b := &telemetry.Batch{VehicleID: "veh-001", StreamID: 0xfedcba9876543210,
		Positions: []telemetry.Position{full, bare},
		OBD: []telemetry.OBDSample{
			{Seq: 3, UnixMs: now.Add(-time.Hour).UnixMilli() + 412, PID: 0x010C, Value: 1303.75},
			{Seq: 4, UnixMs: now.Add(-time.Hour).UnixMilli() + 500, PID: 0x010D, Value: 50},
		}}
	idle := &telemetry.Batch{VehicleID: "veh-002", StreamID: 1,
		OBD: []telemetry.OBDSample{{Seq: 1, UnixMs: now.Add(-time.Hour).UnixMilli(), PID: 0x0105, Value: 90}}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b, idle}, ReceivedAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	s := httpapi.NewServer(":0")
	s.Vehicles, s.Positions, s.OBD = db, db, db
	s.Now = func() time.Time { return now }
	s.Ready = []httpapi.Check{{Name: "PostgreSQL", Pinger: db}}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, s, db
}

func get(t *testing.T, ts *httptest.Server, path string) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, raw)
	}
	return resp.StatusCode, body, string(raw)
}

func TestEndpoints(t *testing.T) {
	ts, _, _ := newServer(t)
	q := "?from=" + url.QueryEscape("2026-11-27T10:00:00Z") + "&to=" + url.QueryEscape("2026-11-27T13:00:00+01:00")
	tests := []struct {
		path string
		want string
	}{
		{"/health", `{"status":"ok"}`},
		{"/ready", `{"status":"ready","checks":{"PostgreSQL":"ok"}}`},
		{"/api/v1/vehicles", `{"vehicles":[
			{"id":"veh-001","first_seen":"2026-11-27T11:59:00.000Z","last_seen":"2026-11-27T11:59:00.000Z",
			 "position":{"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}},
			{"id":"veh-002","first_seen":"2026-11-27T11:59:00.000Z","last_seen":"2026-11-27T11:59:00.000Z"}]}`},
		{"/api/v1/vehicles/veh-001", `{"id":"veh-001","first_seen":"2026-11-27T11:59:00.000Z","last_seen":"2026-11-27T11:59:00.000Z",
			 "position":{"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}}`},
		{"/api/v1/vehicles/veh-001/positions", `{"vehicle_id":"veh-001","positions":[
			{"stream_id":"fedcba9876543210","seq":1,"time":"2026-11-27T11:00:00.000Z","lat":43.7384166,"lon":7.4246333,
			 "alt_m":52.3,"speed_mps":13.891,"course_deg":45.2,"mode":3,"quality":1,"sats":9,"hdop":0.9},
			{"stream_id":"fedcba9876543210","seq":2,"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}]}`},
		{"/api/v1/vehicles/veh-001/positions" + q + "&limit=1", `{"vehicle_id":"veh-001","positions":[
			{"stream_id":"fedcba9876543210","seq":1,"time":"2026-11-27T11:00:00.000Z","lat":43.7384166,"lon":7.4246333,
			 "alt_m":52.3,"speed_mps":13.891,"course_deg":45.2,"mode":3,"quality":1,"sats":9,"hdop":0.9}],
			 "next":"` + cloud.Cursor{Time: now.Add(-time.Hour), StreamID: 0xfedcba9876543210, Seq: 1}.String() + `"}`},
		{"/api/v1/vehicles/veh-001/positions?from=2026-11-27T11:00:00.5Z", `{"vehicle_id":"veh-001","positions":[
			{"stream_id":"fedcba9876543210","seq":2,"time":"2026-11-27T11:00:01.000Z","lat":43.73842,"lon":7.42464}]}`},
		{"/api/v1/vehicles/veh-001/positions?to=2026-11-26T00:00:00Z", `{"vehicle_id":"veh-001","positions":[]}`},
		{"/api/v1/vehicles/veh-001/obd", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":3,"time":"2026-11-27T11:00:00.412Z","pid":"0C","mode":"01","value":1303.75},
			{"stream_id":"fedcba9876543210","seq":4,"time":"2026-11-27T11:00:00.500Z","pid":"0D","mode":"01","value":50}]}`},
		{"/api/v1/vehicles/veh-001/obd?pid=0D", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":4,"time":"2026-11-27T11:00:00.500Z","pid":"0D","mode":"01","value":50}]}`},
		{"/api/v1/vehicles/veh-001/obd?pid=010c", `{"vehicle_id":"veh-001","samples":[
			{"stream_id":"fedcba9876543210","seq":3,"time":"2026-11-27T11:00:00.412Z","pid":"0C","mode":"01","value":1303.75}]}`},
		{"/api/v1/vehicles/veh-002/positions", `{"vehicle_id":"veh-002","positions":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st, got, raw := get(t, ts, tt.path)
			if st != http.StatusOK {
				t.Fatalf("status %d: %s", st, raw)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatalf("bad expectation: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFollowingNextVisitsEveryRow(t *testing.T) {
	ts, _, _ := newServer(t)
	var seqs []float64
	path := "/api/v1/vehicles/veh-001/obd?limit=1"
	for range 10 {
		st, body, raw := get(t, ts, path)
		if st != http.StatusOK {
			t.Fatalf("%s: %s", path, raw)
		}
		for _, s := range body["samples"].([]any) {
			seqs = append(seqs, s.(map[string]any)["seq"].(float64))
		}
		next, ok := body["next"].(string)
		if !ok {
			break
		}
		path = "/api/v1/vehicles/veh-001/obd?limit=1&after=" + url.QueryEscape(next)
	}
	if diff := cmp.Diff([]float64{3, 4}, seqs); diff != "" {
		t.Errorf("seqs over the pages (-want +got):\n%s", diff)
	}
}

func TestBadRequests(t *testing.T) {
	ts, _, _ := newServer(t)
	long := strings.Repeat("x", 65)
	tests := []struct {
		path    string
		status  int
		code    string
		message string
	}{
		{"/api/v1/vehicles/nobody", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/positions", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/vehicles/nobody/obd", 404, "ENOTFOUND", `vehicle "nobody" not found`},
		{"/api/v1/nothing", 404, "ENOTFOUND", "no such endpoint"},
		{"/api/v1/vehicles/" + long, 400, "EINVALID", "invalid vehicle id"},
		{"/api/v1/vehicles/bad.id/positions", 400, "EINVALID", "invalid vehicle id"},
		{"/api/v1/vehicles/veh-001/positions?from=yesterday", 400, "EINVALID", `invalid from "yesterday"`},
		{"/api/v1/vehicles/veh-001/positions?to=2026-13-01T00:00:00Z", 400, "EINVALID", "invalid to"},
		{"/api/v1/vehicles/veh-001/positions?from=2026-11-27T12:00:00Z&to=2026-11-27T11:00:00Z", 400, "EINVALID", "is not before to"},
		{"/api/v1/vehicles/veh-001/positions?limit=0", 400, "EINVALID", `invalid limit "0"`},
		{"/api/v1/vehicles/veh-001/positions?limit=-5", 400, "EINVALID", "invalid limit"},
		{"/api/v1/vehicles/veh-001/positions?limit=10001", 400, "EINVALID", "from 1 to 10000"},
		{"/api/v1/vehicles/veh-001/positions?limit=ten", 400, "EINVALID", "invalid limit"},
		{"/api/v1/vehicles/veh-001/positions?after=garbage", 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles/veh-001/positions?form=2026-11-27T10:00:00Z", 400, "EINVALID", `unknown parameter "form"`},
		{"/api/v1/vehicles/veh-001/positions?limit=1&limit=2", 400, "EINVALID", "given 2 times"},
		{"/api/v1/vehicles/veh-001/positions?pid=0C", 400, "EINVALID", `unknown parameter "pid"`},
		{"/api/v1/vehicles/veh-001/obd?pid=XYZ", 400, "EINVALID", `invalid pid "XYZ"`},
		{"/api/v1/vehicles/veh-001/obd?pid=C", 400, "EINVALID", "invalid pid"},
		{"/api/v1/vehicles/veh-001/obd?after=AAAA", 400, "EINVALID", "invalid cursor"},
		{"/api/v1/vehicles?limit=5", 400, "EINVALID", `unknown parameter "limit"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st, body, raw := get(t, ts, tt.path)
			if st != tt.status {
				t.Errorf("status %d, want %d: %s", st, tt.status, raw)
			}
			e, _ := body["error"].(map[string]any)
			if e["code"] != tt.code || !strings.Contains(fmt.Sprint(e["message"]), tt.message) {
				t.Errorf("error %v, want code %s and a message containing %q", e, tt.code, tt.message)
			}
		})
	}
}

func TestTimeWithUnescapedPlus(t *testing.T) {
	ts, _, _ := newServer(t)
	// "+01:00" unescaped in a query string arrives as " 01:00".
	st, body, raw := get(t, ts, "/api/v1/vehicles/veh-001/positions?from=2026-11-27T12:00:00+01:00&to=2026-11-27T12:00:00.5+01:00")
	if st != http.StatusOK || len(body["positions"].([]any)) != 1 {
		t.Errorf("status %d: %s", st, raw)
	}
}

func TestNotReady(t *testing.T) {
	ts, s, db := newServer(t)
	s.Ready = []httpapi.Check{
		{Name: "PostgreSQL", Pinger: db},
		{Name: "Redis", Pinger: redis.NewLiveState("redis://127.0.0.1:1/0", "x:")}, // never opened
	}
	st, body, raw := get(t, ts, "/ready")
	if st != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", st, raw)
	}
	checks := body["checks"].(map[string]any)
	e := body["error"].(map[string]any)
	if checks["PostgreSQL"] != "ok" || checks["Redis"] == "ok" || e["code"] != "EUNAVAILABLE" || e["message"] != "not reachable: Redis" {
		t.Errorf("body %s", raw)
	}
}

func TestUnavailableDatabase(t *testing.T) {
	ts, _, db := newServer(t)
	db.Close()
	st, body, raw := get(t, ts, "/api/v1/vehicles")
	if st != http.StatusServiceUnavailable || body["error"].(map[string]any)["code"] != "EUNAVAILABLE" {
		t.Errorf("status %d: %s", st, raw)
	}
	if strings.Contains(raw, "closed") {
		t.Errorf("internal detail shown to the client: %s", raw)
	}
}

func TestRunServesAndStops(t *testing.T) {
	s := httpapi.NewServer(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var resp *http.Response
	end := time.Now().Add(10 * time.Second)
	for {
		var err error
		resp, err = http.Get("http://" + s.Addr + "/health")
		if err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("server not answering: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
