package telemetry_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// t2 is 2026-12-06T12:00:00Z, the time of the version 2 golden vectors.
const t2 = int64(1796558400000)

var goldenBatches2 = []struct {
	file  string
	batch *telemetry.Batch
}{
	{"batch2_lone_fix.golden", &telemetry.Batch{
		StreamID: 0x0102030405060708,
		Positions: []telemetry.Position{{
			Seq: 1000000, UnixMs: t2, LatE7: 437384000, LonE7: 74246000,
			Has: telemetry.HasAlt | telemetry.HasGeoidSep | telemetry.HasSpeed | telemetry.HasCourse |
				telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
			AltCm: 5000, GeoidSepCm: 4790, SpeedMmps: 13900, CourseCdeg: 4500, Mode: 3, Quality: 1, SatsUsed: 9, HDOPc: 90,
		}},
	}},
	{"batch2_mixed.golden", &telemetry.Batch{
		StreamID: 0xFEDCBA9876543210,
		Positions: []telemetry.Position{
			{Seq: 41, UnixMs: t2 + 37, LatE7: 437384000, LonE7: 74246000, Has: telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasMode | telemetry.HasHDOP,
				AltCm: 5000, SpeedMmps: 13900, Mode: 3, HDOPc: 90},
			{Seq: 45, UnixMs: t2 + 1037, LatE7: 437384100, LonE7: 74246200, Has: telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasMode,
				AltCm: 5010, SpeedMmps: 14000, Mode: 3},
			{Seq: 48, UnixMs: t2 + 2037, LatE7: 437384210, LonE7: 74246390, Has: telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasMode | telemetry.HasQuality | telemetry.HasHDOP,
				AltCm: 5030, SpeedMmps: 14000, Mode: 3, Quality: 4, HDOPc: 95},
		},
		OBD: []telemetry.OBDSample{
			{Seq: 42, UnixMs: t2 + 449, PID: 0x010C, Value: 1303.75},
			{Seq: 43, UnixMs: t2 + 449, PID: 0x012F, Value: 128.0 * 100 / 255},
			{Seq: 46, UnixMs: t2 + 1449, PID: 0x010C, Value: 1726},
			{Seq: 49, UnixMs: t2 + 2449, PID: 0x010D, Value: 50},
			{Seq: 50, UnixMs: t2 + 2449, PID: 0x0142, Value: math.Nextafter(0.3, 1)}, // 0.1 + 0.2 at run time,
		},
		Events:       []telemetry.Event{{Seq: 47, UnixMs: t2 + 1450, Type: telemetry.EventDTCSet, Code: "P0301", Detail: "stored"}},
		GNSSTime:     []telemetry.SeqRange{{First: 42, Last: 43}},
		UnsyncedTime: []telemetry.SeqRange{{First: 47, Last: 47}, {First: 49, Last: 49}},
	}},
}

func TestBatchV2Golden(t *testing.T) {
	for _, tc := range goldenBatches2 {
		t.Run(tc.file, func(t *testing.T) {
			want := readGolden(t, tc.file)
			got, err := telemetry.EncodeBatchV2(tc.batch, false)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeBatchV2:\n got % x\nwant % x", got, want)
			}
			dec, err := telemetry.DecodeBatch(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.batch, dec); diff != "" {
				t.Errorf("DecodeBatch (-want +got):\n%s", diff)
			}
			dec, err = telemetry.DecodeBatchOn("car-9", want)
			if err != nil || dec.VehicleID != "car-9" {
				t.Errorf("DecodeBatchOn: vehicle %q, %v; want the topic's car-9", dec.VehicleID, err)
			}
		})
	}
}

