package gps

import (
	"slices"
	"strconv"
	"strings"

	nmea "github.com/adrianmo/go-nmea"
)

// The lenient fallback. go-nmea refuses a whole sentence when any field is
// malformed, and receivers write fields the standard does not expect: a
// magnetic variation without its E/W (the FAA mode then sits in the
// direction's place), a GGA quality of 7 or 8, an NMEA 4.11 GSV signal id
// in hex (B for Galileo's E5a/E5b...), a number with a unit glued to it.
// When go-nmea refuses an RMC, GGA, GNS, GLL, VTG, GSA, GSV, ZDA or GST, the
// Assembler parses it again here, one field at a time with go-nmea's own
// field parsers: a field the fix cannot do without (the time, the status,
// the position, a GGA's quality) that is malformed still refuses the
// sentence (gps.parse_errors); any other malformed field is left unknown
// and counted as gps.odd_fields.<type>_<field>, and the sentence is counted
// as gps.lenient.

// faaModes are the FAA mode indicator letters (NMEA 2.3+).
const faaModes = "ADEFMNPRS"

// lenientParsers are the fallbacks, by sentence type.
var lenientParsers = map[string]func(*fields) nmea.Sentence{
	nmea.TypeRMC: lenientRMC,
	nmea.TypeGGA: lenientGGA,
	nmea.TypeGNS: lenientGNS,
	nmea.TypeGLL: lenientGLL,
	nmea.TypeVTG: lenientVTG,
	nmea.TypeGSA: lenientGSA,
	nmea.TypeGSV: lenientGSV,
	nmea.TypeZDA: lenientZDA,
	TypeGST:      lenientGST,
}

// fields parses one field at a time. A field that fails is cleared in the
// sentence's copy of its fields, so that the merge reads it as not sent.
type fields struct {
	bs     nmea.BaseSentence
	odd    []string // "<type>_<field>" of each malformed optional field
	failed bool     // a required field was malformed
}

func newFields(bs nmea.BaseSentence) *fields {
	bs.Fields = slices.Clone(bs.Fields)
	return &fields{bs: bs}
}

// get runs parse on a fresh go-nmea parser over the sentence. Fields past
// the end of the sentence are empty, not errors. A failure marks the
// sentence failed when required, else clears the fields idx and counts name.
func (f *fields) get(name string, required bool, idx []int, parse func(p *nmea.Parser)) {
	for _, i := range idx {
		if i >= len(f.bs.Fields) {
			grow := make([]string, i+1-len(f.bs.Fields))
			f.bs.Fields = append(f.bs.Fields, grow...)
		}
	}
	p := nmea.NewParser(f.bs)
	parse(p)
	if p.Err() == nil {
		return
	}
	if required {
		f.failed = true
		return
	}
	f.odd = append(f.odd, strings.ToLower(f.bs.Type)+"_"+name)
	for _, i := range idx {
		f.bs.Fields[i] = ""
	}
}

// text returns field i, or "" past the end.
func (f *fields) text(i int) string {
	if i < len(f.bs.Fields) {
		return f.bs.Fields[i]
	}
	return ""
}

// time, latLong, float, int and date parse one kind of field.
func (f *fields) time(name string, required bool, i int, dst *nmea.Time) {
	f.get(name, required, []int{i}, func(p *nmea.Parser) { *dst = p.Time(i, name) })
}

// fix reads the time and the position, which no fix does without.
func (f *fields) fix(timeAt, latAt int, t *nmea.Time, lat, lon *float64) {
	f.time("time", true, timeAt, t)
	f.latLong("latitude", true, latAt, lat)
	f.latLong("longitude", true, latAt+2, lon)
}

func (f *fields) latLong(name string, required bool, i int, dst *float64) {
	f.get(name, required, []int{i, i + 1}, func(p *nmea.Parser) {
		if p.Fields[i] == "" && p.Fields[i+1] == "" {
			return // not sent
		}
		*dst = p.LatLong(i, i+1, name)
	})
}

