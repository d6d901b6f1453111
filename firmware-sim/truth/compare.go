package truth

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
)

// CoordTolerance is how far (degrees) a stored coordinate may be from the
// truth: the wire carries 1e-7° units, so anything beyond rounding is a bug.
const CoordTolerance = 1e-6

// MaxExamples is how many differences of each kind a Diff describes.
const MaxExamples = 3

// Diff is the comparison of what the cloud stored for one vehicle with the
// truth, for one kind of record (fixes or OBD samples). Every record of the
// truth is matched by one stored record or missing, and every stored record
// matches one, is a duplicate or is unexpected, so
// Stored = Truth − Missing + Duplicated + Unexpected.
type Diff struct {
	Truth      int `json:"truth"`      // records in the truth
	Stored     int `json:"stored"`     // records the API returned
	Missing    int `json:"missing"`    // in the truth, not stored
	Duplicated int `json:"duplicated"` // stored again: a record identity (stream, seq) already seen, or one more record for a truth record already matched
	Unexpected int `json:"unexpected"` // stored, matching nothing of the truth
	Mismatched int `json:"mismatched"` // matched, but a value differs
	// Examples describes the first differences of each kind.
	Examples Examples `json:"examples"`
}

// Examples are descriptions of differences, at most MaxExamples of each kind.
type Examples struct {
	Missing    []string `json:"missing,omitempty"`
	Duplicated []string `json:"duplicated,omitempty"`
	Unexpected []string `json:"unexpected,omitempty"`
	Mismatched []string `json:"mismatched,omitempty"`
}

// OK reports whether the cloud holds exactly the truth: nothing missing,
// duplicated, unexpected or changed.
func (d Diff) OK() bool {
	return d.Missing == 0 && d.Duplicated == 0 && d.Unexpected == 0 && d.Mismatched == 0
}

func (d Diff) String() string {
	s := fmt.Sprintf("truth %d, stored %d, missing %d, duplicated %d, unexpected %d, mismatched %d",
		d.Truth, d.Stored, d.Missing, d.Duplicated, d.Unexpected, d.Mismatched)
	for _, e := range []struct {
		kind string
		list []string
	}{{"missing", d.Examples.Missing}, {"duplicated", d.Examples.Duplicated}, {"unexpected", d.Examples.Unexpected}, {"mismatched", d.Examples.Mismatched}} {
		if len(e.list) > 0 {
			s += "; " + e.kind + ": " + strings.Join(e.list, ", ")
		}
	}
	return s
}

func note(list *[]string, format string, a ...any) {
	if len(*list) < MaxExamples {
		*list = append(*list, fmt.Sprintf(format, a...))
	}
}

func stamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

type identity struct {
	stream string
	seq    uint64
}

// CompareFixes compares the fix lines of one vehicle's truth with the
// positions the API returned for it. A fix is identified by its time, to the
// millisecond; a stored position at that time matches it and must have its
// coordinates within CoordTolerance. Stored positions are taken in time,
// stream and seq order: one whose (stream, seq) was already seen, or whose
// time has no fix left to match, is a duplicate; one at a time the truth has
// no fix at is unexpected.
func CompareFixes(fixes []Line, stored []cloudapi.Position) Diff {
	d := Diff{Truth: len(fixes), Stored: len(stored)}
	want := map[int64][]Line{} // the fixes not matched yet, by time
	for _, f := range fixes {
		ms := f.Time.UnixMilli()
		want[ms] = append(want[ms], f)
	}
	matched := map[int64]int{}
	rows := slices.Clone(stored)
	slices.SortStableFunc(rows, func(a, b cloudapi.Position) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Seq, b.Seq))
	})
	seen := map[identity]time.Time{}
	for _, p := range rows {
		ms := p.Time.UnixMilli()
		id := identity{p.StreamID, p.Seq}
		if first, ok := seen[id]; ok {
			d.Duplicated++
			note(&d.Examples.Duplicated, "record %s/%d at %s stored again (first at %s)", p.StreamID, p.Seq, stamp(p.Time), stamp(first))
			continue
		}
		seen[id] = p.Time
		fs, inTruth := want[ms]
		switch {
		case !inTruth:
			d.Unexpected++
			note(&d.Examples.Unexpected, "position %s %.7f,%.7f (record %s/%d) not in the truth", stamp(p.Time), p.Lat, p.Lon, p.StreamID, p.Seq)
			continue
		case matched[ms] == len(fs):
			d.Duplicated++
			note(&d.Examples.Duplicated, "fix %s stored again (record %s/%d)", stamp(p.Time), p.StreamID, p.Seq)
			continue
		}
		f := fs[matched[ms]]
		matched[ms]++
		if math.Abs(p.Lat-f.Lat) > CoordTolerance || math.Abs(p.Lon-f.Lon) > CoordTolerance {
			d.Mismatched++
			note(&d.Examples.Mismatched, "fix %s: stored %.7f,%.7f, truth %.7f,%.7f", stamp(f.Time), p.Lat, p.Lon, f.Lat, f.Lon)
		}
	}
	for _, f := range fixes {
		ms := f.Time.UnixMilli()
		if matched[ms] > 0 {
			matched[ms]--
			continue
		}
		d.Missing++
		note(&d.Examples.Missing, "fix %s %.7f,%.7f not stored", stamp(f.Time), f.Lat, f.Lon)
	}
	return d
}

