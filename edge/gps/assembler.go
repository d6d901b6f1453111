package gps

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// knotMps is one knot in metres per second (1852 m / 3600 s), exactly.
const knotMps = 1852.0 / 3600.0

// Assembler checks, parses and merges sentences into fixes, one epoch at a
// time. An epoch is the set of sentences with the same UTC time; it closes
// when both its RMC and GGA have arrived, when a sentence of another time
// arrives, or at Flush. An epoch needs an RMC (it carries the date); a GGA
// adds quality, satellites, HDOP, altitude and geoid separation.
//
// Counters (under "gps."): sentences, bad_checksum, parse_errors, ignored
// (sentence types not used yet), duplicate_sentences, no_rmc, no_date,
// stale_epochs (time not after the last fix), fixes, no_fix.
// An Assembler is not safe for concurrent use. The zero value is ready.
type Assembler struct {
	Counters *edge.Counters

	parser nmea.SentenceParser
	ep     epoch
	lastMs int64 // time of the last fix emitted; 0 before the first
}

type epoch struct {
	open bool
	time nmea.Time
	rmc  *nmea.RMC
	gga  *nmea.GGA
}

// Epoch is what closing an epoch yields: a fix, or the receiver saying it has
// none.
type Epoch struct {
	Fix      bool               // Position is meaningful
	Position telemetry.Position // Seq is left 0
}

// Feed takes one sentence (as LineReader returns it) and returns the epoch it
// closed, if any. Sentences with a bad or missing checksum, that do not parse,
// or of types not used are counted and dropped.
func (a *Assembler) Feed(line string) (Epoch, bool) {
	a.inc("sentences")
	if !checksumOK(line) {
		a.inc("bad_checksum")
		return Epoch{}, false
	}
	s, err := a.parser.Parse(line)
	if err != nil {
		var ns *nmea.NotSupportedError
		if errors.As(err, &ns) {
			a.inc("ignored")
		} else {
			a.inc("parse_errors")
		}
		return Epoch{}, false
	}
	var t nmea.Time
	switch m := s.(type) {
	case nmea.RMC:
		t = m.Time
	case nmea.GGA:
		t = m.Time
	default:
		a.inc("ignored")
		return Epoch{}, false
	}
	if !t.Valid {
		a.inc("parse_errors")
		return Epoch{}, false
	}
	var out Epoch
	var closed bool
	if a.ep.open && a.ep.time != t {
		out, closed = a.close()
	}
	if !a.ep.open {
		a.ep = epoch{open: true, time: t}
	}
	switch m := s.(type) {
	case nmea.RMC:
		if a.ep.rmc != nil {
			a.inc("duplicate_sentences")
			return out, closed
		}
		a.ep.rmc = &m
	case nmea.GGA:
		if a.ep.gga != nil {
			a.inc("duplicate_sentences")
			return out, closed
		}
		a.ep.gga = &m
	}
	if a.ep.rmc != nil && a.ep.gga != nil {
		return a.close()
	}
	return out, closed
}

// Flush closes the epoch in progress (at the end of a stream) and returns it,
// if it yields anything.
func (a *Assembler) Flush() (Epoch, bool) {
	if !a.ep.open {
		return Epoch{}, false
	}
	return a.close()
}

// Reset forgets the epoch in progress, for a reopened device. The time of the
// last fix is kept, so a replayed epoch is still dropped as stale.
func (a *Assembler) Reset() { a.ep = epoch{} }

