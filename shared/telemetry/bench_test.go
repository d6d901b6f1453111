package telemetry_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// drive returns n fixes of a car at about 50 km/h, 1 Hz, with the resolution a
// typical receiver gives (minutes to 4 decimals, altitude to 0.1 m, speed to 0.1
// knot, course to 0.1°), and seqs interleaved with other records as in a real
// stream (GPS + OBD).
func drive(n int) []telemetry.Position {
	lat, lon, spd, crs, alt := 43.7384, 7.4246, 13.9, 45.0, 50.0
	q := func(d float64) float64 { return math.Round(d*60*1e4) / 60 / 1e4 }
	out := make([]telemetry.Position, n)
	for i := range out {
		spd = math.Max(0, spd+math.Sin(float64(i)/5)*0.8)
		crs += math.Cos(float64(i)/7) * 3
		lat += spd * math.Cos(crs*math.Pi/180) / 111320
		lon += spd * math.Sin(crs*math.Pi/180) / (111320 * math.Cos(lat*math.Pi/180))
		alt += math.Sin(float64(i)/9) * 0.3
		out[i] = telemetry.Position{
			Seq: uint64(100 + i*4), UnixMs: 1700000000000 + int64(i)*1000,
			LatE7: telemetry.E7(q(lat)), LonE7: telemetry.E7(q(lon)),
			Has: telemetry.HasAlt | telemetry.HasGeoidSep | telemetry.HasSpeed | telemetry.HasCourse |
				telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
			AltCm: int32(math.Round(alt*10)) * 10, GeoidSepCm: 4790,
			SpeedMmps:  telemetry.Scaled(math.Round(spd/0.514444*10)/10*0.514444, 1000),
			CourseCdeg: int32(math.Round(math.Mod(crs+3600, 360)*10)) * 10,
			Mode:       3, Quality: 1, SatsUsed: int32(9 + i/20), HDOPc: 90 + int32(i/30)*10,
		}
	}
	return out
}

// jsonFix is the baseline: the same fix as a typical tracker's JSON.
type jsonFix struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Lat    float64   `json:"lat"`
	Lon    float64   `json:"lon"`
	Alt    float64   `json:"alt"`
	Speed  float64   `json:"speed"`
	Course float64   `json:"course"`
	Sats   int32     `json:"sats"`
	HDOP   float64   `json:"hdop"`
}