// The zstd vector was compressed by the zstd command-line tool, so it checks
// our decoder against an independent encoder.
func TestBatchV2GoldenZstd(t *testing.T) {
	dec, err := telemetry.DecodeBatch(readGolden(t, "batch2_mixed_zstd.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenBatches2[1].batch, dec); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A version 1 batch keeps its own vehicle id through DecodeBatchOn, so the
// receiver can compare it with the topic's.
func TestDecodeBatchOnKeepsVersion1VehicleID(t *testing.T) {
	b, err := telemetry.DecodeBatchOn("car-9", readGolden(t, "batch_two_fixes.golden"))
	if err != nil || b.VehicleID != "car-1" {
		t.Errorf("vehicle %q, %v; want the payload's car-1", b.VehicleID, err)
	}
}

// TestBatchV2RoundTrip: batches at the edges of every type come back as
// they went, in seq order, compressed or not.
func TestBatchV2RoundTrip(t *testing.T) {
	all := telemetry.HasAlt | telemetry.HasGeoidSep | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasMode |
		telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasSatsInView | telemetry.HasHDOP | telemetry.HasVDOP |
		telemetry.HasPDOP | telemetry.HasErrLat | telemetry.HasErrLon | telemetry.HasErrAlt
	extreme := func(seq uint64, ms int64, v int32) telemetry.Position {
		return telemetry.Position{Seq: seq, UnixMs: ms, LatE7: v, LonE7: -v, Has: all, AltCm: v, GeoidSepCm: -v, SpeedMmps: v,
			CourseCdeg: -v, Mode: v, Quality: v, SatsUsed: -v, SatsInView: v, HDOPc: v, VDOPc: -v, PDOPc: v, ErrLatCm: v, ErrLonCm: -v, ErrAltCm: v}
	}
	var many telemetry.Batch
	many.StreamID = 7
	for i, p := range drive(700) {
		p.Seq = uint64(10 + 3*i)
		many.Positions = append(many.Positions, p)
		many.OBD = append(many.OBD, telemetry.OBDSample{Seq: p.Seq + 1, UnixMs: p.UnixMs + 400, PID: 0x010C, Value: float64(3000+i%40) / 4},
			telemetry.OBDSample{Seq: p.Seq + 2, UnixMs: p.UnixMs + 400, PID: 0x0142, Value: 12 + float64(i)/3})
	}
	tests := []struct {
		name string
		b    *telemetry.Batch
	}{
		{"empty", &telemetry.Batch{StreamID: 1}},
		{"int32 extremes", &telemetry.Batch{StreamID: math.MaxUint64, Positions: []telemetry.Position{
			extreme(1, math.MinInt64, math.MinInt32), extreme(2, math.MaxInt64, math.MaxInt32), extreme(math.MaxUint64, 0, math.MinInt32)}}},
		{"fields absent", &telemetry.Batch{StreamID: 2, Positions: []telemetry.Position{
			{Seq: 5, UnixMs: -1, LatE7: -900000000, LonE7: 1800000000}, {Seq: 6, UnixMs: -101, Has: telemetry.HasErrAlt, ErrAltCm: 3}}}},
		{"odd values", &telemetry.Batch{StreamID: 3, OBD: []telemetry.OBDSample{
			{Seq: 1, PID: 0x0142, Value: math.Inf(-1)}, {Seq: 2, PID: 0x0142, Value: math.Copysign(0, -1)},
			{Seq: 3, PID: 0x0142, Value: math.MaxFloat64}, {Seq: 4, PID: 0xFFFF, Value: 1 << 53}, {Seq: 5, PID: 0xFFFF, Value: -(1 << 53)},
			{Seq: 6, PID: 0x0104, Value: 255.0 * 100 / 255}, {Seq: 7, PID: 0x0106, Value: (154.0 - 128) * 100 / 128}}}},
		{"events", &telemetry.Batch{StreamID: 4, Events: []telemetry.Event{
			{Seq: 9, UnixMs: t2, Type: telemetry.EventGPSJump, Code: "gps.jump", Detail: "", Value: math.MinInt64},
			{Seq: 10, UnixMs: t2, Type: telemetry.EventType(1 << 30), Code: "é\x00", Value: math.MaxInt64}}}},
		{"700 s of driving", &many},
		{"time sources", &telemetry.Batch{StreamID: 5, OBD: []telemetry.OBDSample{{Seq: 1, PID: 0x010C}, {Seq: 2, PID: 0x010C}, {Seq: math.MaxUint64, PID: 0x010C}},
			GNSSTime: []telemetry.SeqRange{{First: 1, Last: 1}}, UnsyncedTime: []telemetry.SeqRange{{First: 2, Last: 2}, {First: math.MaxUint64, Last: math.MaxUint64}}}},
		{"unsynchronised time only", &telemetry.Batch{StreamID: 6, Events: []telemetry.Event{{Seq: 9}},
			UnsyncedTime: []telemetry.SeqRange{{First: 9, Last: 9}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, compress := range []bool{false, true} {
				p, err := telemetry.EncodeBatchV2(tc.b, compress)
				if err != nil {
					t.Fatal(err)
				}
				got, err := telemetry.DecodeBatch(p)
				if err != nil {
					t.Fatalf("compress %v: %v", compress, err)
				}
				if diff := cmp.Diff(tc.b, got, cmp.Comparer(sameFloat)); diff != "" {
					t.Errorf("compress %v (-want +got):\n%s", compress, diff)
				}
			}
		})
	}
}

// sameFloat compares floats by their bits, so -0 and +0 differ and NaN
// equals itself.
func sameFloat(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }

func TestBatchV2NaN(t *testing.T) {
	nan := math.Float64frombits(0x7ff8000000000123)
	p, err := telemetry.EncodeBatchV2(&telemetry.Batch{StreamID: 1, OBD: []telemetry.OBDSample{{Seq: 1, PID: 0x010C, Value: nan}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := telemetry.DecodeBatch(p)
	if err != nil || math.Float64bits(b.OBD[0].Value) != 0x7ff8000000000123 {
		t.Errorf("NaN came back as %x, %v", math.Float64bits(b.OBD[0].Value), err)
	}
}

func TestBatchV2DuplicateSeq(t *testing.T) {
	b := &telemetry.Batch{StreamID: 1, Positions: []telemetry.Position{{Seq: 3}}, Events: []telemetry.Event{{Seq: 3}}}
	if _, err := telemetry.EncodeBatchV2(b, false); !errors.Is(err, telemetry.ErrDuplicateSeq) {
		t.Errorf("err = %v, want ErrDuplicateSeq", err)
	}
}

func TestBatchV2DecodeBad(t *testing.T) {
	good := readGolden(t, "batch2_mixed.golden")
	lone := readGolden(t, "batch2_lone_fix.golden")
	with := func(p []byte, at int, b ...byte) []byte {
		out := append([]byte(nil), p[:at]...)
		out = append(out, b...)
		return append(out, p[at:]...)
	}
	set := func(p []byte, at int, b byte) []byte {
		out := append([]byte(nil), p...)
		out[at] = b
		return out
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"version 3", set(good, 0, 0x30), telemetry.ErrVersion},
		{"unknown flag", set(good, 0, 0x22), telemetry.ErrVersion},
		{"no stream id", good[:5], telemetry.ErrMalformed},
		{"cut in the columns", good[:len(good)-4], telemetry.ErrMalformed},
		{"a byte too many", append(append([]byte(nil), good...), 0), telemetry.ErrMalformed},
		{"too many records", append(set(lone[:9], 0, 0x20), 0x82, 0x80, 0x80, 0x01), telemetry.ErrMalformed},
		{"mask with an unknown field", with(set(lone, 18, 0xbf), 19, 0x80, 0x01), telemetry.ErrMalformed},
		{"time remainder 0", with(set(lone, 13, 0x81), 18, 0x00), telemetry.ErrMalformed},
		{"time remainder 100", with(set(lone, 13, 0x81), 18, 0x64), telemetry.ErrMalformed},
		{"unknown scale", set(good, 21, 0x0a), telemetry.ErrMalformed},
		{"zstd flag on a plain body", set(good, 0, 0x21), telemetry.ErrMalformed},
		{"sats_used beyond 32 bits", with(set(lone, 37, 0x80), 38, 0x80, 0x80, 0x80, 0x80, 0x01), telemetry.ErrMalformed},
		{"seq gap past 2^64", with(set(good, 32, 0xff), 33, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), telemetry.ErrMalformed},
		{"time-source ranges not apart", append(good[:len(good)-5:len(good)-5], 0x02, 0x2f, 0x00, 0x00, 0x00), telemetry.ErrMalformed},
		{"time-source range past 2^64", append(good[:len(good)-5:len(good)-5], 0x01, 0x2f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), telemetry.ErrMalformed},
		{"time-source list cut short", good[:len(good)-2], telemetry.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { decodeFails(t, tc.in, tc.want) })
	}
}
