package truth

import (
	"fmt"
	"math"
	"sort"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
)

// Diff is the comparison of what reached the API with the ground truth.
type Diff struct {
	Truth      int      // records in the ground truth
	Stored     int      // records the API returned
	Missing    int      // in the truth, not in the API
	Duplicated int      // in the API more than once
	Unexpected int      // in the API, not in the truth
	Mismatched int      // matched by identity, but a value differs
	Examples   []string // a few of the differences, for the failure message
}

// OK reports whether the API holds exactly the truth: nothing missing,
// duplicated, unexpected or changed.
func (d Diff) OK() bool {
	return d.Missing == 0 && d.Duplicated == 0 && d.Unexpected == 0 && d.Mismatched == 0
}

func (d Diff) String() string {
	return fmt.Sprintf("truth %d, stored %d, missing %d, duplicated %d, unexpected %d, mismatched %d; e.g. %v",
		d.Truth, d.Stored, d.Missing, d.Duplicated, d.Unexpected, d.Mismatched, d.Examples)
}

func (d *Diff) example(format string, a ...any) {
	if len(d.Examples) < 5 {
		d.Examples = append(d.Examples, fmt.Sprintf(format, a...))
	}
}

// CoordTolerance is how far (degrees) a stored coordinate may be from the truth:
// the wire carries 1e-7° units, so anything beyond rounding is a bug.
const CoordTolerance = 1e-6

// CompareFixes matches the truth's fix lines of one vehicle with the API's
// positions by time (to the millisecond) and checks the coordinates.
func CompareFixes(fixes []Line, api []cloudapi.Position) Diff {
	d := Diff{Truth: len(fixes), Stored: len(api)}
	byTime := map[int64][]cloudapi.Position{}
	ids := map[string]int{}
	for _, p := range api {
		byTime[p.Time.UnixMilli()] = append(byTime[p.Time.UnixMilli()], p)
		ids[fmt.Sprintf("%s/%d", p.StreamID, p.Seq)]++
	}
	for id, n := range ids {
		if n > 1 {
			d.Duplicated += n - 1
			d.example("record %s stored %d times", id, n)
		}
	}
	seen := map[int64]bool{}
	for _, f := range fixes {
		ms := f.Time.UnixMilli()
		seen[ms] = true
		got := byTime[ms]
		switch {
		case len(got) == 0:
			d.Missing++
			d.example("fix at %s lost", f.Time.Format("15:04:05.000"))
			continue
		case len(got) > 1:
			d.Duplicated += len(got) - 1
			d.example("fix at %s stored %d times", f.Time.Format("15:04:05.000"), len(got))
		}
		p := got[0]
		if math.Abs(p.Lat-f.Lat) > CoordTolerance || math.Abs(p.Lon-f.Lon) > CoordTolerance {
			d.Mismatched++
			d.example("fix at %s: stored %.7f,%.7f, truth %.7f,%.7f", f.Time.Format("15:04:05.000"), p.Lat, p.Lon, f.Lat, f.Lon)
		}
	}
	for ms, ps := range byTime {
		if !seen[ms] {
			d.Unexpected += len(ps)
			d.example("position at %d ms not in the truth", ms)
		}
	}
	return d
}

// CompareOBD checks, PID by PID, that the API holds the truth's obd lines of
// one vehicle exactly once and in order. Samples are matched by order and
// value, not by time: the agent stamps them with its own clock, the truth with
// simulated time.
func CompareOBD(samples []Line, api []cloudapi.OBDSample) Diff {
	d := Diff{Truth: len(samples), Stored: len(api)}
	want := map[string][]float64{}
	for _, o := range samples {
		want[o.Mode+o.PID] = append(want[o.Mode+o.PID], o.Value)
	}
	sorted := append([]cloudapi.OBDSample(nil), api...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].StreamID != sorted[j].StreamID {
			return sorted[i].StreamID < sorted[j].StreamID
		}
		return sorted[i].Seq < sorted[j].Seq
	})
	got := map[string][]float64{}
	ids := map[string]int{}
	for _, o := range sorted {
		got[o.Mode+o.PID] = append(got[o.Mode+o.PID], o.Value)
		ids[fmt.Sprintf("%s/%d", o.StreamID, o.Seq)]++
	}
	for id, n := range ids {
		if n > 1 {
			d.Duplicated += n - 1
			d.example("sample %s stored %d times", id, n)
		}
	}
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		w, g := want[k], got[k]
		n := min(len(w), len(g))
		for i := range n {
			if w[i] != g[i] {
				d.Mismatched++
				d.example("PID %s sample %d: stored %v, truth %v", k, i, g[i], w[i])
			}
		}
		if len(w) > len(g) {
			d.Missing += len(w) - len(g)
			d.example("PID %s: %d of %d samples missing", k, len(w)-len(g), len(w))
		}
		if len(g) > len(w) {
			d.Unexpected += len(g) - len(w)
			d.example("PID %s: %d samples more than the truth's %d", k, len(g)-len(w), len(w))
		}
	}
	return d
}
