package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// sseEvent is one event of a live stream; a comment line is an event of
// kind "comment".
type sseEvent struct {
	id, kind string
	data     map[string]any
}

// events reads a stream's events onto a channel until it ends.
func events(t *testing.T, r *bufio.Reader) <-chan sseEvent {
	out := make(chan sseEvent, 1000)
	go func() {
		defer close(out)
		var e sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if e.kind != "" {
					out <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, ":"):
				out <- sseEvent{kind: "comment", data: map[string]any{"text": strings.TrimSpace(line[1:])}}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &e.data); err != nil {
					t.Errorf("data %q: %v", line, err)
				}
			}
		}
	}()
	return out
}

// next returns the next event that is not a comment, failing after 10 s.
func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("the stream ended")
			}
			if e.kind != "comment" {
				return e
			}
		case <-timeout:
			t.Fatal("no event within 10 s")
		}
	}
}

func position(vehicle string, seq uint64, lat, lon float64) cloud.VehicleState {
	return cloud.VehicleState{VehicleID: vehicle, UpdatedAt: now, Position: cloud.Position{
		VehicleID: vehicle, StreamID: 9, Seq: seq, Time: now.Add(time.Duration(seq) * time.Second), Lat: lat, Lon: lon}}
}

func TestLiveStream(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	head, body := f.as(cloud.RoleViewer).stream("/api/v1/live")
	if head.status != 200 || body == nil || head.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("open: %s", head)
	}
	all := events(t, body)
	filtered := func(q string) <-chan sseEvent {
		_, b := f.as(cloud.RoleViewer).stream("/api/v1/live?" + q)
		return events(t, b)
	}
	onlyTwo := filtered("vehicles=veh-002")
	statuses := filtered("types=status")
	inMonaco := filtered("bbox=7.4,43.7,7.5,43.8")

	if err := f.live.UpdateLatest(ctx, []cloud.VehicleState{position("veh-001", 1, 43.7384, 7.4246), position("veh-002", 1, 48.85, 2.35)}); err != nil {
		t.Fatal(err)
	}
	status := &cloud.DeviceStatus{VehicleID: "veh-001", Online: true, Time: now, OutboxDepth: 2, ReceivedAt: now}
	event := &cloud.Event{VehicleID: "veh-002", StreamID: 9, Seq: 2, Time: now, Type: telemetry.EventDTCSet, Code: "P0420"}
	if err := f.live.Announce(ctx, []cloud.LiveUpdate{
		{Kind: cloud.LiveStatus, VehicleID: "veh-001", Status: status},
		{Kind: cloud.LiveEvent, VehicleID: "veh-002", Event: event},
	}); err != nil {
		t.Fatal(err)
	}
	var got []sseEvent
	for range 4 {
		got = append(got, next(t, all))
	}
	if got[0].kind != "position" || got[0].data["vehicle_id"] != "veh-001" || got[0].data["lat"] != 43.7384 || got[0].id == "" ||
		got[1].kind != "position" || got[1].data["vehicle_id"] != "veh-002" ||
		got[2].kind != "status" || got[2].data["device"].(map[string]any)["outbox_depth"] != 2.0 ||
		got[3].kind != "event" || got[3].data["event"].(map[string]any)["code"] != "P0420" || got[3].data["event"].(map[string]any)["type"] != "dtc_set" {
		t.Errorf("events %+v", got)
	}
	if e := next(t, onlyTwo); e.kind != "position" || e.data["vehicle_id"] != "veh-002" {
		t.Errorf("vehicles=veh-002: %+v", e)
	}
	if e := next(t, onlyTwo); e.kind != "event" || e.data["vehicle_id"] != "veh-002" {
		t.Errorf("vehicles=veh-002: %+v", e)
	}
	if e := next(t, statuses); e.kind != "status" {
		t.Errorf("types=status: %+v", e)
	}
	// veh-001 is in Monaco: its position and its status, not veh-002's.
	if e := next(t, inMonaco); e.kind != "position" || e.data["vehicle_id"] != "veh-001" {
		t.Errorf("bbox: %+v", e)
	}
	if e := next(t, inMonaco); e.kind != "status" || e.data["vehicle_id"] != "veh-001" {
		t.Errorf("bbox: %+v", e)
	}
	// Heartbeats while nothing happens.
	deadline := time.After(5 * time.Second)
	for beat := false; !beat; {
		select {
		case e := <-all:
			beat = e.kind == "comment" && e.data["text"] == "heartbeat"
		case <-deadline:
			t.Fatal("no heartbeat within 5 s")
		}
	}

	// Resuming after the first event replays the three after it.
	_, resumed := f.as(cloud.RoleViewer).stream("/api/v1/live", "Last-Event-ID: "+got[0].id)
	r := events(t, resumed)
	for i := 1; i < 4; i++ {
		if e := next(t, r); e.id != got[i].id || e.kind != got[i].kind {
			t.Errorf("resumed event %d: %+v, want %+v", i, e, got[i])
		}
	}
	// After an id the buffer no longer holds, the stream says to reload.
	_, stale := f.as(cloud.RoleViewer).stream("/api/v1/live?last_event_id=1-0")
	if e := next(t, events(t, stale)); e.kind != "reset" {
		t.Errorf("after a forgotten id: %+v, want a reset", e)
	}
	for _, bad := range []string{"vehicles=bad.id", "types=gossip", "bbox=1,2", "last_event_id=yesterday", "limit=5"} {
		if r, _ := f.as(cloud.RoleViewer).stream("/api/v1/live?" + bad); r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", bad, r)
		}
	}
}