func (f *fields) float(name string, i int, dst *float64) {
	f.get(name, false, []int{i}, func(p *nmea.Parser) { *dst = p.Float64(i, name) })
}

func (f *fields) int(name string, i int, dst *int64) {
	f.get(name, false, []int{i}, func(p *nmea.Parser) { *dst = p.Int64(i, name) })
}

func (f *fields) enum(name string, required bool, i int, dst *string, options ...string) {
	f.get(name, required, []int{i}, func(p *nmea.Parser) {
		if p.Fields[i] != "" {
			*dst = p.EnumString(i, name, options...)
		}
	})
}

// faa reads an FAA mode letter; anything else is odd.
func (f *fields) faa(i int, dst *string) {
	f.get("faa_mode", false, []int{i}, func(p *nmea.Parser) {
		if s := p.Fields[i]; s != "" {
			if len(s) != 1 || !strings.Contains(faaModes, s) {
				p.SetErr("faa mode", s)
				return
			}
			*dst = s
		}
	})
}

func lenientRMC(f *fields) nmea.Sentence {
	m := nmea.RMC{}
	f.fix(0, 2, &m.Time, &m.Latitude, &m.Longitude)
	f.enum("status", true, 1, &m.Validity, nmea.ValidRMC, nmea.InvalidRMC)
	f.float("speed", 6, &m.Speed)
	f.float("course", 7, &m.Course)
	f.get("date", false, []int{8}, func(p *nmea.Parser) { m.Date = p.Date(8, "date") })
	f.float("variation", 9, &m.Variation)
	switch dir := f.text(10); {
	case dir == "" || dir == nmea.East || dir == nmea.West:
		f.faa(11, &m.FFAMode)
	case len(f.bs.Fields) == 11 && len(dir) == 1 && strings.Contains(faaModes, dir):
		// The variation's E/W left out: the FAA mode moved into its place.
		f.odd = append(f.odd, "rmc_variation_direction")
		f.bs.Fields[10] = ""
		f.bs.Fields = append(f.bs.Fields, dir)
		m.FFAMode = dir
	default:
		f.odd = append(f.odd, "rmc_variation_direction")
		f.bs.Fields[10] = ""
		f.faa(11, &m.FFAMode)
	}
	m.BaseSentence = f.bs
	return m
}

func lenientGGA(f *fields) nmea.Sentence {
	m := nmea.GGA{}
	f.fix(0, 1, &m.Time, &m.Latitude, &m.Longitude)
	// Quality 0-8: 7 (manual input) and 8 (simulator) are not in go-nmea's
	// list; the merge decides what they mean.
	f.get("quality", true, []int{5}, func(p *nmea.Parser) {
		if q := p.Fields[5]; q != "" {
			m.FixQuality = p.EnumString(5, "fix quality", "0", "1", "2", "3", "4", "5", "6", "7", "8")
		}
	})
	f.int("satellites", 6, &m.NumSatellites)
	f.float("hdop", 7, &m.HDOP)
	f.float("altitude", 8, &m.Altitude)
	f.float("separation", 10, &m.Separation)
	m.BaseSentence = f.bs
	return m
}

func lenientGNS(f *fields) nmea.Sentence {
	m := nmea.GNS{}
	f.fix(0, 1, &m.Time, &m.Latitude, &m.Longitude)
	f.get("mode", true, []int{5}, func(p *nmea.Parser) {
		s := p.Fields[5]
		for _, c := range s {
			if !strings.ContainsRune(faaModes, c) {
				p.SetErr("mode", s)
				return
			}
		}
		m.Mode = strings.Split(s, "")
	})
	f.int("satellites", 6, &m.SVs)
	f.float("hdop", 7, &m.HDOP)
	f.float("altitude", 8, &m.Altitude)
	f.float("separation", 9, &m.Separation)
	m.BaseSentence = f.bs
	return m
}

