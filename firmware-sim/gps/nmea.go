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
	// Fields that no sentence of the set carries are zero.
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

// prns are the satellites a fix uses, first Sats of them, when Fix.InView
// does not name them.
var prns = [...]int{2, 5, 7, 9, 13, 15, 18, 20, 24, 27, 29, 30}

// Encode formats f as the sentences of format: times are truncated to
// hundredths of a second; latitude and longitude rounded to 1e-5 minute;
// speed to 1e-3 knot (and km/h in VTG); course, altitude, HDOP (GGA, GNS)
// and the GST errors to 0.1; the DOPs in GSA to 0.01.
func Encode(f Fix, format Format) Epoch {
	talker := format.talker()
	w := wire(f)
	var e Epoch
	fields := map[string][]string{}
	for _, s := range format.SentenceSet() {
		var fs [][]string
		t := talker
		switch s {
		case "RMC":
			fs = [][]string{{"RMC", w.hms, w.status, w.lat, w.ns, w.lon, w.ew, w.knots, w.course, w.date, "", "", w.mode}}
		case "GGA":
			fs = [][]string{{"GGA", w.hms, w.lat, w.ns, w.lon, w.ew, w.quality, w.sats, w.hdop1, w.alt, "M", "", "M", "", ""}}
		case "GNS":
			mode := w.mode
			if talker == "GN" {
				mode += "N" // GPS used, GLONASS not
			}
			fs = [][]string{{"GNS", w.hms, w.lat, w.ns, w.lon, w.ew, mode, w.sats, w.hdop1, w.alt, "", "", ""}}
		case "GLL":
			fs = [][]string{{"GLL", w.lat, w.ns, w.lon, w.ew, w.hms, w.status, w.mode}}
		case "GSA":
			fs = [][]string{gsa(f)}
		case "GSV":
			fs = gsv(f)
			if talker == "GN" {
				t = "GP" // satellites in view are reported per constellation
			}
		case "VTG":
			fs = [][]string{{"VTG", w.course, "T", "", "M", w.knots, "N", w.kmh, "K", w.mode}}
		case "ZDA":
			fs = [][]string{{"ZDA", w.hms, w.dd, w.mm, w.yyyy, "00", "00"}}
		case "GST":
			fs = [][]string{{"GST", w.hms, w.rms, w.major, w.minor, w.orient, w.errLat, w.errLon, w.errAlt}}
		}
		fields[s] = fs[0]
		for _, f := range fs {
			e.Sentences = append(e.Sentences, sentence(t, f))
		}
	}
	e.Fix = parseBack(fields)
	return e
}

// wireFields are the fields of one fix as text, shared by the sentences.
type wireFields struct {
	hms, date, dd, mm, yyyy              string
	status, mode, quality                string
	lat, ns, lon, ew                     string
	knots, kmh, course, alt, sats, hdop1 string
	rms, major, minor, orient            string
	errLat, errLon, errAlt               string
}

