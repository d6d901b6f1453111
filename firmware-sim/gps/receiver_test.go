package gps_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
)

var start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// drive runs a receiver over d of simulated time and returns the bytes it
// wrote and the fixes it reported.
func drive(t *testing.T, seed uint64, rate int, d time.Duration) ([]byte, []gps.Fix) {
	t.Helper()
	route, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: route, Seed: seed, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	r := &gps.Receiver{Vehicle: v, Clock: &simtest.Clock{T: start}, Rate: rate, Until: start.Add(d)}
	var out bytes.Buffer
	var fixes []gps.Fix
	if err := r.Run(context.Background(), &out, func(f gps.Fix) { fixes = append(fixes, f) }); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), fixes
}

func TestReceiverEpochs(t *testing.T) {
	for _, rate := range []int{1, 5, 25} {
		out, fixes := drive(t, 2, rate, 10*time.Second)
		if len(fixes) != 10*rate {
			t.Errorf("rate %d: %d fixes in 10 s, want %d", rate, len(fixes), 10*rate)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
		if len(lines) != 3*len(fixes) {
			t.Errorf("rate %d: %d sentences for %d epochs", rate, len(lines), len(fixes))
		}
		for i, f := range fixes {
			if want := gps.EpochTime(start, rate, i); !f.Time.Equal(want) {
				t.Errorf("rate %d: fix %d at %v, want %v", rate, i, f.Time, want)
			}
		}
	}
}

func TestReceiverSameSeedSameBytes(t *testing.T) {
	a, _ := drive(t, 11, 1, 5*time.Minute)
	b, _ := drive(t, 11, 1, 5*time.Minute)
	c, _ := drive(t, 12, 1, 5*time.Minute)
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different NMEA bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same NMEA bytes")
	}
}

// tpv is the part of gpsd's TPV report the test compares.
type tpv struct {
	Class  string   `json:"class"`
	Mode   int      `json:"mode"`
	Time   string   `json:"time"`
	Lat    float64  `json:"lat"`
	Lon    float64  `json:"lon"`
	AltMSL *float64 `json:"altMSL"`
	Speed  *float64 `json:"speed"`
	Track  *float64 `json:"track"`
}

// The sentences decoded by an independent decoder (gpsd's gpsdecode) carry the
// same values as the fixes the receiver reports for the ground truth.
func TestGpsdecodeAgreesWithReportedFixes(t *testing.T) {
	if _, err := exec.LookPath("gpsdecode"); err != nil {
		t.Fatal("gpsdecode not found (Debian package gpsd-clients): ", err)
	}
	for _, rate := range []int{1, 5} {
		out, fixes := drive(t, 3, rate, 3*time.Minute)
		cmd := exec.Command("gpsdecode", "-j")
		cmd.Stdin = bytes.NewReader(out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		js, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpsdecode: %v\n%s", err, stderr.String())
		}
		byTime := map[string]gps.Fix{}
		for _, f := range fixes {
			byTime[f.Time.Format("2006-01-02T15:04:05.000Z")] = f
		}
		matched := 0
		sc := bufio.NewScanner(bytes.NewReader(js))
		for sc.Scan() {
			var r tpv
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("gpsdecode output %q: %v", sc.Text(), err)
			}
			if r.Class != "TPV" || r.Mode < 2 {
				continue // not a report of a fix (the tunnel: no fix)
			}
			f, ok := byTime[r.Time]
			if !ok {
				t.Errorf("rate %d: gpsdecode reports a fix at %s that the receiver did not", rate, r.Time)
				continue
			}
			matched++
			if r.Mode != 3 {
				t.Errorf("rate %d %s: mode %d, want 3", rate, r.Time, r.Mode)
			}
			if math.Abs(r.Lat-f.Lat) > 1e-6 || math.Abs(r.Lon-f.Lon) > 1e-6 {
				t.Errorf("rate %d %s: gpsdecode %.9f,%.9f, fix %.9f,%.9f", rate, r.Time, r.Lat, r.Lon, f.Lat, f.Lon)
			}
			if r.AltMSL == nil || math.Abs(*r.AltMSL-f.AltM) > 1e-3 {
				t.Errorf("rate %d %s: altitude %v, fix %.1f", rate, r.Time, r.AltMSL, f.AltM)
			}
			// gpsd prints speed with 3 decimals and may use 1852/3600 for the knot.
			if r.Speed == nil || math.Abs(*r.Speed-f.SpeedMps) > 2e-3 {
				t.Errorf("rate %d %s: speed %v, fix %.4f", rate, r.Time, r.Speed, f.SpeedMps)
			}
			if r.Track == nil || math.Abs(*r.Track-f.CourseDeg) > 1e-3 {
				t.Errorf("rate %d %s: track %v, fix %.1f", rate, r.Time, r.Track, f.CourseDeg)
			}
		}
		// gpsd reports an epoch when the next one begins: the last is never
		// reported, and the first may be held back while it learns the cycle.
		if matched < len(fixes)-2 {
			t.Errorf("rate %d: gpsdecode reported %d of %d fixes", rate, matched, len(fixes))
		}
	}
}