func lenientGLL(f *fields) nmea.Sentence {
	m := nmea.GLL{}
	f.fix(4, 0, &m.Time, &m.Latitude, &m.Longitude)
	f.enum("status", true, 5, &m.Validity, nmea.ValidGLL, nmea.InvalidGLL)
	f.faa(6, &m.FFAMode)
	m.BaseSentence = f.bs
	return m
}

func lenientVTG(f *fields) nmea.Sentence {
	m := nmea.VTG{}
	f.float("course", 0, &m.TrueTrack)
	f.float("magnetic_course", 2, &m.MagneticTrack)
	f.float("speed_knots", 4, &m.GroundSpeedKnots)
	f.float("speed_kph", 6, &m.GroundSpeedKPH)
	f.faa(8, &m.FFAMode)
	m.BaseSentence = f.bs
	return m
}

func lenientGSA(f *fields) nmea.Sentence {
	m := nmea.GSA{}
	f.get("fix_type", true, []int{1}, func(p *nmea.Parser) {
		if p.Fields[1] != "" {
			m.FixType = p.EnumString(1, "fix type", nmea.FixNone, nmea.Fix2D, nmea.Fix3D)
		}
	})
	for i := 2; i < 14 && i < len(f.bs.Fields); i++ {
		if s := f.bs.Fields[i]; s != "" {
			if _, err := strconv.ParseUint(s, 10, 16); err != nil {
				f.odd = append(f.odd, "gsa_satellite")
				f.bs.Fields[i] = ""
				continue
			}
			m.SV = append(m.SV, s)
		}
	}
	f.float("pdop", 14, &m.PDOP)
	f.float("hdop", 15, &m.HDOP)
	f.float("vdop", 16, &m.VDOP)
	m.BaseSentence = f.bs
	return m
}

func lenientGSV(f *fields) nmea.Sentence {
	m := nmea.GSV{}
	f.get("message", true, []int{0, 1}, func(p *nmea.Parser) {
		m.TotalMessages = p.Int64(0, "total")
		m.MessageNumber = p.Int64(1, "number")
	})
	f.int("in_view", 2, &m.NumberSVsInView)
	// Four fields per satellite after the first three; NMEA 4.11 adds the
	// signal id (one hex digit) last.
	n := len(f.bs.Fields)
	if (n-3)%4 == 1 {
		sig := f.bs.Fields[n-1]
		if v, err := strconv.ParseUint(sig, 16, 8); err == nil && len(sig) == 1 {
			m.SystemID = int64(v)
		} else if sig != "" {
			f.odd = append(f.odd, "gsv_signal_id")
			f.bs.Fields[n-1] = ""
		}
	}
	m.BaseSentence = f.bs
	return m
}

func lenientZDA(f *fields) nmea.Sentence {
	m := nmea.ZDA{}
	f.time("time", true, 0, &m.Time)
	f.get("date", true, []int{1, 2, 3}, func(p *nmea.Parser) {
		m.Day, m.Month, m.Year = p.Int64(1, "day"), p.Int64(2, "month"), p.Int64(3, "year")
	})
	f.int("zone_hours", 4, &m.OffsetHours)
	f.int("zone_minutes", 5, &m.OffsetMinutes)
	m.BaseSentence = f.bs
	return m
}

func lenientGST(f *fields) nmea.Sentence {
	m := GST{}
	f.time("time", true, 0, &m.Time)
	for i, dst := range []*nmea.Float64{&m.RMS, &m.SemiMajor, &m.SemiMinor, &m.Orientation, &m.LatErr, &m.LonErr, &m.AltErr} {
		name := [...]string{"rms", "semi_major", "semi_minor", "orientation", "lat_error", "lon_error", "alt_error"}[i]
		f.get(name, false, []int{i + 1}, func(p *nmea.Parser) { *dst = p.NullFloat64(i+1, name) })
	}
	m.BaseSentence = f.bs
	return m
}
