package truth_test

import (
	"math"
	"math/rand/v2"
	"slices"
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
		// Aligned, not compared place by place: one of the two is in
		// its place, the other out of it.
		{"reordered", swapped, truth.Diff{Missing: 1, Unexpected: 1}, "PID 010C sample 1 of 2 (truth 2026-11-27T10:00:00.000Z, 800) not stored"},
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

// TestCompareOBDAlignment: the stored samples of a PID are aligned with the
// truth's, so a lost or extra sample is counted once where it is, not as a
// run of mismatches after it.
func TestCompareOBDAlignment(t *testing.T) {
	// pid is a PID's values. lines makes truth lines of them, PID after
	// PID; stored numbers lines s/1, s/2... in their order (that of lines,
	// or as interleave puts them).
	type pid struct {
		name   string
		values []float64
	}
	lines := func(pids ...pid) []truth.Line {
		var ls []truth.Line
		for _, p := range pids {
			for n, v := range p.values {
				ls = append(ls, truth.Line{Type: "obd", Vehicle: "v", Time: t0.Add(time.Duration(n) * 10 * time.Millisecond), PID: p.name, Mode: "01", Value: v})
			}
		}
		return ls
	}
	stored := func(ls []truth.Line) []cloudapi.OBDSample {
		var ss []cloudapi.OBDSample
		for n, l := range ls {
			ss = append(ss, cloudapi.OBDSample{StreamID: "s", Seq: uint64(n + 1), Time: t0.Add(time.Duration(n) * time.Millisecond), PID: l.PID, Mode: l.Mode, Value: l.Value})
		}
		return ss
	}
	// interleave takes one line of each in turn, as an agent polling PIDs
	// round robin does.
	interleave := func(a, b []truth.Line) []truth.Line {
		var ls []truth.Line
		for i := 0; i < max(len(a), len(b)); i++ {
			if i < len(a) {
				ls = append(ls, a[i])
			}
			if i < len(b) {
				ls = append(ls, b[i])
			}
		}
		return ls
	}
	seq := func(n int, f func(i int) float64) []float64 {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = f(i)
		}
		return vs
	}
	// edit returns vs with the value at each index of drop left out, each of
	// set[i] in place of vs[i], and each of add[i] before vs[i].
	edit := func(vs []float64, drop []int, set, add map[int]float64) []float64 {
		var out []float64
		for i, v := range vs {
			if a, ok := add[i]; ok {
				out = append(out, a)
			}
			if slices.Contains(drop, i) {
				continue
			}
			if s, ok := set[i]; ok {
				v = s
			}
			out = append(out, v)
		}
		return out
	}
	rpm := seq(10, func(i int) float64 { return 800 + float64(i) })
	// An engine's rpm around 800 to 1600 in steps of 0.25, repeating
	// values, and a coolant temperature flat at 90 for long.
	long := seq(5000, func(i int) float64 { return 1200 + math.Round(1600*math.Sin(float64(i)/40))/4 })
	coolant := seq(5000, func(i int) float64 { return 90 + float64(i/1000) })
	tests := []struct {
		name          string
		truth, stored []truth.Line
		want          truth.Diff
		example       string
	}{
		{"one lost mid-run", lines(pid{"0C", rpm}), lines(pid{"0C", edit(rpm, []int{4}, nil, nil)}),
			truth.Diff{Missing: 1}, "PID 010C sample 5 of 10 (truth 2026-11-27T10:00:00.040Z, 804) not stored"},
		{"one extra mid-run", lines(pid{"0C", rpm}), lines(pid{"0C", edit(rpm, nil, nil, map[int]float64{5: 3000})}),
			truth.Diff{Unexpected: 1}, "PID 010C: stored sample s/6 (3000 at 2026-11-27T10:00:00.005Z) before truth sample 6 of 10"},
		{"one wrong value", lines(pid{"0C", rpm}), lines(pid{"0C", edit(rpm, nil, map[int]float64{5: 3000}, nil)}),
			truth.Diff{Mismatched: 1}, "PID 010C sample 6 of 10 (truth 2026-11-27T10:00:00.050Z): stored 3000, truth 805"},
		{"one lost, a later one wrong", lines(pid{"0C", rpm}), lines(pid{"0C", edit(rpm, []int{2}, map[int]float64{7: 3000}, nil)}),
			truth.Diff{Missing: 1, Mismatched: 1}, "PID 010C sample 8 of 10 (truth 2026-11-27T10:00:00.070Z): stored 3000, truth 807"},
		// The lost 90 is aligned at the end of its run, next to the wrong
		// value: the wrong value is still the mismatch.
		{"one lost in a run, the value after it wrong", lines(pid{"05", []float64{90, 90, 90, 90, 91, 92}}), lines(pid{"05", []float64{90, 90, 90, 95, 92}}),
			truth.Diff{Missing: 1, Mismatched: 1}, "PID 0105 sample 5 of 6 (truth 2026-11-27T10:00:00.040Z): stored 95, truth 91"},
		{"one lost in a run, the value before it wrong", lines(pid{"05", []float64{89, 90, 90, 90, 90}}), lines(pid{"05", []float64{88, 90, 90, 90}}),
			truth.Diff{Missing: 1, Mismatched: 1}, "PID 0105 sample 1 of 5 (truth 2026-11-27T10:00:00.000Z): stored 88, truth 89"},
		{"90 3000 times, one lost", lines(pid{"05", seq(3000, func(int) float64 { return 90 })}), lines(pid{"05", seq(2999, func(int) float64 { return 90 })}),
			truth.Diff{Missing: 1}, "PID 0105 sample 3000 of 3000"},
		{"two PIDs interleaved", interleave(lines(pid{"0C", rpm}), lines(pid{"05", coolant[:10]})),
			interleave(lines(pid{"0C", edit(rpm, []int{3}, nil, nil)}), lines(pid{"05", edit(coolant[:10], nil, map[int]float64{6: 120}, nil)})),
			truth.Diff{Missing: 1, Mismatched: 1}, "PID 0105 sample 7 of 10 (truth 2026-11-27T10:00:00.060Z): stored 120, truth 90"},
		{"5000 of each of two PIDs, a few edits",
			interleave(lines(pid{"0C", long}), lines(pid{"05", coolant})),
			interleave(lines(pid{"0C", edit(long, []int{100, 2500, 4999}, map[int]float64{1000: 9000, 3000: 9001}, map[int]float64{4000: 9002})}),
				lines(pid{"05", edit(coolant, []int{0, 1500, 1501}, map[int]float64{2000: 50}, map[int]float64{4999: 60})})),
			truth.Diff{Missing: 6, Unexpected: 2, Mismatched: 3}, "PID 010C sample 1001 of 5000 (truth 2026-11-27T10:00:10.000Z): stored 9000"},
		// A unit bug: every value wrong, nothing in common to align.
		{"5000 all wrong", lines(pid{"0C", long}), lines(pid{"0C", seq(5000, func(i int) float64 { return long[i] * 4 })}),
			truth.Diff{Mismatched: 5000}, "PID 010C sample 1 of 5000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := truth.CompareOBD(tc.truth, stored(tc.stored))
			checkDiff(t, d, tc.want, len(tc.truth), len(tc.stored), tc.example)
		})
	}
}

