package firmwaresim_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
)

func TestParseGPX(t *testing.T) {
	f, err := os.Open("testdata/portier.gpx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := firmwaresim.ParseGPX(f, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	want := &firmwaresim.Route{
		Name: "portier-tunnel", Description: "Portier to the harbour through the tunnel", DefaultLimitKmh: 40, OutAndBack: true,
		Waypoints: []firmwaresim.Waypoint{
			{Lat: 43.74109, Lon: 7.43002, AltM: 20, Stop: true, Street: "Boulevard Louis II (Portier)"},
			// The repeated point (the same place twice) is merged into the one before.
			{Lat: 43.74105, Lon: 7.43030, AltM: 16, Tunnel: true, Street: "Boulevard Louis II"},
			{Lat: 43.74036, Lon: 7.43033, AltM: 12, Tunnel: true, LimitKmh: 50, Street: "Boulevard Louis II (tunnel)"},
			{Lat: 43.73852, Lon: 7.42921, AltM: 9, Tunnel: true, Street: "Boulevard Louis II (tunnel)"},
			{Lat: 43.73792, Lon: 7.42831, AltM: 8, Street: "Boulevard Louis II"},
			{Lat: 43.73747, Lon: 7.42705, AltM: 6, Street: "Quai des États-Unis"},
		},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	inMonaco(t, r)
}

func TestParseGeoJSON(t *testing.T) {
	f, err := os.Open("testdata/harbour.geojson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := firmwaresim.ParseGeoJSON(f, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	want := &firmwaresim.Route{
		Name: "harbour-square", Description: "Boulevard Albert 1er, Quai Antoine 1er and back round the square", DefaultLimitKmh: 30,
		// The last position repeats the first: a loop, without the repeat.
		Waypoints: []firmwaresim.Waypoint{
			{Lat: 43.73470, Lon: 7.42138, AltM: 7},
			{Lat: 43.73573, Lon: 7.42122, AltM: 8, LimitKmh: 50},
			{Lat: 43.73689, Lon: 7.42144, AltM: 9, Stop: true},
			{Lat: 43.73681, Lon: 7.42241, Tunnel: true},
			{Lat: 43.73500, Lon: 7.42223, AltM: 3},
			{Lat: 43.73431, Lon: 7.42241, AltM: 3},
		},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRouteFileErrors(t *testing.T) {
	gpx := func(pts string) string {
		return `<gpx version="1.1"><trk><trkseg>` + pts + `</trkseg></trk></gpx>`
	}
	pt := `<trkpt lat="43.7347" lon="7.42138"/><trkpt lat="43.73573" lon="7.42122"/>`
	tests := []struct {
		name, doc, want string
		geo             bool
	}{
		{"not xml", "{}", "gpx:", false},
		{"no track", `<gpx version="1.1"></gpx>`, "no track", false},
		{"one point", gpx(`<trkpt lat="43.7347" lon="7.42138"/>`), "at least 2", false},
		{"bad flag", gpx(pt + `<trkpt lat="43.736" lon="7.4214"><type>bridge</type></trkpt>`), `point 3 at 43.736000,7.421400: unknown flag "bridge"`, false},
		{"bad limit", gpx(pt + `<trkpt lat="43.736" lon="7.4214"><type>limit=fast</type></trkpt>`), `limit "fast"`, false},
		{"off the map", gpx(`<trkpt lat="91" lon="7"/>` + pt), "bad position", false},
		{"geo not json", "<gpx/>", "geojson:", true},
		{"geo no line", `{"type":"Point","coordinates":[7.4,43.7]}`, "no LineString", true},
		{"geo short position", `{"type":"LineString","coordinates":[[7.4],[7.41,43.7]]}`, "position 0 has 1 numbers", true},
		{"geo stop out of range", `{"type":"Feature","properties":{"stops":[9]},"geometry":{"type":"LineString","coordinates":[[7.4213,43.7347],[7.4212,43.7357]]}}`, "stops: vertex 9 does not exist", true},
		{"geo tunnel backwards", `{"type":"Feature","properties":{"tunnels":[[1,0]]},"geometry":{"type":"LineString","coordinates":[[7.4213,43.7347],[7.4212,43.7357]]}}`, "must go forward", true},
	}
	for _, tt := range tests {
		var err error
		if tt.geo {
			_, err = firmwaresim.ParseGeoJSON(strings.NewReader(tt.doc), "x")
		} else {
			_, err = firmwaresim.ParseGPX(strings.NewReader(tt.doc), "x")
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// A route from a file is driven like a built-in one: out and back, through
// its tunnel, turning round at each end.
func TestDriveOutAndBackFromFile(t *testing.T) {
	f, err := os.Open("testdata/portier.gpx")
	if err != nil {
		t.Fatal(err)
	}
	r, err := firmwaresim.ParseGPX(f, "")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Seed: 3, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	ends := []firmwaresim.Waypoint{r.Waypoints[0], r.Waypoints[len(r.Waypoints)-1]}
	reached := [2]bool{}
	tunnel := false
	for tick := time.Duration(0); tick <= 15*time.Minute; tick += 100 * time.Millisecond {
		s := v.AdvanceTo(start.Add(tick))
		tunnel = tunnel || s.Tunnel
		for i, e := range ends {
			if simtest.HaversineM(s.Lat, s.Lon, e.Lat, e.Lon) < 3 && s.SpeedMps == 0 {
				reached[i] = true // stopped there, to turn round
			}
		}
	}
	if !reached[0] || !reached[1] || !tunnel {
		t.Errorf("in 15 minutes: stopped at the ends %v, went through the tunnel %v", reached, tunnel)
	}
}
