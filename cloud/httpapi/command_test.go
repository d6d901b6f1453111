package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/dispatch"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
)

func TestCommands(t *testing.T) {
	var mu sync.Mutex
	tick := now
	f := newFixture(t, func(s *httpapi.Server) {
		s.Now = func() time.Time { // commands made one after another have different times
			mu.Lock()
			defer mu.Unlock()
			tick = tick.Add(time.Millisecond)
			return tick
		}
	})
	c := f.as(cloud.RoleOperator)
	r := c.post("/api/v1/vehicles/veh-001/commands", `{"type":"set_pids","pids":["0C","0d"],"ttl_s":60}`)
	id, _ := r.body["id"].(string)
	if r.status != http.StatusAccepted || r.body["status"] != "sent" || r.header.Get("Location") != "/api/v1/vehicles/veh-001/commands/"+id ||
		!strings.HasPrefix(r.body["expires"].(string), "2026-11-27T12:01:00.") || r.body["token"] != "test-operator" {
		t.Fatalf("create: %s", r)
	}
	if r := f.as(cloud.RoleViewer).get("/api/v1/vehicles/veh-001/commands/" + id); r.status != 200 || r.body["status"] != "sent" {
		t.Errorf("get: %s", r)
	}
	// The broker is gone: the command is stored, pending, and retried.
	f.broker.setDown(true)
	r = c.post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`)
	pending, _ := r.body["id"].(string)
	if r.status != http.StatusAccepted || r.body["status"] != "pending" {
		t.Errorf("create while the broker is gone: %s", r)
	}
	r = c.post("/api/v1/vehicles/veh-001/commands", `{"type":"report_status"}`)
	retried, _ := r.body["id"].(string)
	if r := c.post("/api/v1/vehicles/veh-001/commands/"+pending+"/cancel", ""); r.status != 200 || r.body["status"] != "cancelled" {
		t.Errorf("cancel a pending command: %s", r)
	}
	for _, cmd := range []string{pending, id} {
		if r := c.post("/api/v1/vehicles/veh-001/commands/"+cmd+"/cancel", ""); r.status != http.StatusConflict || r.errorCode() != "ECONFLICT" {
			t.Errorf("cancel %s (cancelled or sent): %s", cmd, r)
		}
	}
	f.broker.setDown(false)
	d := dispatch.New(f.db, f.broker)
	d.Now = func() time.Time { return now.Add(time.Minute) }
	d.Grace = 0
	d.Interval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.as(cloud.RoleViewer).get("/api/v1/vehicles/veh-001/commands/" + retried).body["status"] != "sent" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	r = f.as(cloud.RoleViewer).get("/api/v1/vehicles/veh-001/commands")
	var list []string
	for _, x := range r.body["commands"].([]any) {
		m := x.(map[string]any)
		list = append(list, m["status"].(string))
	}
	if got := strings.Join(list, ","); got != "sent,cancelled,sent" {
		t.Errorf("statuses newest first after the retry: %s", got)
	}
	if len(f.broker.sent) != 2 {
		t.Errorf("published %v, want 2 (the cancelled one never)", f.broker.sent)
	}
}

// The same Idempotency-Key gets the same command back; with another body
// it is 409.
func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleOperator)
	key := "Idempotency-Key: 8e3c4c3e-0b6b-4c7e-9f0a-2d6f7b9f1a11"
	first := c.post("/api/v1/vehicles/veh-001/commands", `{"type":"set_report_interval","interval_ms":5000}`, key)
	again := c.post("/api/v1/vehicles/veh-001/commands", `{ "interval_ms": 5000, "type": "set_report_interval" }`, key)
	if first.status != 202 || again.status != 202 || again.body["id"] != first.body["id"] || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same request twice: %s then %s", first, again)
	}
	other := c.post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`, key)
	if other.status != http.StatusConflict || !strings.Contains(other.errorMessage(), "Idempotency-Key") {
		t.Errorf("the key with another body: %s", other)
	}
	// Keys are per vehicle, and a bad key is refused.
	if r := c.post("/api/v1/vehicles/veh-002/commands", `{"type":"read_dtcs"}`, key); r.status != 202 {
		t.Errorf("the key on another vehicle: %s", r)
	}
	if r := c.post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`, "Idempotency-Key: has space"); r.status != 400 {
		t.Errorf("a bad key: %s", r)
	}
	if len(f.broker.sent) != 2 {
		t.Errorf("published %d commands, want 2", len(f.broker.sent))
	}
}

func TestBadCommands(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleOperator)
	for _, tt := range []struct{ body, message string }{
		{`{"type":"read_dtcs","ttl_s":36028797018964028}`, "ttl_s 36028797018964028: must be 1 to 604800"},
		{`{"type":"read_dtcs","ttl_s":0}`, "ttl_s 0"},
		{`{"type":"read_dtcs","ttl_s":-5}`, "ttl_s -5"},
		{`{"type":"read_dtcs"} garbage`, "data after the JSON object"},
		{`{"type":"read_dtcs"}{"type":"read_dtcs"}`, "data after the JSON object"},
		{`{"type":"read_dtcs"`, "command body"},
		{``, "empty body"},
		{`{"type":"read_dtcs","extra":1}`, `unknown field "extra"`},
		{`{"type":"reboot"}`, `type "reboot"`},
		{`{"type":"set_report_interval","interval_ms":5}`, "interval_ms 5"},
		{`{"type":"set_pids","pids":["0C","XYZ"]}`, `pids[1] "XYZ"`},
		{`{"type":"read_dtcs","pids":["0C"]}`, "pids is only for set_pids"},
		{`{"type":"read_dtcs","ttl_s":"60"}`, "command body"},
		{`[` + strings.Repeat(" ", 70<<10) + `]`, "command body"},
	} {
		r := c.post("/api/v1/vehicles/veh-001/commands", tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), tt.message) {
			t.Errorf("%.60s: %s, want 400 saying %q", tt.body, r, tt.message)
		}
	}
	if r := c.post("/api/v1/vehicles/nobody/commands", `{"type":"read_dtcs"}`); r.status != http.StatusNotFound {
		t.Errorf("a command to nobody: %s", r)
	}
	if len(f.broker.sent) != 0 {
		t.Errorf("published %v", f.broker.sent)
	}
}

// A vehicle that has only sent statuses is listed, can be read and can be
// sent commands.
func TestStatusOnlyVehicle(t *testing.T) {
	f := newFixture(t)
	st := cloud.DeviceStatus{VehicleID: "quiet-1", Online: true, Time: now.Add(-time.Minute), ReceivedAt: now}
	if _, err := f.db.Commit(context.Background(), &cloud.Commit{Statuses: []cloud.DeviceStatus{st}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	c := f.as(cloud.RoleOperator)
	if r := c.get("/api/v1/vehicles?online=true"); !strings.Contains(string(r.raw), `"id":"quiet-1"`) {
		t.Errorf("list: %s", r)
	}
	if r := c.get("/api/v1/vehicles/quiet-1"); r.status != 200 || r.body["online"] != true || r.body["position"] != nil {
		t.Errorf("get: %s", r)
	}
	if r := c.post("/api/v1/vehicles/quiet-1/commands", `{"type":"report_status"}`); r.status != 202 || r.body["status"] != "sent" {
		t.Errorf("command: %s", r)
	}
}

// slowPositions is the store's PositionService behind a query that runs
// until its context ends, as a query stuck behind a lock does.
type slowPositions struct{ cloud.PositionService }

func (slowPositions) FindPositions(ctx context.Context, _ cloud.PositionFilter) ([]*cloud.Position, *cloud.Cursor, error) {
	<-ctx.Done()
	return nil, nil, cloud.Errorf(cloud.EUNAVAILABLE, "find positions: %w", ctx.Err())
}

// A request longer than the timeout ends with 503 ETIMEOUT saying so.
func TestRequestTimeout(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) {
		s.RequestTimeout = 200 * time.Millisecond
		s.Positions = slowPositions{s.Positions}
	})
	r := f.as(cloud.RoleViewer).get("/api/v1/vehicles/veh-001/positions")
	if r.status != http.StatusServiceUnavailable || r.errorCode() != "ETIMEOUT" || !strings.Contains(r.errorMessage(), "longer than 200ms") {
		t.Errorf("%s", r)
	}
}