// TestCompareOBDMinimal: on random sequences of a few values, the alignment
// is a shortest edit script: missing + unexpected + 2·mismatched is the edit
// distance that a longest common subsequence gives.
func TestCompareOBDMinimal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		gen := func() []float64 {
			vs := make([]float64, r.IntN(25))
			for i := range vs {
				vs[i] = float64(r.IntN(4))
			}
			return vs
		}
		a, b := gen(), gen()
		var ls []truth.Line
		for _, v := range a {
			ls = append(ls, truth.Line{Type: "obd", PID: "05", Mode: "01", Value: v})
		}
		var ss []cloudapi.OBDSample
		for n, v := range b {
			ss = append(ss, cloudapi.OBDSample{StreamID: "s", Seq: uint64(n), PID: "05", Mode: "01", Value: v})
		}
		d := truth.CompareOBD(ls, ss)
		// The longest common subsequence, by dynamic programming.
		l := make([][]int, len(a)+1)
		for i := range l {
			l[i] = make([]int, len(b)+1)
		}
		for i := len(a) - 1; i >= 0; i-- {
			for j := len(b) - 1; j >= 0; j-- {
				if a[i] == b[j] {
					l[i][j] = l[i+1][j+1] + 1
				} else {
					l[i][j] = max(l[i+1][j], l[i][j+1])
				}
			}
		}
		if got, want := d.Missing+d.Unexpected+2*d.Mismatched, len(a)+len(b)-2*l[0][0]; got != want || d.Stored != d.Truth-d.Missing+d.Unexpected {
			t.Fatalf("%v against %v: %v; the edit distance is %d", a, b, d, want)
		}
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
