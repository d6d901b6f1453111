package telemetry_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// readGolden returns the bytes of a testdata/*.golden file: hex, with '#' comments.
func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, b...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

const t0 = int64(1700000000000)

var goldenBatches = []struct {
	file  string
	batch *telemetry.Batch
}{
	{"batch_two_fixes.golden", &telemetry.Batch{
		VehicleID: "car-1", StreamID: 0x0102030405060708,
		Positions: []telemetry.Position{
			{Seq: 1, UnixMs: t0, LatE7: 437384000, LonE7: 74246000, Has: telemetry.HasSpeed, SpeedMmps: 5000},
			{Seq: 2, UnixMs: t0 + 1000, LatE7: 437384100, LonE7: 74246200, Has: telemetry.HasSpeed, SpeedMmps: 5100},
		},
	}},
	{"batch_absent_obd_event.golden", &telemetry.Batch{
		VehicleID: "car-2", StreamID: math.MaxUint64,
		Positions: []telemetry.Position{
			{Seq: 10, UnixMs: t0, LatE7: -337000000, LonE7: 1512000000, Has: telemetry.HasMode | telemetry.HasHDOP, Mode: 3, HDOPc: 95},
			{Seq: 12, UnixMs: t0 + 1000, LatE7: -337000005, LonE7: 1512000007, Has: telemetry.HasMode, Mode: 3},
			{Seq: 13, UnixMs: t0 + 2000, LatE7: -337000010, LonE7: 1512000014, Has: telemetry.HasMode | telemetry.HasHDOP, Mode: 3, HDOPc: 110},
		},
		OBD: []telemetry.OBDSample{
			{Seq: 11, UnixMs: t0 + 500, PID: 0x010C, Value: 1303.75},
			{Seq: 14, UnixMs: t0 + 2000, PID: 0x010D, Value: 42},
		},
		Events: []telemetry.Event{{Seq: 15, UnixMs: t0 + 2000, Type: telemetry.EventDTCSet, Code: "P0301"}},
	}},
}

