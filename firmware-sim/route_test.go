package firmwaresim_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
)

func TestBuiltInRoutes(t *testing.T) {
	routes := firmwaresim.Routes()
	if len(routes) == 0 {
		t.Fatal("no built-in routes")
	}
	for _, r := range routes {
		t.Run(r.Name, func(t *testing.T) {
			if r.Description == "" {
				t.Error("no description")
			}
			got, err := firmwaresim.RouteByName(r.Name)
			if err != nil || got != r {
				t.Fatalf("RouteByName(%q) = %v, %v", r.Name, got, err)
			}
			wps := r.Waypoints
			total := 0.0
			n := len(wps)
			if r.OutAndBack {
				n-- // no stretch from the last back to the first
			}
			for i := range n {
				a, b := wps[i], wps[(i+1)%len(wps)]
				d := simtest.HaversineM(a.Lat, a.Lon, b.Lat, b.Lon)
				if d < 1 || d > 250 {
					t.Errorf("waypoints %d→%d are %.1f m apart, want 1..250 m", i, (i+1)%len(wps), d)
				}
				total += d
			}
			if r.OutAndBack {
				total *= 2
			}
			if l := r.Length(); math.Abs(l-total) > total*0.002 {
				t.Errorf("Length() = %.1f m, haversine sum %.1f m", l, total)
			}
			stops := 0
			for _, w := range wps {
				if w.Stop {
					stops++
				}
			}
			if stops == 0 {
				t.Error("route has no stop lines")
			}
		})
	}
}

func TestMonacoLoopIsInMonaco(t *testing.T) {
	r, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	if l := r.Length(); l < 3000 || l > 6000 {
		t.Errorf("monaco-loop is %.0f m long, want 3-6 km", l)
	}
	if len(firmwaresim.Routes()) < 3 {
		t.Errorf("%d built-in routes, want several through Monaco", len(firmwaresim.Routes()))
	}
	tunnel := 0
	for _, w := range r.Waypoints {
		if w.Tunnel && strings.Contains(w.Street, "Louis II") {
			tunnel++
		}
	}
	if tunnel == 0 {
		t.Error("monaco-loop has no tunnel on Boulevard Louis II")
	}
	// The Principality lies within roughly 43.724-43.752 N, 7.409-7.440 E.
	for _, r := range firmwaresim.Routes() {
		inMonaco(t, r)
	}
}

func inMonaco(t *testing.T, r *firmwaresim.Route) {
	t.Helper()
	for i, w := range r.Waypoints {
		if w.Lat < 43.724 || w.Lat > 43.752 || w.Lon < 7.409 || w.Lon > 7.440 {
			t.Errorf("%s: waypoint %d (%s) at %.5f,%.5f is outside Monaco", r.Name, i, w.Street, w.Lat, w.Lon)
		}
		if w.Street == "" {
			t.Errorf("%s: waypoint %d has no street name", r.Name, i)
		}
	}
}

func TestRouteByNameUnknown(t *testing.T) {
	_, err := firmwaresim.RouteByName("atlantis-loop")
	if !errors.Is(err, firmwaresim.ErrUnknownRoute) {
		t.Fatalf("err = %v, want ErrUnknownRoute", err)
	}
}
