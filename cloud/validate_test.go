package cloud_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func goodPosition(seq uint64) telemetry.Position {
	return telemetry.Position{
		Seq: seq, UnixMs: now.Add(-time.Minute).UnixMilli(), LatE7: 437384166, LonE7: 74246333,
		Has:   telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
		AltCm: 5230, SpeedMmps: 13891, CourseCdeg: 4520, Mode: 3, Quality: 1, SatsUsed: 9, HDOPc: 90,
	}
}

func TestValidateBatchRecords(t *testing.T) {
	tests := []struct {
		name   string
		modify func(b *telemetry.Batch)
		reject map[uint64]string // seq → a substring of the reason
	}{
		{"all good", func(b *telemetry.Batch) {}, nil},
		{"latitude above 90", func(b *telemetry.Batch) { b.Positions[0].LatE7 = 900000001 }, map[uint64]string{1: "latitude"}},
		{"latitude exactly -90", func(b *telemetry.Batch) { b.Positions[0].LatE7 = -900000000 }, nil},
		{"longitude below -180", func(b *telemetry.Batch) { b.Positions[1].LonE7 = -1800000001 }, map[uint64]string{2: "longitude"}},
		{"time before 2000", func(b *telemetry.Batch) {
			b.Positions[0].UnixMs = time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli()
		}, map[uint64]string{1: "before 2000-01-01"}},
		{"time exactly 2000", func(b *telemetry.Batch) { b.Positions[0].UnixMs = cloud.MinRecordTime.UnixMilli() }, nil},
		{"time more than a day ahead", func(b *telemetry.Batch) {
			b.OBD[0].UnixMs = now.Add(24*time.Hour + time.Millisecond).UnixMilli()
		}, map[uint64]string{3: "ahead of the server clock"}},
		{"time exactly a day ahead", func(b *telemetry.Batch) { b.OBD[0].UnixMs = now.Add(24 * time.Hour).UnixMilli() }, nil},
		{"seq 0", func(b *telemetry.Batch) { b.Events[0].Seq = 0 }, map[uint64]string{0: "seq is 0"}},
		{"seq beyond int64", func(b *telemetry.Batch) { b.Events[0].Seq = 1 << 63 }, map[uint64]string{1 << 63: "seq above"}},
		{"seq repeated across kinds", func(b *telemetry.Batch) { b.OBD[0].Seq = 1 }, map[uint64]string{1: "more than once"}},
		{"negative speed", func(b *telemetry.Batch) { b.Positions[0].SpeedMmps = -1 }, map[uint64]string{1: "speed"}},
		{"negative speed but unknown", func(b *telemetry.Batch) {
			b.Positions[0].SpeedMmps = -1
			b.Positions[0].Has &^= telemetry.HasSpeed
		}, nil},
		{"course 360", func(b *telemetry.Batch) { b.Positions[1].CourseCdeg = 36000 }, map[uint64]string{2: "course"}},
		{"fix mode 4", func(b *telemetry.Batch) { b.Positions[1].Mode = 4 }, map[uint64]string{2: "fix mode"}},
		{"quality 9", func(b *telemetry.Batch) { b.Positions[1].Quality = 9 }, map[uint64]string{2: "quality"}},
		{"altitude 60 km", func(b *telemetry.Batch) { b.Positions[1].AltCm = 60_000_00 }, map[uint64]string{2: "altitude"}},
		{"negative HDOP", func(b *telemetry.Batch) { b.Positions[1].HDOPc = -5 }, map[uint64]string{2: "HDOP"}},
		{"OBD NaN", func(b *telemetry.Batch) { b.OBD[0].Value = math.NaN() }, map[uint64]string{3: "finite"}},
		{"OBD infinity", func(b *telemetry.Batch) { b.OBD[0].Value = math.Inf(-1) }, map[uint64]string{3: "finite"}},
		{"OBD service 0", func(b *telemetry.Batch) { b.OBD[0].PID = 0x000C }, map[uint64]string{3: "service"}},
		{"event detail with NUL", func(b *telemetry.Batch) { b.Events[0].Detail = "a\x00b" }, map[uint64]string{4: "NUL"}},
		{"event code not UTF-8", func(b *telemetry.Batch) { b.Events[0].Code = "\xff\xfe" }, map[uint64]string{4: "UTF-8"}},
		{"event detail too long", func(b *telemetry.Batch) { b.Events[0].Detail = strings.Repeat("x", 1025) }, map[uint64]string{4: "exceeds"}},
		{"two bad, two good", func(b *telemetry.Batch) {
			b.Positions[0].LatE7 = 1e9
			b.Events[0].UnixMs = 0
		}, map[uint64]string{1: "latitude", 4: "before"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &telemetry.Batch{
				VehicleID: "veh-001", StreamID: 0xabc,
				Positions: []telemetry.Position{goodPosition(1), goodPosition(2)},
				OBD:       []telemetry.OBDSample{{Seq: 3, UnixMs: now.UnixMilli(), PID: 0x010C, Value: 1303.75}},
				Events:    []telemetry.Event{{Seq: 4, UnixMs: now.UnixMilli(), Type: telemetry.EventIgnitionOn}},
			}
			tt.modify(b)
			total := b.Len()
			v := cloud.ValidateBatch(b, "veh-001", now)
			if v.Problem != "" {
				t.Fatalf("whole batch refused: %s", v.Problem)
			}
			got := map[uint64]string{}
			for _, r := range v.Rejected {
				got[r.Seq] = r.Reason
			}
			if len(got) != len(tt.reject) {
				t.Fatalf("rejected %v, want seqs %v", got, tt.reject)
			}
			for seq, want := range tt.reject {
				if !strings.Contains(got[seq], want) {
					t.Errorf("seq %d: reason %q, want it to mention %q", seq, got[seq], want)
				}
			}
			accepted := 0
			if v.Accepted != nil {
				accepted = v.Accepted.Len()
				if v.Accepted.VehicleID != "veh-001" || v.Accepted.StreamID != 0xabc {
					t.Errorf("accepted batch is %q/%x", v.Accepted.VehicleID, v.Accepted.StreamID)
				}
			}
			if accepted+len(v.Rejected) != total {
				t.Errorf("%d accepted + %d rejected != %d records", accepted, len(v.Rejected), total)
			}
			if v.OK() != (len(tt.reject) == 0) {
				t.Errorf("OK() = %v with %d rejections", v.OK(), len(v.Rejected))
			}
			if len(tt.reject) > 0 && !strings.Contains(v.Reason(), "rejected") {
				t.Errorf("Reason() = %q", v.Reason())
			}
		})
	}
}

