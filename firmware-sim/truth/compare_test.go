package truth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// The comparison is what every end-to-end and chaos verdict and firmware-sim
// diff rest on, so it is tested on its own: each kind of difference must be
// caught, counted once, and described.
func TestCompareFixes(t *testing.T) {
	fixes := []truth.Line{
		{Type: "fix", Vehicle: "v", Time: t0, Lat: 43.7, Lon: 7.4},
		{Type: "fix", Vehicle: "v", Time: t0.Add(time.Second), Lat: 43.70001, Lon: 7.40001},
		{Type: "fix", Vehicle: "v", Time: t0.Add(2 * time.Second), Lat: 43.70002, Lon: 7.40002},
	}
	exact := []cloudapi.Position{
		{StreamID: "a", Seq: 1, Time: t0, Lat: 43.7, Lon: 7.4},
		{StreamID: "a", Seq: 2, Time: t0.Add(time.Second), Lat: 43.7000100, Lon: 7.4000104}, // 4e-7° off: rounding
		{StreamID: "a", Seq: 3, Time: t0.Add(2 * time.Second), Lat: 43.70002, Lon: 7.40002},
	}
	with := func(ps ...cloudapi.Position) []cloudapi.Position {
		return append(append([]cloudapi.Position{}, exact...), ps...)
	}
	tests := []struct {
		name    string
		fixes   []truth.Line
		stored  []cloudapi.Position
		want    truth.Diff // counts; Truth and Stored are filled in
		example string     // in the examples of the kind that differs
	}{
		{"exact", fixes, exact, truth.Diff{}, ""},
		{"in another order", fixes, []cloudapi.Position{exact[2], exact[0], exact[1]}, truth.Diff{}, ""},
		{"nothing stored", fixes, nil, truth.Diff{Missing: 3}, "fix 2026-11-27T10:00:00.000Z 43.7000000,7.4000000 not stored"},
		{"missing", fixes, exact[:2], truth.Diff{Missing: 1}, "fix 2026-11-27T10:00:02.000Z 43.7000200,7.4000200 not stored"},
		{"more missing than examples", append(fixes, truth.Line{Type: "fix", Time: t0.Add(3 * time.Second)}, truth.Line{Type: "fix", Time: t0.Add(4 * time.Second)}), nil,
			truth.Diff{Missing: 5}, "fix 2026-11-27T10:00:02.000Z"},
		{"row returned twice", fixes, with(exact[1]), truth.Diff{Duplicated: 1}, "record a/2 at 2026-11-27T10:00:01.000Z stored again"},
		{"fix stored twice", fixes, with(cloudapi.Position{StreamID: "b", Seq: 9, Time: t0, Lat: 43.7, Lon: 7.4}),
			truth.Diff{Duplicated: 1}, "fix 2026-11-27T10:00:00.000Z stored again (record b/9)"},
		{"identity reused for another fix", fixes, []cloudapi.Position{exact[0], exact[1], {StreamID: "a", Seq: 2, Time: t0.Add(2 * time.Second), Lat: 43.70002, Lon: 7.40002}},
			truth.Diff{Missing: 1, Duplicated: 1}, "record a/2 at 2026-11-27T10:00:02.000Z stored again (first at 2026-11-27T10:00:01.000Z)"},
		{"unexpected", fixes, with(cloudapi.Position{StreamID: "a", Seq: 4, Time: t0.Add(3 * time.Second), Lat: 43.71, Lon: 7.41}),
			truth.Diff{Unexpected: 1}, "position 2026-11-27T10:00:03.000Z 43.7100000,7.4100000 (record a/4) not in the truth"},
		{"latitude 1.1e-6° off", fixes, []cloudapi.Position{exact[0], exact[1], {StreamID: "a", Seq: 3, Time: t0.Add(2 * time.Second), Lat: 43.7000211, Lon: 7.40002}},
			truth.Diff{Mismatched: 1}, "fix 2026-11-27T10:00:02.000Z: stored 43.7000211,7.4000200, truth 43.7000200,7.4000200"},
		{"longitude 2e-6° off", fixes, []cloudapi.Position{exact[0], {StreamID: "a", Seq: 2, Time: t0.Add(time.Second), Lat: 43.70001, Lon: 7.400008}, exact[2]},
			truth.Diff{Mismatched: 1}, "fix 2026-11-27T10:00:01.000Z: stored 43.7000100,7.4000080"},
		{"time 1 ms late", fixes, []cloudapi.Position{exact[0], exact[1], {StreamID: "a", Seq: 3, Time: t0.Add(2*time.Second + time.Millisecond), Lat: 43.70002, Lon: 7.40002}},
			truth.Diff{Missing: 1, Unexpected: 1}, "position 2026-11-27T10:00:02.001Z"},
		{"time 1 ms early", fixes, []cloudapi.Position{{StreamID: "a", Seq: 1, Time: t0.Add(-time.Millisecond), Lat: 43.7, Lon: 7.4}, exact[1], exact[2]},
			truth.Diff{Missing: 1, Unexpected: 1}, "fix 2026-11-27T10:00:00.000Z 43.7000000,7.4000000 not stored"},
		{"sub-millisecond difference", fixes, []cloudapi.Position{{StreamID: "a", Seq: 1, Time: t0.Add(400 * time.Microsecond), Lat: 43.7, Lon: 7.4}, exact[1], exact[2]},
			truth.Diff{}, ""},
		// A clock jump back repeats fix times in the truth; both fixes are
		// stored, each once.
		{"two fixes at one time", append(fixes, truth.Line{Type: "fix", Time: t0, Lat: 43.8, Lon: 7.5}),
			with(cloudapi.Position{StreamID: "a", Seq: 7, Time: t0, Lat: 43.8, Lon: 7.5}), truth.Diff{}, ""},
		{"two fixes at one time, one stored", append(fixes, truth.Line{Type: "fix", Time: t0, Lat: 43.8, Lon: 7.5}), exact,
			truth.Diff{Missing: 1}, "fix 2026-11-27T10:00:00.000Z 43.8000000,7.5000000 not stored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := truth.CompareFixes(tc.fixes, tc.stored)
			checkDiff(t, d, tc.want, len(tc.fixes), len(tc.stored), tc.example)
		})
	}
}

