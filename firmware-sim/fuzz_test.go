package firmwaresim_test

import (
	"bytes"
	"os"
	"testing"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// FuzzRouteFiles: any GPX or GeoJSON gives a drivable route or an error,
// never a panic.
func FuzzRouteFiles(f *testing.F) {
	for _, name := range []string{"testdata/portier.gpx", "testdata/harbour.geojson"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (*firmwaresim.Route, error){
			func(b []byte) (*firmwaresim.Route, error) { return firmwaresim.ParseGPX(bytes.NewReader(b), "fuzz") },
			func(b []byte) (*firmwaresim.Route, error) {
				return firmwaresim.ParseGeoJSON(bytes.NewReader(b), "fuzz")
			},
		} {
			r, err := parse(data)
			if err != nil {
				continue
			}
			if err := r.Validate(); err != nil || r.Length() <= 0 {
				t.Fatalf("parsed a route that cannot be driven: %v, length %v", err, r.Length())
			}
		}
	})
}