func wire(f Fix) wireFields {
	var w wireFields
	if !f.NoTime {
		t := f.Time.UTC().Truncate(10 * time.Millisecond)
		w.hms = fmt.Sprintf("%02d%02d%02d.%02d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
		w.date = fmt.Sprintf("%02d%02d%02d", t.Day(), int(t.Month()), t.Year()%100)
		w.dd, w.mm, w.yyyy = fmt.Sprintf("%02d", t.Day()), fmt.Sprintf("%02d", int(t.Month())), fmt.Sprintf("%04d", t.Year())
	}
	if !f.Valid {
		w.status, w.mode, w.quality, w.sats, w.hdop1 = "V", "N", "0", "00", "99.99"
		return w
	}
	w.status, w.mode = "A", "A"
	w.quality = strconv.Itoa(max(f.Quality, 1))
	w.lat, w.ns = angle(f.Lat, 2, "N", "S")
	w.lon, w.ew = angle(f.Lon, 3, "E", "W")
	knots := math.Round(f.SpeedMps/Knot*1000) / 1000
	w.knots = fmt.Sprintf("%.3f", knots)
	w.kmh = fmt.Sprintf("%.3f", knots*1.852)
	w.course = fmt.Sprintf("%.1f", f.CourseDeg)
	if w.course == "360.0" {
		w.course = "0.0"
	}
	w.alt = fmt.Sprintf("%.1f", f.AltM)
	w.sats = fmt.Sprintf("%02d", min(f.Sats, 99))
	w.hdop1 = fmt.Sprintf("%.1f", f.HDOP)
	w.rms = fmt.Sprintf("%.1f", math.Hypot(f.ErrLatM, f.ErrLonM))
	w.major = fmt.Sprintf("%.1f", max(f.ErrLatM, f.ErrLonM))
	w.minor = fmt.Sprintf("%.1f", min(f.ErrLatM, f.ErrLonM))
	w.orient = "0.0"
	w.errLat, w.errLon, w.errAlt = fmt.Sprintf("%.1f", f.ErrLatM), fmt.Sprintf("%.1f", f.ErrLonM), fmt.Sprintf("%.1f", f.ErrAltM)
	return w
}

// used returns the PRNs of the satellites used in the fix.
func used(f Fix) []int {
	var ids []int
	for i := range min(f.Sats, 12) {
		if i < len(f.InView) {
			ids = append(ids, f.InView[i].PRN)
		} else {
			ids = append(ids, prns[i])
		}
	}
	return ids
}

func gsa(f Fix) []string {
	if !f.Valid {
		return []string{"GSA", "A", "1", "", "", "", "", "", "", "", "", "", "", "", "", "99.99", "99.99", "99.99"}
	}
	fs := []string{"GSA", "A", "3"}
	ids := used(f)
	for i := range 12 {
		if i < len(ids) {
			fs = append(fs, fmt.Sprintf("%02d", ids[i]))
		} else {
			fs = append(fs, "")
		}
	}
	return append(fs, fmt.Sprintf("%.2f", f.PDOP), fmt.Sprintf("%.2f", f.HDOP), fmt.Sprintf("%.2f", f.VDOP))
}

// gsv returns the GSV sentences: four satellites each.
func gsv(f Fix) [][]string {
	n := len(f.InView)
	if n == 0 {
		return [][]string{{"GSV", "1", "1", "00"}}
	}
	total := (n + 3) / 4
	var out [][]string
	for m := range total {
		fs := []string{"GSV", strconv.Itoa(total), strconv.Itoa(m + 1), fmt.Sprintf("%02d", n)}
		for _, s := range f.InView[m*4 : min(n, m*4+4)] {
			snr := ""
			if s.SNR > 0 {
				snr = fmt.Sprintf("%02d", s.SNR)
			}
			fs = append(fs, fmt.Sprintf("%02d", s.PRN), fmt.Sprintf("%02d", s.Elevation), fmt.Sprintf("%03d", s.Azimuth), snr)
		}
		out = append(out, fs)
	}
	return out
}

// sentence joins the fields after the talker and appends the checksum: the
// XOR of every byte between "$" and "*", in two upper-case hex digits.
func sentence(talker string, fields []string) string {
	body := talker + strings.Join(fields, ",")
	return fmt.Sprintf("$%s*%02X", body, checksum(body))
}

func checksum(body string) byte {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return sum
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

// parseBack reads the values out of the fields just formatted (the first
// sentence of each type), as a receiver of the sentences would: each value
// from the first sentence in epoch order that carries it.
func parseBack(fs map[string][]string) Fix {
	var f Fix
	// first returns field i of the first of the sentences (name, index
	// pairs) present and not empty.
	first := func(at ...any) string {
		for k := 0; k < len(at); k += 2 {
			if s, ok := fs[at[k].(string)]; ok && at[k+1].(int) < len(s) && s[at[k+1].(int)] != "" {
				return s[at[k+1].(int)]
			}
		}
		return ""
	}
	hms := first("RMC", 1, "GGA", 1, "GNS", 1, "GLL", 5, "ZDA", 1, "GST", 1)
	if date := first("RMC", 9); date != "" && hms != "" {
		century := "20" // two-digit years 80-99 are 19xx, 00-79 20xx
		if date[4] >= '8' {
			century = "19"
		}
		f.Time = parseTime(hms, date[0:2], date[2:4], century+date[4:6])
	} else if z := fs["ZDA"]; z != nil && hms != "" && z[2] != "" {
		f.Time = parseTime(hms, z[2], z[3], z[4])
	}
	f.NoTime = hms == ""
	f.Valid = first("RMC", 2, "GLL", 6) != "V" && first("GGA", 6) != "0" && !strings.HasPrefix(first("GNS", 6), "N")
	if !f.Valid {
		return f
	}
	lat := first("RMC", 3, "GGA", 2, "GNS", 2, "GLL", 1)
	lon := first("RMC", 5, "GGA", 4, "GNS", 4, "GLL", 3)
	f.Lat = parseAngle(lat, 2, first("RMC", 4, "GGA", 3, "GNS", 3, "GLL", 2) == "S")
	f.Lon = parseAngle(lon, 3, first("RMC", 6, "GGA", 5, "GNS", 5, "GLL", 4) == "W")
	f.SpeedMps = num(first("RMC", 7, "VTG", 5)) * Knot
	f.CourseDeg = num(first("RMC", 8, "VTG", 1))
	f.Quality = int(num(first("GGA", 6)))
	if f.Quality == 0 && fs["GNS"] != nil {
		f.Quality = 1
	}
	f.Sats = int(num(first("GGA", 7, "GNS", 7)))
	f.HDOP = num(first("GGA", 8, "GNS", 8, "GSA", 16))
	f.AltM = num(first("GGA", 9, "GNS", 9))
	f.PDOP = num(first("GSA", 15))
	f.VDOP = num(first("GSA", 17))
	f.ErrLatM, f.ErrLonM, f.ErrAltM = num(first("GST", 6)), num(first("GST", 7)), num(first("GST", 8))
	return f
}

func parseTime(hms, dd, mm, yyyy string) time.Time {
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return time.Date(n(yyyy), time.Month(n(mm)), n(dd), n(hms[0:2]), n(hms[2:4]), n(hms[4:6]), n(hms[7:9])*1e7, time.UTC)
}

func parseAngle(s string, degDigits int, negative bool) float64 {
	if s == "" {
		return 0
	}
	v := num(s[:degDigits]) + num(s[degDigits:])/60
	if negative {
		v = -v
	}
	return v
}

// num parses a field this package formatted; they are always valid numbers
// (or empty, read as 0).
func num(s string) float64 {
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("gps: parse back own field %q: %v", s, err))
	}
	return v
}
