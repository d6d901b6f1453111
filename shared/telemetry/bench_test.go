package telemetry_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

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

// BenchmarkBytesPerFix reports the payload size of one fix in 60-fix batches
// at 1 Hz in protocol version 2, compressed (the protocol's target: at most
// 11 B), beside version 1 and JSON; and a fix sent alone, as a caught-up
// agent sends it (payload only; deploy/bench counts the whole PUBLISH).
func BenchmarkBytesPerFix(b *testing.B) {
	const n = 60
	batch := &telemetry.Batch{VehicleID: "veh-0001", StreamID: 0x1234567890abcdef, Positions: drive(n)}
	js := make([]jsonFix, n)
	for i, p := range batch.Positions {
		js[i] = jsonFix{p.Seq, time.UnixMilli(p.UnixMs).UTC(), p.Lat(), p.Lon(), float64(p.AltCm) / 100,
			float64(p.SpeedMmps) / 1000, float64(p.CourseCdeg) / 100, p.SatsUsed, float64(p.HDOPc) / 100}
	}
	jsonBytes, err := json.Marshal(js)
	if err != nil {
		b.Fatal(err)
	}
	v1, err := telemetry.EncodeBatch(batch, true)
	if err != nil {
		b.Fatal(err)
	}
	var z []byte
	for b.Loop() {
		if z, err = telemetry.EncodeBatchV2(batch, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(z))/n, "B/fix")
	b.ReportMetric(float64(len(v1))/n, "B/fix-v1")
	b.ReportMetric(float64(len(jsonBytes))/n, "B/fix-json")
	b.ReportMetric(float64(len(jsonBytes))/float64(len(z)), "x-smaller-than-json")
	one, err := telemetry.EncodeBatchV2(&telemetry.Batch{StreamID: batch.StreamID, Positions: batch.Positions[:1]}, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(one)), "B/fix-alone-payload")
}

// BenchmarkDecodeBatch measures decoding 60-fix compressed batches of
// version 2.
func BenchmarkDecodeBatch(b *testing.B) {
	batch := &telemetry.Batch{VehicleID: "veh-0001", StreamID: 1, Positions: drive(60)}
	p, err := telemetry.EncodeBatchV2(batch, true)
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
