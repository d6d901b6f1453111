package truth_test

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// The comparison is what every end-to-end and chaos verdict rests on, so it is
// tested on its own: each kind of difference must be caught.
func TestCompareFixes(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	want := []truth.Line{
		{Type: "fix", Time: t0, Lat: 43.7, Lon: 7.4},
		{Type: "fix", Time: t0.Add(time.Second), Lat: 43.70001, Lon: 7.40001},
		{Type: "fix", Time: t0.Add(2 * time.Second), Lat: 43.70002, Lon: 7.40002},
	}
	exact := []cloudapi.Position{
		{StreamID: "a", Seq: 1, Time: t0, Lat: 43.7, Lon: 7.4},
		{StreamID: "a", Seq: 2, Time: t0.Add(time.Second), Lat: 43.7000100, Lon: 7.4000104},
		{StreamID: "a", Seq: 3, Time: t0.Add(2 * time.Second), Lat: 43.70002, Lon: 7.40002},
	}
	if d := truth.CompareFixes(want, exact); !d.OK() {
		t.Errorf("exact copy: %v", d)
	}
	tests := []struct {
		name string
		api  []cloudapi.Position
		want func(truth.Diff) bool
	}{
		{"lost", exact[:2], func(d truth.Diff) bool { return d.Missing == 1 }},
		{"duplicated row", append(append([]cloudapi.Position{}, exact...), exact[1]), func(d truth.Diff) bool { return d.Duplicated >= 1 }},
		{"duplicated reading", append(append([]cloudapi.Position{}, exact...), cloudapi.Position{StreamID: "a", Seq: 9, Time: t0, Lat: 43.7, Lon: 7.4}), func(d truth.Diff) bool { return d.Duplicated == 1 }},
		{"invented", append(append([]cloudapi.Position{}, exact...), cloudapi.Position{StreamID: "a", Seq: 4, Time: t0.Add(3 * time.Second)}), func(d truth.Diff) bool { return d.Unexpected == 1 }},
		{"moved", []cloudapi.Position{exact[0], exact[1], {StreamID: "a", Seq: 3, Time: t0.Add(2 * time.Second), Lat: 43.700022, Lon: 7.40002}}, func(d truth.Diff) bool { return d.Mismatched == 1 }},
		{"time off by 1 ms", []cloudapi.Position{exact[0], exact[1], {StreamID: "a", Seq: 3, Time: t0.Add(2*time.Second + time.Millisecond), Lat: 43.70002, Lon: 7.40002}}, func(d truth.Diff) bool { return d.Missing == 1 && d.Unexpected == 1 }},
	}
	for _, tc := range tests {
		d := truth.CompareFixes(want, tc.api)
		if d.OK() || !tc.want(d) {
			t.Errorf("%s: not caught: %v", tc.name, d)
		}
	}
}

func TestCompareOBD(t *testing.T) {
	want := []truth.Line{{Type: "obd", PID: "0C", Mode: "01", Value: 800}, {Type: "obd", PID: "0D", Mode: "01", Value: 0}, {Type: "obd", PID: "0C", Mode: "01", Value: 1200.25}}
	exact := []cloudapi.OBDSample{{StreamID: "s", Seq: 4, PID: "0C", Mode: "01", Value: 800}, {StreamID: "s", Seq: 5, PID: "0D", Mode: "01", Value: 0}, {StreamID: "s", Seq: 7, PID: "0C", Mode: "01", Value: 1200.25}}
	if d := truth.CompareOBD(want, exact); !d.OK() {
		t.Errorf("exact copy: %v", d)
	}
	swapped := []cloudapi.OBDSample{exact[2], exact[1], exact[0]}
	swapped[0].Seq, swapped[2].Seq = 4, 7
	for name, api := range map[string][]cloudapi.OBDSample{
		"lost":       exact[:2],
		"duplicated": append(append([]cloudapi.OBDSample{}, exact...), exact[0]),
		"extra":      append(append([]cloudapi.OBDSample{}, exact...), cloudapi.OBDSample{StreamID: "s", Seq: 8, PID: "05", Mode: "01", Value: 90}),
		"reordered":  swapped,
		"changed":    {exact[0], exact[1], {StreamID: "s", Seq: 7, PID: "0C", Mode: "01", Value: 1200}},
	} {
		if d := truth.CompareOBD(want, api); d.OK() {
			t.Errorf("%s: not caught: %v", name, d)
		}
	}
}
