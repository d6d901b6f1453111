package osrm_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/osrm"
	"github.com/fleetgate/fleetgate/cloud/osrm/osrmtest"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// track returns n fixes every step along a winding road in Monaco.
func track(n int, step time.Duration) []*cloud.Position {
	var out []*cloud.Position
	lat, lon, heading := 43.7384, 7.4246, 0.3
	for i := range n {
		heading += 0.02 * math.Sin(float64(i)/40)
		lat += 10e-5 * math.Cos(heading) * step.Seconds()
		lon += 14e-5 * math.Sin(heading) * step.Seconds()
		hdop := 1.2
		out = append(out, &cloud.Position{VehicleID: "veh-1", StreamID: 1, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * step), Lat: lat, Lon: lon, HDOP: &hdop})
	}
	return out
}

func pathLength(ps []*cloud.Position) float64 {
	d := 0.0
	for i := 1; i < len(ps); i++ {
		d += cloud.DistanceM(ps[i-1].Lat, ps[i-1].Lon, ps[i].Lat, ps[i].Lon)
	}
	return d
}

func client(s *osrmtest.Server) *osrm.Client {
	c := osrm.NewClient(s.URL)
	c.Timeout = 2 * time.Second
	return c
}

// TestMatchStitchesOverlappingChunks: a track of 1000 fixes goes in
// chunks of at most 100 coordinates sharing 10; the legs stitched give
// one line through every fix and the length of the road, each leg once.
func TestMatchStitchesOverlappingChunks(t *testing.T) {
	s := osrmtest.NewServer()
	defer s.Close()
	tr := track(1000, time.Second)
	m, err := client(s).Match(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if len(reqs) != 11 {
		t.Errorf("%d requests, want 11", len(reqs))
	}
	for i, r := range reqs {
		if len(r.Coords) > 100 {
			t.Errorf("request %d: %d coordinates", i, len(r.Coords))
		}
		if i > 0 {
			prev := reqs[i-1].Timestamps
			if shared := prev[len(prev)-10:]; r.Timestamps[0] != shared[0] {
				t.Errorf("request %d starts at %d, want the 10th last of the previous (%d)", i, r.Timestamps[0], shared[0])
			}
		}
		for _, k := range []string{"gaps", "geometries", "steps", "overview"} {
			if want := map[string]string{"gaps": "split", "geometries": "geojson", "steps": "true", "overview": "false"}[k]; r.Query[k] != want {
				t.Errorf("request %d: %s=%q, want %q", i, k, r.Query[k], want)
			}
		}
	}
	if len(m.Geometry) != 1 || len(m.Geometry[0]) != 1000 {
		t.Fatalf("geometry: %d lines, first of %d points; want one of 1000", len(m.Geometry), len(m.Geometry[0]))
	}
	for i, p := range m.Geometry[0] {
		if math.Abs(p[0]-tr[i].Lon) > 1e-7 || math.Abs(p[1]-tr[i].Lat) > 1e-7 {
			t.Fatalf("point %d: %v, want %v,%v", i, p, tr[i].Lon, tr[i].Lat)
		}
	}
	if want := pathLength(tr); math.Abs(m.DistanceM-want) > 0.01 {
		t.Errorf("distance %.3f m, want %.3f (each leg once)", m.DistanceM, want)
	}
	if math.Abs(m.Confidence-0.95) > 1e-9 || m.Status != cloud.MatchMatched {
		t.Errorf("confidence %v status %s", m.Confidence, m.Status)
	}
}

func TestMatchSendsWholeSecondsAndRadiuses(t *testing.T) {
	s := osrmtest.NewServer()
	defer s.Close()
	tr := track(50, 100*time.Millisecond) // 10 Hz: 5 seconds
	f := func(v float64) *float64 { return &v }
	tr[0].ErrLatM, tr[0].ErrLonM = f(3), f(4) // GST: RMS 3.54
	tr[10].HDOP = f(0.3)                      // 1.5 m: at least 3
	tr[20].HDOP = f(40)                       // 200 m: at most 50
	tr[30].HDOP = nil                         // none: OSRM's default
	if _, err := client(s).Match(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	r := s.Requests()[0]
	if len(r.Timestamps) != 5 {
		t.Fatalf("timestamps %v, want one per second", r.Timestamps)
	}
	if got := strings.Join(r.Radiuses, ";"); got != "3.5;3.0;50.0;;6.0" {
		t.Errorf("radiuses %q", got)
	}
}

// TestMatchSplitsAtGapsAndSkipsOutliers: a gap of five minutes splits the
// trace (two lines, the gap not counted); fixes off the road are outliers
// the legs pass over.
func TestMatchSplitsAtGapsAndSkipsOutliers(t *testing.T) {
	s := osrmtest.NewServer()
	defer s.Close()
	tr := track(300, time.Second)
	for _, p := range tr[150:] {
		p.Time = p.Time.Add(5 * time.Minute)
	}
	outlier := tr[40]
	s.OffRoad = func(lon, lat float64) bool { return lon == math.Round(outlier.Lon*1e7)/1e7 }
	m, err := client(s).Match(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Geometry) != 2 || len(m.Geometry[0]) != 149 || len(m.Geometry[1]) != 150 {
		t.Fatalf("lines of %d points", lens(m.Geometry))
	}
	want := pathLength(tr[:150]) + pathLength(tr[150:]) - pathLength(tr[39:42]) + cloud.DistanceM(tr[39].Lat, tr[39].Lon, tr[41].Lat, tr[41].Lon)
	if math.Abs(m.DistanceM-want) > 0.01 {
		t.Errorf("distance %.2f, want %.2f", m.DistanceM, want)
	}
}

func lens(g [][][2]float64) []int {
	var out []int
	for _, l := range g {
		out = append(out, len(l))
	}
	return out
}

func TestMatchShrinksChunksOnTooBig(t *testing.T) {
	s := osrmtest.NewServer()
	defer s.Close()
	s.MaxMatchingSize = 40 // the server's limit is lower than the client's
	tr := track(300, time.Second)
	m, err := client(s).Match(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Requests() {
		if len(r.Coords) > 40 {
			t.Errorf("a request of %d coordinates was answered", len(r.Coords))
		}
	}
	if math.Abs(m.DistanceM-pathLength(tr)) > 0.01 || len(m.Geometry) != 1 {
		t.Errorf("distance %.2f, want %.2f; %d lines", m.DistanceM, pathLength(tr), len(m.Geometry))
	}
}

func TestMatchErrors(t *testing.T) {
	tests := []struct {
		fail string
		want string
	}{
		{"NoMatch", cloud.EINVALID},      // no road anywhere: keep the raw track
		{"NoSegment", cloud.EINVALID},    // idem
		{"InvalidValue", cloud.EINVALID}, // OSRM refuses this track
		{"InvalidOptions", cloud.EINTERNAL},
		{"InvalidUrl", cloud.EINTERNAL},
		{"500", cloud.EUNAVAILABLE},
		{"garbage", cloud.EUNAVAILABLE},
	}
	for _, tt := range tests {
		s := osrmtest.NewServer()
		s.Fail(tt.fail)
		_, err := client(s).Match(context.Background(), track(20, time.Second))
		if cloud.ErrorCode(err) != tt.want {
			t.Errorf("%s: %v (%s), want %s", tt.fail, err, cloud.ErrorCode(err), tt.want)
		}
		s.Close()
	}
	s := osrmtest.NewServer()
	defer s.Close()
	if _, err := client(s).Match(context.Background(), track(1, time.Second)); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("one fix: %v", err)
	}
	// Part of the track off the road: the rest is matched.
	tr := track(250, time.Second)
	s.OffRoad = func(lon, lat float64) bool { return lon >= tr[100].Lon && lon <= tr[199].Lon }
	m, err := client(s).Match(context.Background(), tr)
	if err != nil || len(m.Geometry) != 2 {
		t.Errorf("half off the road: %v, %d lines", err, len(m.Geometry))
	}
}

// TestBreakerAndTimeout: a server that does not answer in time or cannot
// be reached is unavailable; after BreakerFailures of those the circuit
// opens and calls fail at once without a request; once the server is back
// and the open time passed, it is used again.
func TestBreakerAndTimeout(t *testing.T) {
	s := osrmtest.NewServer()
	defer s.Close()
	c := client(s)
	c.Timeout = 100 * time.Millisecond
	c.BreakerOpen = 300 * time.Millisecond
	s.Delay(time.Second)
	ctx := context.Background()
	start := time.Now()
	if _, err := c.Match(ctx, track(20, time.Second)); cloud.ErrorCode(err) != cloud.EUNAVAILABLE || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("slow server: %v", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("the timeout did not cut the request: %v", took)
	}
	s.Delay(0)
	s.Down(true)
	for range 2 {
		if _, err := c.Match(ctx, track(20, time.Second)); cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
			t.Fatalf("server down: %v", err)
		}
	}
	if !c.Open() {
		t.Fatal("the circuit is closed after 3 failures")
	}
	s.Down(false)
	n := len(s.Requests())
	if _, err := c.Match(ctx, track(20, time.Second)); cloud.ErrorCode(err) != cloud.EUNAVAILABLE || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("open circuit: %v", err)
	}
	if len(s.Requests()) != n {
		t.Errorf("a request went out while the circuit was open")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Match(ctx, track(20, time.Second))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Open() {
		t.Error("the circuit is still open after a success")
	}
}

func TestValidate(t *testing.T) {
	if err := osrm.NewClient("http://127.0.0.1:5000").Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*osrm.Client){
		func(c *osrm.Client) { c.URL = "osrm:5000" },
		func(c *osrm.Client) { c.Profile = "a/b" },
		func(c *osrm.Client) { c.MaxCoordinates = 15 },
		func(c *osrm.Client) { c.Overlap = 1 },
		func(c *osrm.Client) { c.UERE = 0 },
		func(c *osrm.Client) { c.MaxRadius = 1 },
		func(c *osrm.Client) { c.Timeout = 0 },
	} {
		c := osrm.NewClient("http://127.0.0.1:5000")
		mod(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