// jsonFixes is the baseline payload of fixes: a JSON array of jsonFix.
func jsonFixes(tb testing.TB, ps []telemetry.Position) []byte {
	tb.Helper()
	js := make([]jsonFix, len(ps))
	for i, p := range ps {
		js[i] = jsonFix{p.Seq, time.UnixMilli(p.UnixMs).UTC(), p.Lat(), p.Lon(), float64(p.AltCm) / 100,
			float64(p.SpeedMmps) / 1000, float64(p.CourseCdeg) / 100, p.SatsUsed, float64(p.HDOPc) / 100}
	}
	b, err := json.Marshal(js)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// gzipped and zstded are the baselines' compressed forms, at the libraries'
// default levels, as a tracker sending compressed JSON would.
func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(tb testing.TB, b []byte) []byte {
	tb.Helper()
	e, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// encodedFixes returns fixes as the agent sends them: a compressed Batch of
// protocol version 2.
func encodedFixes(tb testing.TB, ps []telemetry.Position) []byte {
	tb.Helper()
	p, err := telemetry.EncodeBatchV2(&telemetry.Batch{VehicleID: "veh-0001", StreamID: 0x1234567890abcdef, Positions: ps}, true)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// encodedFixesV1 returns fixes as protocol version 1 has them.
func encodedFixesV1(tb testing.TB, ps []telemetry.Position) []byte {
	tb.Helper()
	p, err := telemetry.EncodeBatch(&telemetry.Batch{VehicleID: "veh-0001", StreamID: 0x1234567890abcdef, Positions: ps}, true)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkBytesPerFix reports the payload size of one fix in 60-fix batches
// at 1 Hz (target ≤ 11 B), and of a lone fix, as a caught-up agent sends it,
// in protocol version 2, each beside version 1 and the same fixes as JSON,
// JSON+gzip and JSON+zstd: a skeptic compares with compressed JSON, not raw.
// Payloads only: deploy/bench's BenchmarkWireBytes counts the whole MQTT
// PUBLISH (the lone fix's target, ≤ 64 B, is for that). The figures are
// deterministic; TestWireSizeTargets asserts the targets.
func BenchmarkBytesPerFix(b *testing.B) {
	const n = 60
	fixes := liveFixes(n)
	plain, err := telemetry.EncodeBatchV2(&telemetry.Batch{VehicleID: "veh-0001", StreamID: 0x1234567890abcdef, Positions: fixes}, false)
	if err != nil {
		b.Fatal(err)
	}
	var z []byte
	for b.Loop() {
		z = encodedFixes(b, fixes)
	}
	js := jsonFixes(b, fixes)
	perFix := func(p []byte) float64 { return float64(len(p)) / n }
	b.ReportMetric(perFix(z), "B/fix")
	b.ReportMetric(perFix(plain), "B/fix-uncompressed")
	b.ReportMetric(perFix(encodedFixesV1(b, fixes)), "B/fix-v1")
	b.ReportMetric(perFix(js), "B/fix-json")
	b.ReportMetric(perFix(gzipped(b, js)), "B/fix-json-gzip")
	b.ReportMetric(perFix(zstded(b, js)), "B/fix-json-zstd")
	// A caught-up agent sends each fix as soon as the link is free: a batch
	// of one, where the header, the stream id and the first absolute values
	// dominate.
	// dominate. Each is counted as its whole MQTT PUBLISH on the same topic.
	one, oneJS := encodedFixes(b, fixes[:1]), jsonFixes(b, fixes[:1])
	b.ReportMetric(float64(onWire(b, one)), "B/lone-fix")
	b.ReportMetric(float64(len(one)), "B/lone-fix-payload")
	b.ReportMetric(float64(onWire(b, encodedFixesV1(b, fixes[:1]))), "B/lone-fix-v1")
	b.ReportMetric(float64(onWire(b, oneJS)), "B/lone-fix-json")
	b.ReportMetric(float64(onWire(b, gzipped(b, oneJS))), "B/lone-fix-json-gzip")
	b.ReportMetric(float64(onWire(b, zstded(b, oneJS))), "B/lone-fix-json-zstd")
}

// liveFixes returns drive(n) as a stream some days old has them in 2026:
// times and seqs of the sizes they have in service.
func liveFixes(n int) []telemetry.Position {
	fixes := drive(n)
	for i := range fixes {
		fixes[i].UnixMs += t2 - 1700000000000
		fixes[i].Seq += 1_000_000
	}
	return fixes
}

// onWire returns the size of the MQTT 3.1.1 PUBLISH (§3.3, QoS 1) of
// payload on the topic of veh-0001's version 2 batches: the fixed header (a
// byte and the remaining length), the topic (2-byte length and bytes), the
// packet identifier and the payload.
func onWire(tb testing.TB, payload []byte) int {
	tb.Helper()
	topic, err := telemetry.DefaultNamespace.Topic("veh-0001", telemetry.KindBatchV2)
	if err != nil {
		tb.Fatal(err)
	}
	n := 2 + len(topic) + 2 + len(payload)
	header := 2
	for r := n; r >= 128; r >>= 7 {
		header++
	}
	return header + n
}

// BenchmarkDecodeBatch measures decoding 60-fix compressed batches.
func BenchmarkDecodeBatch(b *testing.B) {
	batch := &telemetry.Batch{VehicleID: "veh-0001", StreamID: 1, Positions: drive(60)}
	p, err := telemetry.EncodeBatch(batch, true)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := telemetry.DecodeBatch(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*60)/b.Elapsed().Seconds(), "fixes/s")
}