// CompareOBD compares the obd lines of one vehicle's truth with the samples
// the API returned for it. Samples are matched by order and value, PID by
// PID, not by time: the agent stamps them with its own clock, the truth with
// simulated time. The stored samples are put in the agent's order — by
// stream (streams in the order of their first sample's time), then seq — and
// a sample whose (stream, seq) was already seen is a duplicate. Then the
// n-th stored sample of a PID matches the n-th of the truth and must have its
// value exactly; the truth's samples beyond the stored ones are missing, the
// stored ones beyond the truth's unexpected.
func CompareOBD(samples []Line, stored []cloudapi.OBDSample) Diff {
	d := Diff{Truth: len(samples), Stored: len(stored)}
	want := map[string][]Line{}
	for _, o := range samples {
		k := strings.ToUpper(o.Mode + o.PID)
		want[k] = append(want[k], o)
	}
	streamStart := map[string]time.Time{}
	for _, o := range stored {
		if t, ok := streamStart[o.StreamID]; !ok || o.Time.Before(t) {
			streamStart[o.StreamID] = o.Time
		}
	}
	rows := slices.Clone(stored)
	slices.SortStableFunc(rows, func(a, b cloudapi.OBDSample) int {
		return cmp.Or(streamStart[a.StreamID].Compare(streamStart[b.StreamID]), cmp.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Seq, b.Seq))
	})
	got := map[string][]cloudapi.OBDSample{}
	seen := map[identity]bool{}
	for _, o := range rows {
		k := strings.ToUpper(o.Mode + o.PID)
		id := identity{o.StreamID, o.Seq}
		if seen[id] {
			d.Duplicated++
			note(&d.Examples.Duplicated, "sample %s/%d (PID %s, %v at %s) stored again", o.StreamID, o.Seq, k, o.Value, stamp(o.Time))
			continue
		}
		seen[id] = true
		got[k] = append(got[k], o)
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		for i := range min(len(w), len(g)) {
			if w[i].Value != g[i].Value {
				d.Mismatched++
				note(&d.Examples.Mismatched, "PID %s sample %d of %d (truth %s): stored %v, truth %v", k, i+1, len(w), stamp(w[i].Time), g[i].Value, w[i].Value)
			}
		}
		for i := len(g); i < len(w); i++ {
			d.Missing++
			note(&d.Examples.Missing, "PID %s sample %d of %d (truth %s, %v) not stored", k, i+1, len(w), stamp(w[i].Time), w[i].Value)
		}
		for i := len(w); i < len(g); i++ {
			d.Unexpected++
			note(&d.Examples.Unexpected, "PID %s: stored sample %s/%d (%v at %s) beyond the truth's %d", k, g[i].StreamID, g[i].Seq, g[i].Value, stamp(g[i].Time), len(w))
		}
	}
	return d
}
