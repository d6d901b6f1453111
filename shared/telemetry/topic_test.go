package telemetry_test

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func TestTopic(t *testing.T) {
	ns := telemetry.DefaultNamespace
	tests := []struct {
		id   string
		kind telemetry.Kind
		want string
		err  error
	}{
		{"car-1", telemetry.KindBatch, "fleet/v1/car-1/up/batch", nil},
		{"A_z-09", telemetry.KindAck, "fleet/v1/A_z-09/down/ack", nil},
		{strings.Repeat("x", 64), telemetry.KindStatus, "fleet/v1/" + strings.Repeat("x", 64) + "/up/status", nil},
		{strings.Repeat("x", 65), telemetry.KindStatus, "", telemetry.ErrVehicleID},
		{"", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car/1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car+", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car#", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car 1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"voiture-é", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car.1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
	}
	for _, tc := range tests {
		got, err := ns.Topic(tc.id, tc.kind)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Topic(%q, %q) = %q, %v; want %q, %v", tc.id, tc.kind, got, err, tc.want, tc.err)
		}
	}
}

func TestParseTopic(t *testing.T) {
	ns := telemetry.Namespace("t-42/fleet/v1")
	tests := []struct {
		topic string
		id    string
		kind  telemetry.Kind
		err   error
	}{
		{"t-42/fleet/v1/car-1/up/batch", "car-1", telemetry.KindBatch, nil},
		{"t-42/fleet/v1/car-1/up/cmd-result", "car-1", telemetry.KindCmdResult, nil},
		{"t-42/fleet/v1/car-1/down/cmd", "car-1", telemetry.KindCmd, nil},
		{"fleet/v1/car-1/up/batch", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1", "car-1", telemetry.KindBatchV2, nil},
		{"t-42/fleet/v1/car-1/", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1/up/other", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1/up/batch/x", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/c@r/up/batch", "", "", telemetry.ErrVehicleID},
	}
	for _, tc := range tests {
		id, kind, err := ns.Parse(tc.topic)
		if id != tc.id || kind != tc.kind || !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, %v", tc.topic, id, kind, err, tc.id, tc.kind, tc.err)
		}
	}
	if got, want := ns.SharedFilter("ingest", telemetry.KindBatch), "$share/ingest/t-42/fleet/v1/+/up/batch"; got != want {
		t.Errorf("SharedFilter = %q, want %q", got, want)
	}
	if got, want := ns.SharedFilter("ingest", telemetry.KindBatchV2), "$share/ingest/t-42/fleet/v1/+"; got != want {
		t.Errorf("SharedFilter(KindBatchV2) = %q, want %q", got, want)
	}
	if got, err := ns.Topic("car-1", telemetry.KindBatchV2); got != "t-42/fleet/v1/car-1" || err != nil {
		t.Errorf("Topic(car-1, KindBatchV2) = %q, %v", got, err)
	}
	for _, bad := range []telemetry.Namespace{"", "/x", "x/", "a/+/b", "a/#", "$SYS"} {
		if bad.Valid() == nil {
			t.Errorf("Namespace(%q).Valid() = nil, want an error", bad)
		}
	}
	if err := telemetry.DefaultNamespace.Valid(); err != nil {
		t.Error(err)
	}
}

// mergeInput has overlapping, adjacent, reversed (First > Last) and topmost
// ranges; FuzzMergeRanges seeds from it.
var mergeInput = []telemetry.SeqRange{{9, 12}, {1, 3}, {4, 4}, {11, 20}, {30, 29}, {^uint64(0) - 1, ^uint64(0)}, {^uint64(0), ^uint64(0)}}

func TestRanges(t *testing.T) {
	got := telemetry.RangesOf([]uint64{5, 3, 4, 9, 1, 4, 10})
	want := []telemetry.SeqRange{{1, 1}, {3, 5}, {9, 10}}
	if !equalRanges(got, want) {
		t.Errorf("RangesOf = %v, want %v", got, want)
	}
	got = telemetry.MergeRanges(slices.Clone(mergeInput))
	want = []telemetry.SeqRange{{1, 4}, {9, 20}, {^uint64(0) - 1, ^uint64(0)}}
	if !equalRanges(got, want) {
		t.Errorf("MergeRanges = %v, want %v", got, want)
	}
}

func equalRanges(a, b []telemetry.SeqRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzMergeRanges: the result of MergeRanges is sorted, each range has First
// <= Last, no two overlap or touch, each input range with First <= Last lies
// in one of them and the input ranges inside a result range cover it
// without a gap (so the result is exactly their union); ranges with First >
// Last are ignored, as documented; the input is left as it was, and merging
// the result changes nothing.
//
// Each 4 bytes of the input make a range: First = base(b[0]) + b[1], Last =
// base(b[2]) + b[3], base one of 0, 2³² and 2⁶⁴-256, so that ranges meet and
// overlap often and reach the top of uint64.
func FuzzMergeRanges(f *testing.F) {
	enc := func(v uint64) (byte, byte) {
		switch {
		case v >= ^uint64(0)-255:
			return 2, byte(v - (^uint64(0) - 255))
		case v >= 1<<32:
			return 1, byte(v - 1<<32)
		}
		return 0, byte(v)
	}
	var seed []byte
	for _, r := range mergeInput {
		a, b := enc(r.First)
		c, d := enc(r.Last)
		seed = append(seed, a, b, c, d)
	}
	f.Add(seed)
	f.Add([]byte{0, 5, 2, 0, 1, 0, 1, 9, 2, 255, 2, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		base := func(b byte) uint64 { return []uint64{0, 1 << 32, ^uint64(0) - 255}[b%3] }
		var rs []telemetry.SeqRange
		for i := 0; i+4 <= len(in); i += 4 {
			rs = append(rs, telemetry.SeqRange{First: base(in[i]) + uint64(in[i+1]), Last: base(in[i+2]) + uint64(in[i+3])})
		}
		given := slices.Clone(rs)
		out := telemetry.MergeRanges(rs)
		if !slices.Equal(rs, given) {
			t.Fatalf("MergeRanges changed its input %v to %v", given, rs)
		}
		for i, o := range out {
			if o.First > o.Last || (i > 0 && (out[i-1].Last == ^uint64(0) || out[i-1].Last+1 >= o.First)) {
				t.Fatalf("MergeRanges(%v) = %v: not sorted, apart and non-empty", given, out)
			}
		}
		valid := slices.DeleteFunc(slices.Clone(given), func(r telemetry.SeqRange) bool { return r.First > r.Last })
		slices.SortFunc(valid, func(a, b telemetry.SeqRange) int { return cmp.Compare(a.First, b.First) })
		for _, r := range valid { // in one at most: they are apart
			if !slices.ContainsFunc(out, func(o telemetry.SeqRange) bool { return o.First <= r.First && r.Last <= o.Last }) {
				t.Fatalf("MergeRanges(%v) = %v: %v lies in none of them", given, out, r)
			}
		}
		for _, o := range out {
			next, top := o.First, false // the first seq not yet covered; covered to the top of uint64
			for _, r := range valid {
				if r.First < o.First || r.Last > o.Last || top || r.Last < next {
					continue
				}
				if r.First > next {
					t.Fatalf("MergeRanges(%v) = %v: %d in %v is in no input range", given, out, next, o)
				}
				next, top = r.Last+1, r.Last == ^uint64(0)
			}
			if !top && next <= o.Last {
				t.Fatalf("MergeRanges(%v) = %v: %d in %v is in no input range", given, out, next, o)
			}
		}
		if again := telemetry.MergeRanges(slices.Clone(out)); !slices.Equal(again, out) {
			t.Fatalf("MergeRanges(%v) = %v, merged again %v", given, out, again)
		}
	})
}