func TestValidateBatchWhole(t *testing.T) {
	tests := []struct {
		name    string
		batch   telemetry.Batch
		topicID string
		problem string
	}{
		{"vehicle id differs", telemetry.Batch{VehicleID: "veh-002", StreamID: 7}, "veh-001", `vehicle id "veh-002" in the payload differs from "veh-001"`},
		{"vehicle id empty", telemetry.Batch{StreamID: 7}, "veh-001", `vehicle id "" in the payload differs`},
		{"stream id unset", telemetry.Batch{VehicleID: "veh-001"}, "veh-001", "stream id is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.batch
			b.Positions = []telemetry.Position{goodPosition(5), goodPosition(6)}
			b.OBD = []telemetry.OBDSample{{Seq: 9, UnixMs: now.UnixMilli(), PID: 0x010D, Value: 50}}
			v := cloud.ValidateBatch(&b, tt.topicID, now)
			if !strings.Contains(v.Problem, tt.problem) {
				t.Errorf("Problem = %q, want it to contain %q", v.Problem, tt.problem)
			}
			if v.Accepted != nil {
				t.Errorf("accepted %d records of a refused batch", v.Accepted.Len())
			}
			want := []telemetry.SeqRange{{First: 5, Last: 6}, {First: 9, Last: 9}}
			if diff := cmp.Diff(want, v.RejectedRanges()); diff != "" {
				t.Errorf("RejectedRanges (-want +got):\n%s", diff)
			}
			if v.Reason() != v.Problem {
				t.Errorf("Reason() = %q, want the problem", v.Reason())
			}
		})
	}
}

func TestValidateBatchReasonIsBounded(t *testing.T) {
	b := &telemetry.Batch{VehicleID: "v", StreamID: 1}
	for i := range 100 {
		p := goodPosition(uint64(i + 1))
		p.LatE7 = 1e9
		b.Positions = append(b.Positions, p)
	}
	v := cloud.ValidateBatch(b, "v", now)
	if r := v.Reason(); !strings.HasPrefix(r, "100 of 100 records rejected") || !strings.HasSuffix(r, "and 90 more") {
		t.Errorf("Reason() = %q", r)
	}
}
