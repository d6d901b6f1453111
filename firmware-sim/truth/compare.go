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
// the API returned for it. Samples are matched PID by PID, by order and value,
// not by time: the agent stamps them with its own clock, the truth with
// simulated time. The stored samples are put in the agent's order — by
// stream (streams in the order of their first sample's time), then seq — and
// a sample whose (stream, seq) was already seen is a duplicate. Then each
// PID's stored values are aligned with the truth's by a shortest edit script
// (see align and gather): a truth sample left out of the alignment is
// missing, a stored one unexpected, except that where k truth samples and j
// stored ones are left out between the same two aligned samples, min(k, j) of
// them pair up as mismatched (a wrong value is one mismatch, not a missing and
// an unexpected). So one sample lost in a run is one missing, not a run of
// mismatches after it.
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
		compareOBDPID(&d, k, want[k], got[k])
	}
	return d
}

// compareOBDPID counts and describes the differences between the truth's
// samples w of PID k and the stored ones g, walking their alignment gap by
// gap: a gap is the truth samples and the stored ones left out of the
// alignment between two aligned samples (or an end). Examples come in the
// order of the samples.
func compareOBDPID(d *Diff, k string, w []Line, g []cloudapi.OBDSample) {
	wv := make([]float64, len(w))
	for i, o := range w {
		wv[i] = o.Value
	}
	gv := make([]float64, len(g))
	for j, o := range g {
		gv[j] = o.Value
	}
	inW, inG := align(wv, gv)
	gather(wv, gv, inW, inG)
	for _, gp := range gaps(inW, inG) {
		// Around the gap are the aligned w[gp.a0-1] and w[gp.a1], where
		// they exist.
		var around []float64
		if gp.a0 > 0 {
			around = append(around, wv[gp.a0-1])
		}
		if gp.a1 < len(w) {
			around = append(around, wv[gp.a1])
		}
		pw, pg, restW, restG := pairGap(gp, wv, gv, around)
		for n := range pw {
			a, b := pw[n], pg[n]
			d.Mismatched++
			note(&d.Examples.Mismatched, "PID %s sample %d of %d (truth %s): stored %v, truth %v", k, a+1, len(w), stamp(w[a].Time), g[b].Value, w[a].Value)
		}
		for _, a := range restW {
			d.Missing++
			note(&d.Examples.Missing, "PID %s sample %d of %d (truth %s, %v) not stored", k, a+1, len(w), stamp(w[a].Time), w[a].Value)
		}
		for _, b := range restG {
			d.Unexpected++
			if gp.a1 == len(w) {
				note(&d.Examples.Unexpected, "PID %s: stored sample %s/%d (%v at %s) beyond the truth's %d", k, g[b].StreamID, g[b].Seq, g[b].Value, stamp(g[b].Time), len(w))
			} else {
				note(&d.Examples.Unexpected, "PID %s: stored sample %s/%d (%v at %s) before truth sample %d of %d", k, g[b].StreamID, g[b].Seq, g[b].Value, stamp(g[b].Time), gp.a1+1, len(w))
			}
		}
	}
}

// pairGap pairs the truth samples of a gap with its stored samples, in
// order, as mismatches: as many pairs as the smaller side has, pw[n] with
// pg[n]. Where
// one side has more, the ones left over (restW, restG) are, first, those whose
// value is that of an aligned sample around the gap, then the last: a lost (or
// extra) sample in a run of equal values is put by the alignment at the end of
// the run, next to a wrong value that may follow it, and it, not the wrong
// value, is the one missing (or unexpected).
func pairGap(gp gap, wv, gv []float64, around []float64) (pw, pg, restW, restG []int) {
	pick := func(x0, x1 int, vals []float64, n int) (paired, rest []int) {
		extra := x1 - x0 - n
		for x := x0; x < x1; x++ {
			if extra > 0 && slices.Contains(around, vals[x]) {
				extra--
				rest = append(rest, x)
				continue
			}
			paired = append(paired, x)
		}
		rest = append(rest, paired[n:]...)
		slices.Sort(rest)
		return paired[:n], rest
	}
	n := min(gp.a1-gp.a0, gp.b1-gp.b0)
	pw, restW = pick(gp.a0, gp.a1, wv, n)
	pg, restG = pick(gp.b0, gp.b1, gv, n)
	return pw, pg, restW, restG
}