func (a *Assembler) close() (Epoch, bool) {
	ep := a.ep
	a.ep = epoch{}
	rmc, gga := ep.rmc, ep.gga
	noFix := (rmc != nil && (rmc.Validity != nmea.ValidRMC || rmc.FFAMode == nmea.FAAModeDataNotValid)) ||
		(gga != nil && gga.FixQuality == nmea.Invalid)
	if noFix {
		a.inc("no_fix")
		return Epoch{}, true
	}
	if rmc == nil {
		a.inc("no_rmc")
		return Epoch{}, false
	}
	if !rmc.Date.Valid {
		a.inc("no_date")
		return Epoch{}, false
	}
	ms := epochTime(rmc.Date, rmc.Time).UnixMilli()
	if ms <= a.lastMs {
		a.inc("stale_epochs")
		return Epoch{}, false
	}
	// !(x <= max) also catches NaN, which strconv accepts and E7 cannot convert.
	if !(math.Abs(rmc.Latitude) <= 90) || !(math.Abs(rmc.Longitude) <= 180) || field(rmc.Fields, 2) == "" || field(rmc.Fields, 4) == "" {
		a.inc("parse_errors")
		return Epoch{}, false
	}
	p := telemetry.Position{
		UnixMs: ms,
		LatE7:  telemetry.E7(rmc.Latitude),
		LonE7:  telemetry.E7(rmc.Longitude),
	}
	ok := true
	// set stores v × scale into *dst and marks it known, if the receiver sent
	// the field; a value that does not fit an int32 spoils the epoch.
	set := func(fs []string, i int, v, scale float64, has telemetry.Field, dst *int32) {
		if field(fs, i) == "" {
			return
		}
		if !(math.Abs(v*scale) < math.MaxInt32) {
			ok = false
			return
		}
		p.Has |= has
		*dst = telemetry.Scaled(v, scale)
	}
	set(rmc.Fields, 6, rmc.Speed*knotMps, 1000, telemetry.HasSpeed, &p.SpeedMmps)
	set(rmc.Fields, 7, math.Mod(rmc.Course, 360), 100, telemetry.HasCourse, &p.CourseCdeg)
	if p.CourseCdeg < 0 || p.CourseCdeg >= 36000 {
		ok = false
	}
	if gga != nil {
		if q, err := strconv.Atoi(gga.FixQuality); err == nil {
			p.Has |= telemetry.HasQuality
			p.Quality = int32(q)
		}
		set(gga.Fields, 6, float64(gga.NumSatellites), 1, telemetry.HasSatsUsed, &p.SatsUsed)
		set(gga.Fields, 7, gga.HDOP, 100, telemetry.HasHDOP, &p.HDOPc)
		set(gga.Fields, 8, gga.Altitude, 100, telemetry.HasAlt, &p.AltCm)
		set(gga.Fields, 10, gga.Separation, 100, telemetry.HasGeoidSep, &p.GeoidSepCm)
	}
	if !ok {
		a.inc("parse_errors")
		return Epoch{}, false
	}
	a.lastMs = ms
	a.inc("fixes")
	return Epoch{Fix: true, Position: p}, true
}

// field returns fs[i], or "" past the end.
func field(fs []string, i int) string {
	if i < len(fs) {
		return fs[i]
	}
	return ""
}

// epochTime combines an NMEA date and time; two-digit years 80-99 are 19xx,
// 00-79 are 20xx.
func epochTime(d nmea.Date, t nmea.Time) time.Time {
	year := 2000 + d.YY
	if d.YY >= 80 {
		year = 1900 + d.YY
	}
	return time.Date(year, time.Month(d.MM), d.DD, t.Hour, t.Minute, t.Second, t.Millisecond*int(time.Millisecond), time.UTC)
}

// checksumOK reports whether line ends in "*hh" and hh (hex, either case) is
// the XOR of the bytes between the leading '$' or '!' and the '*'.
func checksumOK(line string) bool {
	i := strings.LastIndexByte(line, '*')
	if i < 1 || len(line)-i != 3 {
		return false
	}
	want, err := strconv.ParseUint(line[i+1:], 16, 8)
	if err != nil {
		return false
	}
	var sum byte
	for j := 1; j < i; j++ {
		sum ^= line[j]
	}
	return sum == byte(want)
}

func (a *Assembler) inc(name string) {
	if a.Counters != nil {
		a.Counters.Inc("gps." + name)
	}
}