func TestBatchGolden(t *testing.T) {
	for _, tc := range goldenBatches {
		t.Run(tc.file, func(t *testing.T) {
			want := readGolden(t, tc.file)
			got, err := telemetry.EncodeBatch(tc.batch, false)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeBatch:\n got % x\nwant % x", got, want)
			}
			dec, err := telemetry.DecodeBatch(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.batch, dec); diff != "" {
				t.Errorf("DecodeBatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The zstd vector was compressed by the zstd command-line tool, so it checks our
// decoder against an independent encoder.
func TestBatchGoldenZstd(t *testing.T) {
	dec, err := telemetry.DecodeBatch(readGolden(t, "batch_two_fixes_zstd.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenBatches[0].batch, dec); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAckGolden(t *testing.T) {
	want := readGolden(t, "ack.golden")
	ack := telemetry.NewAck("car-1", 0x0102030405060708,
		[]telemetry.SeqRange{{1, 2}, {5, 9}}, []telemetry.SeqRange{{3, 3}}, "lat out of range")
	got, err := telemetry.Encode(ack, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Encode(ack):\n got % x\nwant % x", got, want)
	}
	var dec telemetrypb.Ack
	if err := telemetry.Decode(want, &dec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ack, &dec, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c, r := telemetry.AckRanges(&dec)
	if diff := cmp.Diff([]telemetry.SeqRange{{1, 2}, {5, 9}}, c); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]telemetry.SeqRange{{3, 3}}, r); diff != "" {
		t.Error(diff)
	}
}

func TestCompressedRoundTrip(t *testing.T) {
	b := &telemetry.Batch{VehicleID: "v", StreamID: 7}
	for i := range 600 {
		b.Positions = append(b.Positions, telemetry.Position{
			Seq: uint64(i + 1), UnixMs: t0 + int64(i)*1000, LatE7: 437000000 + int32(i*137), LonE7: 74000000 - int32(i*91),
			Has: telemetry.HasSpeed | telemetry.HasMode, SpeedMmps: int32(10000 + i%7), Mode: 3,
		})
	}
	plain, err := telemetry.EncodeBatch(b, false)
	if err != nil {
		t.Fatal(err)
	}
	z, err := telemetry.EncodeBatch(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if z[0] != telemetry.Header(telemetry.FlagZstd) || len(z) >= len(plain) {
		t.Errorf("compressed: header %#x, %d bytes vs %d plain", z[0], len(z), len(plain))
	}
	for _, p := range [][]byte{plain, z} {
		got, err := telemetry.DecodeBatch(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(b, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	}
}

// A tiny payload is not worth compressing: the encoder sends it plain.
func TestCompressionOnlyWhenSmaller(t *testing.T) {
	p, err := telemetry.Encode(&telemetrypb.Ack{VehicleId: "a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != telemetry.Header(0) {
		t.Errorf("header %#x, want plain %#x", p[0], telemetry.Header(0))
	}
}

func TestDecodeBad(t *testing.T) {
	good := readGolden(t, "batch_two_fixes.golden")
	mutate := func(f func(pb *telemetrypb.Batch)) []byte {
		var pb telemetrypb.Batch
		if err := proto.Unmarshal(good[1:], &pb); err != nil {
			t.Fatal(err)
		}
		f(&pb)
		body, err := proto.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{0x10}, body...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, telemetry.ErrMalformed},
		{"version 0", append([]byte{0x00}, good[1:]...), telemetry.ErrVersion},
		{"version 3", append([]byte{0x30}, good[1:]...), telemetry.ErrVersion},
		{"version 1 body under a version 2 header", append([]byte{0x20}, good[1:]...), telemetry.ErrMalformed},
		{"unknown flag", append([]byte{0x12}, good[1:]...), telemetry.ErrVersion},
		{"truncated", good[:len(good)-3], telemetry.ErrMalformed},
		{"zstd flag on plain body", append([]byte{0x11}, good[1:]...), telemetry.ErrMalformed},
		{"count larger than columns", mutate(func(pb *telemetrypb.Batch) { pb.Positions.Count = 3 }), telemetry.ErrMalformed},
		{"required column missing", mutate(func(pb *telemetrypb.Batch) { pb.Positions.LatE7 = nil }), telemetry.ErrMalformed},
		{"required column absent rows", mutate(func(pb *telemetrypb.Batch) { pb.Positions.Seq.Absent = []byte{1} }), telemetry.ErrMalformed},
		{"bitmap too long", mutate(func(pb *telemetrypb.Batch) { pb.Positions.SpeedMmps.Absent = []byte{0, 0} }), telemetry.ErrMalformed},
		{"absent bit past count", mutate(func(pb *telemetrypb.Batch) {
			pb.Positions.SpeedMmps.Absent = []byte{0x04}
		}), telemetry.ErrMalformed},
		{"lat beyond int32", mutate(func(pb *telemetrypb.Batch) { pb.Positions.LatE7.Values[1] = math.MaxInt64 / 2 }), telemetry.ErrMalformed},
		{"negative seq", mutate(func(pb *telemetrypb.Batch) { pb.Positions.Seq.Values[0] = -5 }), telemetry.ErrMalformed},
		{"columns without count", mutate(func(pb *telemetrypb.Batch) { pb.Positions.Count = 0 }), telemetry.ErrMalformed},
		{"obd values short", mutate(func(pb *telemetrypb.Batch) {
			pb.Obd = &telemetrypb.ObdSamples{Count: 1, Seq: &telemetrypb.Column{Values: []int64{3}}, UnixMs: &telemetrypb.Column{Values: []int64{t0}}, Pid: []uint32{0x010C}}
		}), telemetry.ErrMalformed},
		{"obd pid beyond 16 bits", mutate(func(pb *telemetrypb.Batch) {
			pb.Obd = &telemetrypb.ObdSamples{Count: 1, Seq: &telemetrypb.Column{Values: []int64{3}}, UnixMs: &telemetrypb.Column{Values: []int64{t0}}, Pid: []uint32{0x1010C}, Value: []float64{1}}
		}), telemetry.ErrMalformed},
		{"too many rows", mutate(func(pb *telemetrypb.Batch) { pb.Positions.Count = telemetry.MaxRows + 1 }), telemetry.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { decodeFails(t, tc.in, tc.want) })
	}
}

// decodeFails checks that DecodeBatch refuses p with an error wrapping want
// and no batch.
func decodeFails(t *testing.T, p []byte, want error) {
	t.Helper()
	b, err := telemetry.DecodeBatch(p)
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if b != nil {
		t.Errorf("got a batch with the error: %+v", b)
	}
}

// FuzzDecodeBatch feeds arbitrary payloads to DecodeBatch: an error wraps
// ErrMalformed or ErrVersion and comes without a batch; a batch that decodes
// encodes again, in its version, to one that decodes to the same rows.
func FuzzDecodeBatch(f *testing.F) {
	for _, g := range []string{"batch_two_fixes.golden", "batch_absent_obd_event.golden", "batch_two_fixes_zstd.golden", "ack.golden",
		"batch2_lone_fix.golden", "batch2_mixed.golden", "batch2_mixed_zstd.golden"} {
		f.Add(readGolden(f, g))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := telemetry.DecodeBatch(p)
		if err != nil {
			if !errors.Is(err, telemetry.ErrMalformed) && !errors.Is(err, telemetry.ErrVersion) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrVersion", err)
			}
			if b != nil {
				t.Fatalf("error %v and a batch", err)
			}
			return
		}
		encode := telemetry.EncodeBatch
		if p[0]>>4 == 2 {
			encode = telemetry.EncodeBatchV2
		}
		again, err := encode(b, p[0]&telemetry.FlagZstd != 0)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := telemetry.DecodeBatch(again)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if diff := cmp.Diff(b, b2, cmp.Comparer(sameFloat)); diff != "" {
			t.Fatalf("round trip changed the batch:\n%s", diff)
		}
	})
}

// A payload that goes bad after a good field leaves no partially decoded
// message (found by FuzzDecode: testdata/fuzz/FuzzDecode/partial_ack).
func TestDecodeErrorLeavesMessageEmpty(t *testing.T) {
	// Ack.vehicle_id = "a", then a committed range cut short.
	p := []byte{telemetry.Header(0), 0x0a, 0x01, 'a', 0x1a, 0x05}
	a := &telemetrypb.Ack{VehicleId: "old", Reason: "old"}
	if err := telemetry.Decode(p, a); !errors.Is(err, telemetry.ErrMalformed) || proto.Size(a) != 0 {
		t.Errorf("Decode: %v, message %v; want ErrMalformed and an empty message", err, a)
	}
	a = &telemetrypb.Ack{VehicleId: "old"}
	if err := telemetry.Decode([]byte{0x20}, a); !errors.Is(err, telemetry.ErrVersion) || proto.Size(a) != 0 {
		t.Errorf("Decode of version 2: %v, message %v; want ErrVersion and an empty message", err, a)
	}
}

// FuzzDecode feeds arbitrary payloads to Decode as each message that is not a
// batch: Ack, Command, CommandResult, Status. An error wraps ErrMalformed or
// ErrVersion and leaves no partially decoded message; a message that decodes
// encodes again, plain and compressed, to one that decodes proto.Equal.
func FuzzDecode(f *testing.F) {
	kinds := []proto.Message{&telemetrypb.Ack{}, &telemetrypb.Command{}, &telemetrypb.CommandResult{}, &telemetrypb.Status{}}
	seeds := []proto.Message{
		&telemetrypb.Command{Id: "e", Type: telemetrypb.CommandType_COMMAND_TYPE_SET_PIDS, ExpiresUnixMs: t0, Pids: []uint32{0x010C, 0x0D}},
		&telemetrypb.CommandResult{Id: "e", Ok: true, UnixMs: t0, Dtcs: []string{"P0301", "U0100"}},
		&telemetrypb.Status{VehicleId: "car-1", Online: true, UnixMs: t0, StreamId: 7, NextSeq: 12, FixMode: 3,
			Counters: map[string]uint64{"gps.bad_checksum": 2, "obd.timeouts": 1}, UptimeMs: 60000},
	}
	for _, g := range []string{"ack.golden", "batch_two_fixes.golden", "batch_two_fixes_zstd.golden"} {
		p := readGolden(f, g)
		for k := range kinds {
			f.Add(p, uint8(k))
		}
	}
	for i, m := range seeds {
		p, err := telemetry.Encode(m, false)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, uint8(i+1))
	}
	f.Fuzz(func(t *testing.T, p []byte, kind uint8) {
		m := kinds[int(kind)%len(kinds)].ProtoReflect().New().Interface()
		if err := telemetry.Decode(p, m); err != nil {
			if !errors.Is(err, telemetry.ErrMalformed) && !errors.Is(err, telemetry.ErrVersion) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrVersion", err)
			}
			if proto.Size(m) != 0 {
				t.Fatalf("error %v, and a partially decoded %T: %v", err, m, m)
			}
			return
		}
		for _, compress := range []bool{false, true} {
			again, err := telemetry.Encode(m, compress)
			if err != nil {
				t.Fatal(err)
			}
			m2 := m.ProtoReflect().New().Interface()
			if err := telemetry.Decode(again, m2); err != nil {
				t.Fatalf("re-encoded %T does not decode: %v", m, err)
			}
			if !proto.Equal(m, m2) {
				t.Fatalf("round trip changed the %T:\n%v\n%v", m, m, m2)
			}
		}
	})
}

// The time-source ranges of a batch, on the wire as the schema says: field 6
// (gnss_time) and 7 (unsynced_time), each a SeqRange message; written by
// hand from the protobuf encoding rules.
func TestBatchTimeSourceRanges(t *testing.T) {
	b := &telemetry.Batch{
		GNSSTime:     []telemetry.SeqRange{{First: 5, Last: 7}},
		UnsyncedTime: []telemetry.SeqRange{{First: 1, Last: 1}, {First: 3, Last: 300}},
	}
	got, err := proto.Marshal(telemetry.BatchToProto(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x32, 0x04, 0x08, 0x05, 0x10, 0x07, // 6: {first: 5, last: 7}
		0x3a, 0x04, 0x08, 0x01, 0x10, 0x01, // 7: {first: 1, last: 1}
		0x3a, 0x05, 0x08, 0x03, 0x10, 0xac, 0x02, // 7: {first: 3, last: 300}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("wire % x\nwant % x", got, want)
	}
	p, err := telemetry.EncodeBatch(b, false)
	if err != nil {
		t.Fatal(err)
	}
	back, err := telemetry.DecodeBatch(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var rs []telemetry.SeqRange
	for _, s := range []uint64{4, 5, 6, 9, 10, 12} {
		rs = telemetry.AddSeq(rs, s)
	}
	if diff := cmp.Diff([]telemetry.SeqRange{{First: 4, Last: 6}, {First: 9, Last: 10}, {First: 12, Last: 12}}, rs); diff != "" {
		t.Errorf("AddSeq (-want +got):\n%s", diff)
	}
}
