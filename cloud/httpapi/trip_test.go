package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// twoTrips commits two ten-minute drives of veh-001 with the ignition,
// three hours ago, and runs the trip job.
func twoTrips(t *testing.T) (*client, *postgres.DB, []map[string]any) {
	t.Helper()
	f := newFixture(t, func(s *httpapi.Server) { s.Trips = s.Vehicles.(*postgres.DB) })
	ts, db := f.as(cloud.RoleViewer), f.db
	start := now.Add(-3 * time.Hour)
	b := &telemetry.Batch{VehicleID: "veh-trip", StreamID: 77}
	seq := uint64(0)
	lon := int32(74246333)
	for trip := range 2 {
		t0 := start.Add(time.Duration(trip) * time.Hour)
		seq++
		b.Events = append(b.Events, telemetry.Event{Seq: seq, UnixMs: t0.UnixMilli(), Type: telemetry.EventIgnitionOn, Code: "obd"})
		for i := range 600 {
			seq++
			lon += 1241 // about 10 m at 43.7°N
			b.Positions = append(b.Positions, telemetry.Position{Seq: seq, UnixMs: t0.Add(time.Duration(i+1) * time.Second).UnixMilli(),
				LatE7: 437384166, LonE7: lon, Has: telemetry.HasSpeed, SpeedMmps: 10000})
		}
		seq++
		end := t0.Add(601 * time.Second)
		b.Positions = append(b.Positions, telemetry.Position{Seq: seq, UnixMs: end.UnixMilli(), LatE7: 437384166, LonE7: lon, Has: telemetry.HasSpeed})
		seq++
		b.Events = append(b.Events, telemetry.Event{Seq: seq, UnixMs: end.UnixMilli(), Type: telemetry.EventIgnitionOff, Code: "obd"})
	}
	seq++
	b.Positions = append(b.Positions, telemetry.Position{Seq: seq, UnixMs: now.Add(-time.Minute).UnixMilli(), LatE7: 437384166, LonE7: lon, Has: telemetry.HasSpeed})
	if _, err := db.Commit(context.Background(), &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecomputeTrips(context.Background(), cloud.TripConfig{}, 10); err != nil {
		t.Fatal(err)
	}
	st, body, raw := get(t, ts, "/api/v1/vehicles/veh-trip/trips?from=2026-11-27T08:00:00Z")
	if st != http.StatusOK {
		t.Fatalf("trips: %d %s", st, raw)
	}
	var trips []map[string]any
	for _, x := range body["trips"].([]any) {
		trips = append(trips, x.(map[string]any))
	}
	if len(trips) != 2 {
		t.Fatalf("%d trips: %s", len(trips), raw)
	}
	return ts, db, trips
}

// get is the trip tests' GET: through the validating client.
func get(t *testing.T, c *client, path string) (int, map[string]any, string) {
	t.Helper()
	r := c.get(path)
	return r.status, r.body, string(r.raw)
}

func TestTripEndpoints(t *testing.T) {
	ts, _, trips := twoTrips(t)
	first := trips[0]
	if first["start"].(map[string]any)["time"] != "2026-11-27T09:00:00.000Z" || first["end"].(map[string]any)["time"] != "2026-11-27T09:10:01.000Z" {
		t.Errorf("first trip: %v", first)
	}
	if d := first["distance_m"].(float64); d < 5900 || d > 6100 {
		t.Errorf("distance %v", d)
	}
	for _, k := range []string{"id", "open", "duration_s", "driving_s", "idle_s", "stopped_s", "max_speed_mps", "avg_speed_mps", "fixes"} {
		if _, ok := first[k]; !ok {
			t.Errorf("no %q in %v", k, first)
		}
	}
	if m := first["match"].(map[string]any); m["status"] != "pending" {
		t.Errorf("match %v", m)
	}
	// Pages of one.
	st, body, raw := get(t, ts, "/api/v1/vehicles/veh-trip/trips?from=2026-11-27T08:00:00Z&limit=1")
	next, _ := body["next"].(string)
	if st != http.StatusOK || len(body["trips"].([]any)) != 1 || next == "" {
		t.Fatalf("first page: %d %s", st, raw)
	}
	_, body, raw = get(t, ts, "/api/v1/vehicles/veh-trip/trips?from=2026-11-27T08:00:00Z&limit=1&after="+next)
	if got := body["trips"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != trips[1]["id"] || body["next"] != nil {
		t.Errorf("second page: %s", raw)
	}
	// A window that only overlaps the end of the first trip still has it.
	_, body, _ = get(t, ts, "/api/v1/vehicles/veh-trip/trips?from=2026-11-27T09:05:00Z&to=2026-11-27T09:30:00Z")
	if got := body["trips"].([]any); len(got) != 1 {
		t.Errorf("overlapping window: %d trips", len(got))
	}

	path := fmt.Sprintf("/api/v1/vehicles/veh-trip/trips/%.0f", first["id"].(float64))
	st, body, raw = get(t, ts, path)
	if st != http.StatusOK {
		t.Fatalf("one trip: %d %s", st, raw)
	}
	rawLine := body["raw"].(map[string]any)
	if rawLine["type"] != "LineString" || len(rawLine["coordinates"].([]any)) != 601 || body["matched"] != nil {
		t.Errorf("raw geometry %v points, matched %v", len(rawLine["coordinates"].([]any)), body["matched"])
	}
	if c := rawLine["coordinates"].([]any)[0].([]any); c[0].(float64) < 7.42 || c[1].(float64) < 43.73 {
		t.Errorf("first point %v: want [lon, lat]", c)
	}
}

func TestTripMatchedGeometry(t *testing.T) {
	ts, db, trips := twoTrips(t)
	claimed, err := db.ClaimTripsToMatch(context.Background(), now, 1, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	geom := [][][2]float64{{{7.4246, 43.7384}, {7.4300, 43.7390}}, {{7.4310, 43.7391}, {7.4320, 43.7392}}}
	m := cloud.TripMatch{Status: cloud.MatchMatched, DistanceM: 5987.5, Confidence: 0.87, Geometry: geom}
	if err := db.SaveMatch(context.Background(), claimed[0], m, time.Time{}); err != nil {
		t.Fatal(err)
	}
	st, body, raw := get(t, ts, fmt.Sprintf("/api/v1/vehicles/veh-trip/trips/%.0f", trips[0]["id"].(float64)))
	if st != http.StatusOK {
		t.Fatalf("%d %s", st, raw)
	}
	want := `{"coordinates":[[[7.4246,43.7384],[7.43,43.739]],[[7.431,43.7391],[7.432,43.7392]]],"type":"MultiLineString"}` // keys sorted by the map
	if got, _ := json.Marshal(body["matched"]); string(got) != want {
		t.Errorf("matched %s\nwant    %s", got, want)
	}
	if mj := body["trip"].(map[string]any)["match"].(map[string]any); mj["status"] != "matched" || mj["distance_m"] != 5987.5 || mj["confidence"] != 0.87 {
		t.Errorf("match %v", mj)
	}
}

func TestTripErrors(t *testing.T) {
	ts, _, trips := twoTrips(t)
	id := fmt.Sprintf("%.0f", trips[0]["id"].(float64))
	for path, want := range map[string]int{
		"/api/v1/vehicles/veh-trip/trips/abc":          400,
		"/api/v1/vehicles/veh-trip/trips/0":            400,
		"/api/v1/vehicles/veh-trip/trips/999999":       404,
		"/api/v1/vehicles/veh-002/trips/" + id:         404,
		"/api/v1/vehicles/veh-trip/trips/" + id + "?x": 400,
		"/api/v1/vehicles/veh-trip/trips?bogus=1":      400,
		"/api/v1/vehicles/veh-trip/trips?limit=0":      400,
		"/api/v1/vehicles/nobody/trips":                404,
		"/api/v1/vehicles/bad%20id/trips":              400,
	} {
		st, body, raw := get(t, ts, path)
		if st != want || body["error"] == nil {
			t.Errorf("GET %s: %d %s, want %d with an error", path, st, raw, want)
		}
	}
	bare := newFixture(t).as(cloud.RoleViewer) // no trip service
	if st, _, raw := get(t, bare, "/api/v1/vehicles/veh-trip/trips"); st != http.StatusServiceUnavailable {
		t.Errorf("without a trip service: %d %s", st, raw)
	}
}
