package gps

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Epoch is the output of one receiver epoch.
type Epoch struct {
	// Sentences are complete NMEA sentences, "$" to checksum, without CR LF.
	Sentences []string
	// Fix holds the values the sentences carry, parsed back from their text.
	Fix Fix
}

// Bytes returns the sentences as sent on the line, each ended by CR LF.
func (e Epoch) Bytes() []byte {
	var b strings.Builder
	for _, s := range e.Sentences {
		b.WriteString(s)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// prns are the satellites GSA names, first Sats of them.
var prns = [...]int{2, 5, 7, 9, 13, 15, 18, 20, 24, 27, 29, 30}

// Encode formats f as the RMC, GGA and GSA sentences of one epoch with the
// given talker ("GP"). Times are truncated to hundredths of a second,
// latitude and longitude rounded to 1e-5 minute, speed to 1e-3 knot, course
// and altitude to 0.1, HDOP to 0.1 (GGA) and the DOPs to 0.01 (GSA).
func Encode(talker string, f Fix) Epoch {
	t := f.Time.UTC().Truncate(10 * time.Millisecond)
	hms := fmt.Sprintf("%02d%02d%02d.%02d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
	date := fmt.Sprintf("%02d%02d%02d", t.Day(), int(t.Month()), t.Year()%100)

	var rmc, gga, gsa []string
	if f.Valid {
		lat, ns := angle(f.Lat, 2, "N", "S")
		lon, ew := angle(f.Lon, 3, "E", "W")
		knots := fmt.Sprintf("%.3f", f.SpeedMps/Knot)
		course := fmt.Sprintf("%.1f", f.CourseDeg)
		if course == "360.0" {
			course = "0.0"
		}
		sats := min(f.Sats, 99)
		rmc = []string{"RMC", hms, "A", lat, ns, lon, ew, knots, course, date, "", "", "A"}
		gga = []string{"GGA", hms, lat, ns, lon, ew, strconv.Itoa(max(f.Quality, 1)), fmt.Sprintf("%02d", sats),
			fmt.Sprintf("%.1f", f.HDOP), fmt.Sprintf("%.1f", f.AltM), "M", "", "M", "", ""}
		gsa = []string{"GSA", "A", "3"}
		for i := range prns {
			if i < sats {
				gsa = append(gsa, fmt.Sprintf("%02d", prns[i]))
			} else {
				gsa = append(gsa, "")
			}
		}
		gsa = append(gsa, fmt.Sprintf("%.2f", f.PDOP), fmt.Sprintf("%.2f", f.HDOP), fmt.Sprintf("%.2f", f.VDOP))
	} else {
		rmc = []string{"RMC", hms, "V", "", "", "", "", "", "", date, "", "", "N"}
		gga = []string{"GGA", hms, "", "", "", "", "0", "00", "99.99", "", "M", "", "M", "", ""}
		gsa = []string{"GSA", "A", "1", "", "", "", "", "", "", "", "", "", "", "", "", "99.99", "99.99", "99.99"}
	}
	e := Epoch{Sentences: []string{sentence(talker, rmc), sentence(talker, gga), sentence(talker, gsa)}}
	e.Fix = parseBack(rmc, gga, gsa)
	return e
}

// sentence joins the fields after the talker and appends the checksum: the
// XOR of every byte between "$" and "*", in two upper-case hex digits.
func sentence(talker string, fields []string) string {
	body := talker + strings.Join(fields, ",")
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X", body, sum)
}

// angle formats |deg| as NMEA degrees and minutes, ddmm.mmmmm (dddmm.mmmmm for
// longitude), rounded to 1e-5 minute, and the hemisphere letter.
func angle(deg float64, degDigits int, pos, neg string) (string, string) {
	hemi := pos
	if deg < 0 {
		hemi = neg
		deg = -deg
	}
	units := int64(math.Round(deg * 60 * 1e5)) // 1e-5 minutes
	d := units / (60 * 1e5)
	m := units % (60 * 1e5)
	return fmt.Sprintf("%0*d%02d.%05d", degDigits, d, m/1e5, m%1e5), hemi
}

// parseBack reads the values out of the fields just formatted, as a receiver
// of the sentences would.
func parseBack(rmc, gga, gsa []string) Fix {
	var f Fix
	f.Time = parseTime(rmc[1], rmc[9])
	f.Valid = rmc[2] == "A" && gga[6] != "0"
	if !f.Valid {
		return f
	}
	f.Lat = parseAngle(rmc[3], 2, rmc[4] == "S")
	f.Lon = parseAngle(rmc[5], 3, rmc[6] == "W")
	f.SpeedMps = num(rmc[7]) * Knot
	f.CourseDeg = num(rmc[8])
	f.Quality = int(num(gga[6]))
	f.Sats = int(num(gga[7]))
	f.HDOP = num(gga[8])
	f.AltM = num(gga[9])
	f.PDOP = num(gsa[15])
	f.VDOP = num(gsa[17])
	return f
}

func parseTime(hms, date string) time.Time {
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return time.Date(2000+n(date[4:6]), time.Month(n(date[2:4])), n(date[0:2]),
		n(hms[0:2]), n(hms[2:4]), n(hms[4:6]), n(hms[7:9])*1e7, time.UTC)
}

func parseAngle(s string, degDigits int, negative bool) float64 {
	d := num(s[:degDigits])
	m := num(s[degDigits:])
	v := d + m/60
	if negative {
		v = -v
	}
	return v
}

// num parses a field this package formatted; they are always valid numbers.
func num(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("gps: parse back own field %q: %v", s, err))
	}
	return v
}