func TestCompareOBD(t *testing.T) {
	obd := func(pid string, v float64) truth.Line {
		return truth.Line{Type: "obd", Vehicle: "v", Time: t0, PID: pid, Mode: "01", Value: v}
	}
	samples := []truth.Line{obd("0C", 800), obd("0D", 0), obd("0C", 1200.25)}
	exact := []cloudapi.OBDSample{
		{StreamID: "s", Seq: 4, Time: t0, PID: "0C", Mode: "01", Value: 800},
		{StreamID: "s", Seq: 5, Time: t0, PID: "0D", Mode: "01", Value: 0},
		{StreamID: "s", Seq: 7, Time: t0.Add(time.Second), PID: "0C", Mode: "01", Value: 1200.25},
	}
	swapped := []cloudapi.OBDSample{exact[2], exact[1], exact[0]}
	swapped[0].Seq, swapped[2].Seq = 4, 7
	tests := []struct {
		name    string
		stored  []cloudapi.OBDSample
		want    truth.Diff
		example string
	}{
		{"exact", exact, truth.Diff{}, ""},
		{"in another order", []cloudapi.OBDSample{exact[2], exact[0], exact[1]}, truth.Diff{}, ""},
		// The agent restarted with a new outbox: a second stream, whose id
		// sorts before the first's.
		{"two streams", []cloudapi.OBDSample{exact[0], exact[1], {StreamID: "0", Seq: 1, Time: t0.Add(time.Minute), PID: "0C", Mode: "01", Value: 1200.25}}, truth.Diff{}, ""},
		{"missing", exact[:2], truth.Diff{Missing: 1}, "PID 010C sample 2 of 2 (truth 2026-11-27T10:00:00.000Z, 1200.25) not stored"},
		{"row returned twice", append(append([]cloudapi.OBDSample{}, exact...), exact[0]), truth.Diff{Duplicated: 1},
			"sample s/4 (PID 010C, 800 at 2026-11-27T10:00:00.000Z) stored again"},
		{"unexpected", append(append([]cloudapi.OBDSample{}, exact...), cloudapi.OBDSample{StreamID: "s", Seq: 8, PID: "05", Mode: "01", Value: 90, Time: t0}),
			truth.Diff{Unexpected: 1}, "PID 0105: stored sample s/8 (90 at 2026-11-27T10:00:00.000Z) beyond the truth's 0"},
		{"reordered", swapped, truth.Diff{Mismatched: 2}, "PID 010C sample 1 of 2 (truth 2026-11-27T10:00:00.000Z): stored 1200.25, truth 800"},
		{"changed", []cloudapi.OBDSample{exact[0], exact[1], {StreamID: "s", Seq: 7, PID: "0C", Mode: "01", Value: 1200}},
			truth.Diff{Mismatched: 1}, "PID 010C sample 2 of 2 (truth 2026-11-27T10:00:00.000Z): stored 1200, truth 1200.25"},
		{"lower-case hex", []cloudapi.OBDSample{{StreamID: "s", Seq: 4, PID: "0c", Mode: "01", Value: 800}, exact[1], exact[2]}, truth.Diff{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := truth.CompareOBD(samples, tc.stored)
			checkDiff(t, d, tc.want, len(samples), len(tc.stored), tc.example)
		})
	}
}

// checkDiff checks d's counts against want's, that the counts add up, and
// that example is one of the examples.
func checkDiff(t *testing.T, d, want truth.Diff, nTruth, nStored int, example string) {
	t.Helper()
	want.Truth, want.Stored = nTruth, nStored
	if diff := cmp.Diff(want, d, cmpopts.IgnoreFields(truth.Diff{}, "Examples")); diff != "" {
		t.Errorf("counts (-want +got):\n%s\n%v", diff, d)
	}
	if d.Stored != d.Truth-d.Missing+d.Duplicated+d.Unexpected {
		t.Errorf("the counts do not add up: %v", d)
	}
	if d.OK() != (example == "") {
		t.Errorf("OK() = %v: %v", d.OK(), d)
	}
	ex := d.Examples
	for _, kind := range []struct {
		n    int
		list []string
	}{{d.Missing, ex.Missing}, {d.Duplicated, ex.Duplicated}, {d.Unexpected, ex.Unexpected}, {d.Mismatched, ex.Mismatched}} {
		if len(kind.list) != min(kind.n, truth.MaxExamples) {
			t.Errorf("%d examples for %d differences: %v", len(kind.list), kind.n, d)
		}
	}
	if example != "" && !strings.Contains(d.String(), example) {
		t.Errorf("no example %q in %v", example, d)
	}
}
