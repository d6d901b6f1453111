package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
)

// noVehicles is a VehicleService without vehicles.
type noVehicles struct{}

func (noVehicles) FindVehicleByID(_ context.Context, id string) (*cloud.Vehicle, error) {
	return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", id)
}

func (noVehicles) FindVehicles(context.Context, cloud.VehicleFilter) ([]*cloud.Vehicle, bool, error) {
	return nil, false, nil
}

// TestObserverSeesRouteAndStatus: every request reaches the Observer with
// its route pattern (not its path: one series per route, however many
// vehicles) and the status written.
func TestObserverSeesRouteAndStatus(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := httpapi.NewServer("")
	s.Vehicles = noVehicles{}
	s.Observe = func(route string, status int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took < 0 {
			t.Errorf("negative duration for %s", route)
		}
		seen = append(seen, route+" "+http.StatusText(status))
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := newClient(t, ts, "")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/health"},
		{"GET", "/api/v1/vehicles/veh-001"},
		{"GET", "/api/v1/vehicles/veh-002"},
		{"GET", "/no/such/thing"},
		{"DELETE", "/health"},
	} {
		c.do(tc.method, tc.path, "")
	}
	mu.Lock()
	defer mu.Unlock()
	seen = slices.DeleteFunc(seen, func(s string) bool { return strings.HasPrefix(s, "GET /openapi.json") }) // the client's document
	want := []string{
		"GET /health OK",
		"GET /api/v1/vehicles/{id} Service Unavailable", // no token store: nobody can be authenticated
		"GET /api/v1/vehicles/{id} Service Unavailable",
		"unmatched Not Found",
		"unmatched Method Not Allowed", // the path's route is for GET
	}
	if len(seen) != len(want) {
		t.Fatalf("observed %q", seen)
	}
	for i, w := range want {
		if !strings.HasPrefix(seen[i], w) {
			t.Errorf("request %d observed as %q, want %q", i, seen[i], w)
		}
	}
	if slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, "veh-001") }) {
		t.Errorf("a path, not a pattern, became a route: %q", seen)
	}
}
