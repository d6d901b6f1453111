package truth_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// ign is an ignition line at minute m with the distance driven.
func ign(m int, on bool, dist float64) truth.Line {
	state := "off"
	if on {
		state = "on"
	}
	return truth.Line{Type: "ignition", Vehicle: "v", Time: t0.Add(time.Duration(m) * time.Minute), State: state, DistanceM: dist}
}

func TestTrips(t *testing.T) {
	tests := []struct {
		name  string
		lines []truth.Line
		ended bool
		last  int // minute of the last line of the truth
		want  string
	}{
		{"one drive", []truth.Line{ign(0, true, 0), ign(120, false, 50000)}, true, 120, "0-120 50000"},
		{"a 3 min stop stays in", []truth.Line{ign(0, true, 0), ign(30, false, 9000), ign(33, true, 9000), ign(60, false, 18000)}, true, 60, "0-60 18000"},
		{"a 6 min stop ends it", []truth.Line{ign(0, true, 0), ign(30, false, 9000), ign(36, true, 9000), ign(60, false, 18000)}, true, 60,
			"0-30 9000, 36-60 9000"},
		{"the engine run without driving", []truth.Line{ign(0, true, 0), ign(10, false, 50), ign(20, true, 50), ign(40, false, 8000)}, true, 40, "20-40 7950"},
		{"going on", []truth.Line{ign(0, true, 0)}, false, 30, "0- 0"},
		{"switched off 2 min ago, drive not ended", []truth.Line{ign(0, true, 0), ign(30, false, 9000)}, false, 32, "0- 9000"},
		{"switched off 6 min ago, drive not ended", []truth.Line{ign(0, true, 0), ign(30, false, 9000)}, false, 36, "0-30 9000"},
		{"no boundaries (an old truth file)", nil, true, 30, ""},
	}
	for _, tt := range tests {
		v := truth.Vehicle{ID: "v", Ignition: tt.lines, Ended: tt.ended, First: t0, Last: t0.Add(time.Duration(tt.last) * time.Minute)}
		var got []string
		for _, tr := range truth.Trips(v, truth.DefaultTripRules()) {
			end := ""
			if tr.Ended() {
				end = fmt.Sprint(tr.End.Sub(t0).Minutes())
			}
			got = append(got, fmt.Sprintf("%g-%s %g", tr.Start.Sub(t0).Minutes(), end, tr.DistanceM))
		}
		if g := strings.Join(got, ", "); g != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, g, tt.want)
		}
	}
}

func stored(startMin, endMin float64, dist float64) cloudapi.Trip {
	var s cloudapi.Trip
	s.Start.Time = t0.Add(time.Duration(startMin * float64(time.Minute)))
	s.End.Time = t0.Add(time.Duration(endMin * float64(time.Minute)))
	s.DistanceM = dist
	return s
}

func TestCompareTrips(t *testing.T) {
	tr := []truth.Trip{
		{Start: t0, End: t0.Add(30 * time.Minute), DistanceM: 10000},
		{Start: t0.Add(60 * time.Minute), End: t0.Add(90 * time.Minute), DistanceM: 10000},
		{Start: t0.Add(120 * time.Minute), DistanceM: 3000}, // going on
	}
	tests := []struct {
		name   string
		stored []cloudapi.Trip
		want   string // missing/unexpected/mismatched
		ok     bool
	}{
		{"equal within tolerance", []cloudapi.Trip{stored(0.1, 29.95, 10150), stored(60.5, 90.2, 9900), stored(120.2, 130, 5000)}, "0/0/0", true},
		{"start 2 min late", []cloudapi.Trip{stored(2, 30, 10000), stored(60, 90, 10000), stored(120, 125, 1)}, "0/0/1", false},
		{"3% too long", []cloudapi.Trip{stored(0, 30, 10300), stored(60, 90, 10000), stored(120, 125, 1)}, "0/0/1", false},
		{"one split in two", []cloudapi.Trip{stored(0, 12, 4000), stored(20, 30, 6000), stored(60, 90, 10000), stored(120, 125, 1)}, "0/1/1", false},
		{"one missing, one extra", []cloudapi.Trip{stored(0, 30, 10000), stored(45, 50, 900), stored(120, 125, 1)}, "1/1/0", false},
	}
	for _, tt := range tests {
		d := truth.CompareTrips(tr, tt.stored, truth.DefaultTripTolerance())
		got := fmt.Sprintf("%d/%d/%d", d.Missing, d.Unexpected, d.Mismatched)
		if got != tt.want || d.OK() != tt.ok || d.Truth != 3 || d.Stored != len(tt.stored) {
			t.Errorf("%s: %s (%v), want %s", tt.name, got, d, tt.want)
		}
	}
}
