// Package bench measures the performance figures of docs/BENCHMARKS.md with Go
// benchmarks (`make bench`) against the real services of the machine —
// PostgreSQL, Redis, Mosquitto — and the real programs: cloud ingest
// throughput against one INSERT per row, a 24 h backlog drained from a bbolt
// outbox, the latency from a serial line to the commit in PostgreSQL, the
// agent's memory and CPU, and the bytes on the wire of a fix and of a
// vehicle-day against Teltonika Codec 8 and JSON. Each benchmark reports its
// figures with b.ReportMetric, as ratios to a baseline where one exists;
// none asserts a timing (the byte figures, which are no timings, are also
// asserted by tests).
//
// The non-test code here makes the inputs: a synthetic drive (fixes and OBD
// samples with a receiver's resolution), NMEA sentences for a pty, a
// process's CPU time and peak memory from /proc, and the sizes of MQTT
// packets.
package bench

import (
	"math"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Drive is a car driving at about 50 km/h with smooth turns and speed
// changes, sampled as a typical receiver reports it: minutes to four
// decimals, altitude to 0.1 m, speed to 0.1 knot, course to 0.1°.
type Drive struct {
	lat, lon, alt, speed, course float64
	i                            int
}

// NewDrive starts a drive in Monaco; seed varies the start and the turns.
func NewDrive(seed int) *Drive {
	s := float64(seed%1000) / 1000
	return &Drive{lat: 43.7384 + s*0.01, lon: 7.4246 + s*0.01, alt: 50, speed: 13.9, course: 45 + 300*s}
}

// Next advances the drive by one step of dt and returns the fix at t (Seq 0).
func (d *Drive) Next(t time.Time, dt time.Duration) telemetry.Position {
	sec := dt.Seconds()
	d.i++
	f := float64(d.i)
	d.speed = math.Max(0, d.speed+math.Sin(f/50)*0.8*sec)
	d.course = math.Mod(d.course+math.Cos(f/70)*3*sec+360, 360)
	d.lat += d.speed * sec * math.Cos(d.course*math.Pi/180) / 111320
	d.lon += d.speed * sec * math.Sin(d.course*math.Pi/180) / (111320 * math.Cos(d.lat*math.Pi/180))
	d.alt += math.Sin(f/90) * 0.3 * sec
	q := func(deg float64) float64 { return math.Round(deg*60*1e4) / 60 / 1e4 }
	return telemetry.Position{
		UnixMs: t.UnixMilli(), LatE7: telemetry.E7(q(d.lat)), LonE7: telemetry.E7(q(d.lon)),
		Has: telemetry.HasAlt | telemetry.HasGeoidSep | telemetry.HasSpeed | telemetry.HasCourse |
			telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP,
		AltCm: int32(math.Round(d.alt*10)) * 10, GeoidSepCm: 4790,
		SpeedMmps:  telemetry.Scaled(math.Round(d.speed/knot*10)/10*knot, 1000),
		CourseCdeg: int32(math.Round(d.course*10)) * 10 % 36000,
		Mode:       telemetry.Mode3D, Quality: 1, SatsUsed: 9, HDOPc: 90,
	}
}

// knot is one knot in metres per second.
const knot = 1852.0 / 3600.0

// PIDs are the eight Mode 01 PIDs the benchmarks poll (all of them answered
// by firmware-sim's engine computer): engine load, coolant temperature,
// engine speed, vehicle speed, intake air temperature, mass air flow,
// throttle position, fuel level.
var PIDs = []uint16{0x0104, 0x0105, 0x010C, 0x010D, 0x010F, 0x0110, 0x0111, 0x012F}

// OBD returns the value of pid for a drive at step i, in the PID's unit
// (SAE J1979) and at its resolution.
func OBD(pid uint16, i int) float64 {
	w := math.Sin(float64(i) / 37)
	switch pid {
	case 0x010C:
		return math.Round((1800+700*w)*4) / 4 // rpm, 1/4 rpm
	case 0x010D:
		return math.Round(50 + 20*w) // km/h
	case 0x0105:
		return 90 // °C
	case 0x0110:
		return math.Round((12+6*w)*100) / 100 // g/s, 1/100
	case 0x010F:
		return 25 // °C
	}
	return math.Round((40+30*w)*255/100) * 100 / 255 // percent, 100/255 steps
}