// gap is where an alignment leaves out a[a0:a1] and b[b0:b1], between two
// aligned elements (or an end).
type gap struct{ a0, a1, b0, b1 int }

// gaps lists the non-empty gaps of the alignment inA, inB, in order.
func gaps(inA, inB []bool) []gap {
	var gs []gap
	for i, j := 0, 0; i < len(inA) || j < len(inB); i, j = i+1, j+1 {
		g := gap{a0: i, b0: j}
		for i < len(inA) && !inA[i] {
			i++
		}
		for j < len(inB) && !inB[j] {
			j++
		}
		g.a1, g.b1 = i, j
		if g.a1 > g.a0 || g.b1 > g.b0 {
			gs = append(gs, g)
		}
	}
	return gs
}

// gather moves left-out elements of the alignment inA, inB of a and b across
// runs of equal aligned values, which leaves it as long, so that a gap with
// more of b than of a and one with more of a than of b, on either side of
// such a run, each give one element to pair up as a mismatch. Among equal
// values a shortest edit script may put a deletion anywhere in the run: a 90
// changed to 95 in a run of 90s may come out as the 95 inserted in one place
// and the last 90 deleted at the end of the run. The element that moves is
// one whose value is the run's, so the one that stays is the wrong value, in
// its place.
func gather(a, b []float64, inA, inB []bool) {
	for moved := true; moved; {
		moved = false
		gs := gaps(inA, inB)
		for n := 1; n < len(gs) && !moved; n++ {
			g1, g2 := gs[n-1], gs[n]
			x := a[g1.a1] // the run between them is a[g1.a1:g2.a0], b[g1.b1:g2.b0]
			if slices.ContainsFunc(a[g1.a1:g2.a0], func(v float64) bool { return v != x }) {
				continue
			}
			extra1 := (g1.b1 - g1.b0) - (g1.a1 - g1.a0) // more of b in g1 (> 0) or of a (< 0)
			extra2 := (g2.b1 - g2.b0) - (g2.a1 - g2.a0)
			switch {
			case extra1 > 0 && extra2 < 0 && a[g2.a0] == x: // g2's first of a into g1
				inA[g1.a1], inA[g2.a0] = false, true
			case extra1 > 0 && extra2 < 0 && b[g1.b1-1] == x: // g1's last of b into g2
				inB[g1.b1-1], inB[g2.b0-1] = true, false
			case extra1 < 0 && extra2 > 0 && b[g2.b0] == x:
				inB[g1.b1], inB[g2.b0] = false, true
			case extra1 < 0 && extra2 > 0 && a[g1.a1-1] == x:
				inA[g1.a1-1], inA[g2.a0-1] = true, false
			default:
				continue
			}
			moved = true
		}
	}
}

// align finds a longest common subsequence of a and b, values being equal
// when == says so (NaN is equal to nothing), and reports which elements of
// each are in it: the rest is a shortest edit script from a to b. It is
// Myers' O((N+M)·D) algorithm in its linear-space form, after leaving out the
// values that occur in only one of the two (they are in no common
// subsequence), so nearly equal sequences and ones with nothing in common are
// both quick.
func align(a, b []float64) (inA, inB []bool) {
	inA, inB = make([]bool, len(a)), make([]bool, len(b))
	inB2 := map[float64]bool{}
	for _, v := range b {
		inB2[v] = true
	}
	inA2 := map[float64]bool{}
	for _, v := range a {
		inA2[v] = true
	}
	var ai, bi []int // the indices of the values kept
	var av, bv []float64
	for i, v := range a {
		if inB2[v] {
			ai, av = append(ai, i), append(av, v)
		}
	}
	for j, v := range b {
		if inA2[v] {
			bi, bv = append(bi, j), append(bv, v)
		}
	}
	m := myers{a: av, b: bv, inA: make([]bool, len(av)), inB: make([]bool, len(bv))}
	size := 2*(len(av)+len(bv)) + 3
	m.vf, m.vb = make([]int, size), make([]int, size)
	m.lcs(0, len(av), 0, len(bv))
	for x, ok := range m.inA {
		inA[ai[x]] = ok
	}
	for y, ok := range m.inB {
		inB[bi[y]] = ok
	}
	return inA, inB
}

