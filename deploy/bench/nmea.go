package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Sentences returns what a GPS receiver sends for fix p (NMEA 0183): a GGA
// then an RMC sentence, each ending in CR LF, with the time to the
// hundredth of a second, coordinates to 1/100,000 of a minute, speed in
// knots to 0.01 and course to 0.01°. The agent closes the epoch, and emits
// the fix, when both have arrived.
func Sentences(p telemetry.Position) []byte {
	t := time.UnixMilli(p.UnixMs).UTC()
	hms := fmt.Sprintf("%02d%02d%02d.%02d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
	lat, ns := ddmm(p.Lat(), 2), "N"
	if p.LatE7 < 0 {
		ns = "S"
	}
	lon, ew := ddmm(p.Lon(), 3), "E"
	if p.LonE7 < 0 {
		ew = "W"
	}
	gga := fmt.Sprintf("GPGGA,%s,%s,%s,%s,%s,%d,%02d,%.1f,%.1f,M,%.1f,M,,",
		hms, lat, ns, lon, ew, p.Quality, p.SatsUsed, float64(p.HDOPc)/100, float64(p.AltCm)/100, float64(p.GeoidSepCm)/100)
	rmc := fmt.Sprintf("GPRMC,%s,A,%s,%s,%s,%s,%.2f,%.2f,%02d%02d%02d,,,A",
		hms, lat, ns, lon, ew, float64(p.SpeedMmps)/1000/knot, float64(p.CourseCdeg)/100, t.Day(), int(t.Month()), t.Year()%100)
	return fmt.Appendf(nil, "$%s*%02X\r\n$%s*%02X\r\n", gga, Checksum(gga), rmc, Checksum(rmc))
}

// ddmm formats |deg| as degrees (with width digits) and minutes to five
// decimals, as NMEA writes latitude (width 2) and longitude (3).
func ddmm(deg float64, width int) string {
	deg = math.Abs(deg)
	d := math.Floor(deg)
	m := (deg - d) * 60
	if math.Round(m*1e5) >= 60e5 { // rounds up to the next degree
		d, m = d+1, 0
	}
	return fmt.Sprintf("%0*d%08.5f", width, int(d), m)
}

// Checksum returns the NMEA checksum of a sentence's body: the XOR of every
// byte between '$' and '*'.
func Checksum(body string) byte {
	var c byte
	for i := range len(body) {
		c ^= body[i]
	}
	return c
}