func TestLiveStreamsPerToken(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.MaxStreams = 2 })
	c := f.as(cloud.RoleViewer)
	for range 2 {
		if r, _ := c.stream("/api/v1/live"); r.status != 200 {
			t.Fatalf("a stream within the cap: %s", r)
		}
	}
	r, _ := c.stream("/api/v1/live")
	if r.status != http.StatusTooManyRequests || r.errorCode() != "ETOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
		t.Errorf("a third stream: %s", r)
	}
	if r, _ := f.as(cloud.RoleAdmin).stream("/api/v1/live"); r.status != 200 {
		t.Errorf("another token's stream: %s", r)
	}
}

// The geographic filters come from the Redis GEO index; when Redis is down
// they and the latest positions come from PostgreSQL, and the answer says
// so.
func TestVehicleListFromRedisOrPostgres(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.live.UpdateLatest(ctx, []cloud.VehicleState{position("veh-001", 3, 43.7384, 7.4246)}); err != nil {
		t.Fatal(err)
	}
	c := f.as(cloud.RoleViewer)
	r := c.get("/api/v1/vehicles?near=43.7384,7.4246&radius_m=1000")
	vs := r.body["vehicles"].([]any)
	if r.body["source"] != "redis" || len(vs) != 1 || vs[0].(map[string]any)["distance_m"] == nil ||
		vs[0].(map[string]any)["position"].(map[string]any)["time"] != "2026-11-27T12:00:03.000Z" {
		t.Errorf("near, from Redis: %s", r)
	}
	if r := c.get("/api/v1/vehicles?bbox=7.4,43.7,7.5,43.8&online=true"); r.body["source"] != "redis" || len(r.body["vehicles"].([]any)) != 1 {
		t.Errorf("bbox, from Redis: %s", r)
	}
	if r := c.get("/api/v1/vehicles?bbox=0,0,1,1"); r.body["source"] != "redis" || len(r.body["vehicles"].([]any)) != 0 {
		t.Errorf("an empty bbox: %s", r)
	}
	f.s.Live = redisDown(t)
	r = c.get("/api/v1/vehicles?near=43.7384,7.4246&radius_m=1000")
	vs = r.body["vehicles"].([]any)
	if r.status != 200 || r.body["source"] != "postgres" || len(vs) != 1 ||
		vs[0].(map[string]any)["position"].(map[string]any)["time"] != "2026-11-27T11:00:01.000Z" {
		t.Errorf("near, Redis down: %s", r)
	}
	if r := c.get("/api/v1/vehicles/veh-001"); r.status != 200 || r.body["source"] != "postgres" {
		t.Errorf("one vehicle, Redis down: %s", r)
	}
}

// redisDown returns a live store whose Redis is gone (closed).
func redisDown(t *testing.T) *redis.LiveState {
	t.Helper()
	gone := redis.NewLiveState(testenv.Redis(t))
	if err := gone.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	return gone
}

// listed returns the vehicle id of a list's answer.
func listed(t *testing.T, r *response, id string) map[string]any {
	t.Helper()
	vs, _ := r.body["vehicles"].([]any)
	for _, v := range vs {
		if m := v.(map[string]any); m["id"] == id {
			return m
		}
	}
	t.Fatalf("%s not in %s", id, r)
	return nil
}

// The PostgreSQL part of a list (vehicles, statuses, trouble codes) is kept
// for the TTL; the positions are read from Redis on every request, and when
// Redis is down the list is read from PostgreSQL afresh, cached or not.
func TestVehicleListCache(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.ListCacheTTL = time.Hour })
	ctx := context.Background()
	c := f.as(cloud.RoleViewer)
	r := c.get("/api/v1/vehicles")
	if p := listed(t, r, "veh-001")["position"].(map[string]any); r.status != 200 || p["time"] != "2026-11-27T11:00:01.000Z" {
		t.Fatalf("the first list: %s", r)
	}
	// A newer position in Redis is in the next list at once.
	if err := f.live.UpdateLatest(ctx, []cloud.VehicleState{position("veh-001", 3, 43.74, 7.43)}); err != nil {
		t.Fatal(err)
	}
	// A new status in PostgreSQL is not, within the TTL.
	if err := f.db.SaveStatus(ctx, &cloud.DeviceStatus{VehicleID: "veh-002", Online: true, Time: now, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	r = c.get("/api/v1/vehicles")
	if p := listed(t, r, "veh-001")["position"].(map[string]any); r.body["source"] != "redis" || p["time"] != "2026-11-27T12:00:03.000Z" || p["lat"] != 43.74 {
		t.Errorf("the position from Redis: %s", r)
	}
	if v := listed(t, r, "veh-002"); v["online"] != false {
		t.Errorf("the cached status of veh-002: %v", v)
	}
	// Another page is another list: read from PostgreSQL.
	if r := c.get("/api/v1/vehicles?online=true"); len(r.body["vehicles"].([]any)) != 2 {
		t.Errorf("online, not cached yet: %s", r)
	}
	// Redis goes away: everything from PostgreSQL, as it is now.
	f.s.Live = redisDown(t)
	r = c.get("/api/v1/vehicles")
	if p := listed(t, r, "veh-001")["position"].(map[string]any); r.status != 200 || r.body["source"] != "postgres" || p["time"] != "2026-11-27T11:00:01.000Z" {
		t.Errorf("Redis down: %s", r)
	}
	if v := listed(t, r, "veh-002"); v["online"] != true {
		t.Errorf("Redis down, the status of veh-002: %v", v)
	}
}