type myers struct {
	a, b     []float64
	inA, inB []bool
	vf, vb   []int // furthest reaching x by diagonal, forward and backward
}

// lcs marks a longest common subsequence of a[a0:a1] and b[b0:b1].
func (m *myers) lcs(a0, a1, b0, b1 int) {
	for a0 < a1 && b0 < b1 && m.a[a0] == m.b[b0] {
		m.inA[a0], m.inB[b0] = true, true
		a0, b0 = a0+1, b0+1
	}
	for a0 < a1 && b0 < b1 && m.a[a1-1] == m.b[b1-1] {
		m.inA[a1-1], m.inB[b1-1] = true, true
		a1, b1 = a1-1, b1-1
	}
	if a0 == a1 || b0 == b1 {
		return
	}
	// Both are left and differ at both ends, so the edit distance is at least
	// 2 and both halves around the middle snake are smaller than this.
	x, y, u, v := m.middleSnake(a0, a1, b0, b1)
	m.lcs(a0, x, b0, y)
	for ; x < u; x, y = x+1, y+1 {
		m.inA[x], m.inB[y] = true, true
	}
	m.lcs(u, a1, v, b1)
}

// middleSnake finds the middle snake of a shortest edit script from
// a[a0:a1] to b[b0:b1] (Myers 1986, section 4b): a run of matches from
// (x, y) to (u, v), in absolute indices, that a shortest path goes through
// halfway.
func (m *myers) middleSnake(a0, a1, b0, b1 int) (x, y, u, v int) {
	a, b := m.a[a0:a1], m.b[b0:b1]
	n, mm := len(a), len(b)
	delta := n - mm
	odd := delta%2 != 0
	off := n + mm + 1
	vf, vb := m.vf, m.vb
	vf[off+1], vb[off+1] = 0, 0
	for d := 0; d <= (n+mm+1)/2; d++ {
		for k := -d; k <= d; k += 2 { // forward, on diagonal x−y = k
			x := furthest(vf, off, k, d)
			sx := x
			for x < n && x-k < mm && a[x] == b[x-k] {
				x++
			}
			vf[off+k] = x
			if c := delta - k; odd && c >= -(d-1) && c <= d-1 && x+vb[off+c] >= n {
				return a0 + sx, b0 + sx - k, a0 + x, b0 + x - k
			}
		}
		for c := -d; c <= d; c += 2 { // backward, from the ends, on diagonal x'−y' = c
			x := furthest(vb, off, c, d)
			sx := x
			for x < n && x-c < mm && a[n-1-x] == b[mm-1-(x-c)] {
				x++
			}
			vb[off+c] = x
			if k := delta - c; !odd && k >= -d && k <= d && x+vf[off+k] >= n {
				return a0 + n - x, b0 + mm - (x - c), a0 + n - sx, b0 + mm - (sx - c)
			}
		}
	}
	panic("truth: no middle snake")
}

// furthest is where a path of d edits on diagonal k starts its snake: one
// step from the furthest of the paths of d−1 edits on the diagonals beside.
func furthest(v []int, off, k, d int) int {
	if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
		return v[off+k+1] // an insertion, from diagonal k+1
	}
	return v[off+k-1] + 1 // a deletion, from diagonal k−1
}
