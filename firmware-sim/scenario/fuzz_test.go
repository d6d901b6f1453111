package scenario_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
)

// FuzzParse: any input gives a scenario or errors that each name a line,
// never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("duration: 1h\nvehicles:\n  - id: a\nfaults:\n  - {at: 1m, kind: unplug, device: gps, duration: 5s}\n"))
	entries, _ := os.ReadDir("builtin")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("builtin", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenario.Parse(data, "fuzz.yaml", "")
		if err == nil {
			if s.Duration <= 0 || len(s.Vehicles) == 0 {
				t.Fatalf("accepted a scenario without duration or vehicles: %+v", s)
			}
			return
		}
		var joined interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &joined) {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			var se *scenario.Error
			if !errors.As(e, &se) || se.Line < 1 {
				t.Fatalf("error without a line: %v", e)
			}
		}
	})
}
