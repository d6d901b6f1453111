package gps

import (
	"strings"

	nmea "github.com/adrianmo/go-nmea"
)

// knotMps is one knot in metres per second (1852 m / 3600 s), exactly.
const knotMps = 1852.0 / 3600.0

// maxKeys bounds the sentences an epoch remembers for cycle detection.
const maxKeys = 64

// key names a sentence within an epoch: its address (talker and type, e.g.
// "GNGSA") and sub, which tells apart the sentences of one address in one
// epoch: the occurrence number for most, the signal and part for GSV.
type key struct {
	addr string
	sub  int
}

// opt is a value some sentence of the epoch gave, with the priority of the
// sentence that gave it (lower wins; on a tie the first one stays).
type opt struct {
	v    float64
	prio int8
	ok   bool
}

func (o *opt) set(v float64, prio int8) {
	if !o.ok || prio < o.prio {
		*o = opt{v: v, prio: prio, ok: true}
	}
}

// field sets v if field i of fs was sent: go-nmea reads an empty field as 0,
// so the text tells a zero from nothing.
func (o *opt) field(fs []string, i int, v float64, prio int8) {
	if has(fs, i) {
		o.set(v, prio)
	}
}

// inView is the satellites in view one GSV series reported.
type inView struct {
	talker string
	signal int64
	n      int64
}

// epoch gathers what the sentences of one epoch said. It is open once a
// sentence with a time has arrived; sentences without one (GSA, GSV, VTG)
// that come first wait in it for the epoch they precede.
type epoch struct {
	open bool
	tod  nmea.Time
	keys []key

	fix   bool // a sentence said there is a fix
	noFix bool // a sentence said there is none

	lat, lon  float64
	posDigits int // decimals of the latitude text the position came from
	posOK     bool

	date     [3]int // year, month, day
	dateFull bool   // the year has four digits (ZDA)
	dateOK   bool

	speed, course, alt, sep, quality, satsUsed opt
	hdop, vdop, pdop, errLat, errLon, errAlt   opt

	gsaMode int   // highest GSA fix type; 0 if none
	gsaSats int64 // satellites listed by the GSAs
	views   [16]inView
	nViews  int
}

// has reports whether field i was sent and not empty.
func has(fs []string, i int) bool { return i < len(fs) && fs[i] != "" }

// position offers a latitude and longitude; the one written with the most
// decimals wins, so a 5-decimal GGA is not replaced by a 4-decimal GLL.
func (e *epoch) position(fs []string, latField, lonField int, lat, lon float64) {
	if !has(fs, latField) || !has(fs, lonField) {
		return
	}
	digits := 0
	if i := strings.IndexByte(fs[latField], '.'); i >= 0 {
		digits = len(fs[latField]) - i - 1
	}
	if !e.posOK || digits > e.posDigits {
		e.lat, e.lon, e.posDigits, e.posOK = lat, lon, digits, true
	}
}

// faaMode applies an FAA mode indicator (NMEA 2.3+; RMC, GLL, GNS): N says
// no fix; M (manual input) and S (simulator) are not fixes from the sky and
// count as none either; the others are fixes whose kind maps to the GGA
// quality scale.
func (e *epoch) faaMode(mode string, prio int8) {
	switch mode {
	case "":
	case nmea.FAAModeDataNotValid, nmea.FAAModeManualInput, nmea.FAAModeSimulated:
		e.noFix = true
	default:
		if q, ok := faaQuality[mode]; ok {
			e.quality.set(q, prio)
		}
	}
}

// faaQuality maps FAA mode indicators to GGA fix quality.
var faaQuality = map[string]float64{
	nmea.FAAModeAutonomous:   1,
	nmea.FAAModeDifferential: 2,
	nmea.FAAModePrecise:      3,
	nmea.FAAModeRTKInteger:   4,
	nmea.FAAModeRTKFloat:     5,
	nmea.FAAModeEstimated:    6,
}

func (e *epoch) rmc(m nmea.RMC) {
	switch m.Validity {
	case nmea.ValidRMC:
		e.fix = true
	case nmea.InvalidRMC:
		e.noFix = true
	}
	e.faaMode(m.FFAMode, 3)
	e.position(m.Fields, 2, 4, m.Latitude, m.Longitude)
	e.speed.field(m.Fields, 6, m.Speed*knotMps, 0)
	e.course.field(m.Fields, 7, m.Course, 0)
	if m.Date.Valid && !e.dateFull {
		year := 2000 + m.Date.YY // two-digit years: 80-99 are 19xx, 00-79 20xx
		if m.Date.YY >= 80 {
			year = 1900 + m.Date.YY
		}
		e.date, e.dateOK = [3]int{year, m.Date.MM, m.Date.DD}, true
	}
}

func (e *epoch) gga(m nmea.GGA) {
	switch m.FixQuality {
	case "":
	case nmea.Invalid:
		e.noFix = true
	default:
		e.fix = true
		e.quality.set(float64(m.FixQuality[0]-'0'), 0)
	}
	e.position(m.Fields, 1, 3, m.Latitude, m.Longitude)
	e.satsUsed.field(m.Fields, 6, float64(m.NumSatellites), 1)
	e.hdop.field(m.Fields, 7, m.HDOP, 0)
	e.alt.field(m.Fields, 8, m.Altitude, 0)
	e.sep.field(m.Fields, 10, m.Separation, 0)
}

// gnsRank orders GNS mode characters from the best fix to the worst.
const gnsRank = "RFPDAE"

func (e *epoch) gns(m nmea.GNS) {
	// One mode character per constellation; the best one is the fix's.
	best := len(gnsRank)
	sky := false
	for _, c := range m.Mode {
		if i := strings.Index(gnsRank, c); i >= 0 {
			best, sky = min(best, i), true
		}
	}
	switch {
	case len(m.Mode) == 0:
	case sky:
		e.fix = true
		e.quality.set(faaQuality[gnsRank[best:best+1]], 1)
	default: // all N, or only manual / simulator
		e.noFix = true
	}
	e.position(m.Fields, 1, 3, m.Latitude, m.Longitude)
	e.satsUsed.field(m.Fields, 6, float64(m.SVs), 0)
	e.hdop.field(m.Fields, 7, m.HDOP, 1)
	e.alt.field(m.Fields, 8, m.Altitude, 1)
	e.sep.field(m.Fields, 9, m.Separation, 1)
}

func (e *epoch) gll(m nmea.GLL) {
	switch m.Validity {
	case nmea.ValidGLL:
		e.fix = true
	case nmea.InvalidGLL:
		e.noFix = true
	}
	e.faaMode(m.FFAMode, 4)
	e.position(m.Fields, 0, 2, m.Latitude, m.Longitude)
}

// vtg gives speed and course; its mode N only voids its own values.
func (e *epoch) vtg(m nmea.VTG) {
	if m.FFAMode == nmea.FAAModeDataNotValid {
		return
	}
	e.course.field(m.Fields, 0, m.TrueTrack, 1)
	switch {
	case has(m.Fields, 4):
		e.speed.set(m.GroundSpeedKnots*knotMps, 1)
	case has(m.Fields, 6):
		e.speed.set(m.GroundSpeedKPH/3.6, 2)
	}
}

func (e *epoch) gsa(m nmea.GSA) {
	if has(m.Fields, 1) {
		e.gsaMode = max(e.gsaMode, int(m.FixType[0]-'0'))
	}
	e.gsaSats += int64(len(m.SV))
	e.pdop.field(m.Fields, 14, m.PDOP, 0)
	e.hdop.field(m.Fields, 15, m.HDOP, 2)
	e.vdop.field(m.Fields, 16, m.VDOP, 0)
}

// gsv records the satellites in view of one constellation (talker) and,
// NMEA 4.11, one signal: the same satellite is listed once per signal.
func (e *epoch) gsv(m nmea.GSV) {
	if !has(m.Fields, 2) {
		return
	}
	for i := range e.nViews {
		v := &e.views[i]
		if v.talker == m.Talker && v.signal == m.SystemID {
			v.n = m.NumberSVsInView
			return
		}
	}
	if e.nViews < len(e.views) {
		e.views[e.nViews] = inView{talker: m.Talker, signal: m.SystemID, n: m.NumberSVsInView}
		e.nViews++
	}
}

// satsInView sums, over constellations, the largest count any of its signals
// reported; ok is false when no GSV said anything.
func (e *epoch) satsInView() (n int64, ok bool) {
	for i := range e.nViews {
		v := e.views[i]
		if v.talker == "" {
			continue
		}
		most := v.n
		for j := i + 1; j < e.nViews; j++ {
			if e.views[j].talker == v.talker {
				most = max(most, e.views[j].n)
				e.views[j].talker = ""
			}
		}
		n += most
		ok = true
	}
	return n, ok
}

func (e *epoch) zda(m nmea.ZDA) {
	if has(m.Fields, 1) && has(m.Fields, 2) && has(m.Fields, 3) {
		e.date, e.dateOK, e.dateFull = [3]int{int(m.Year), int(m.Month), int(m.Day)}, true, true
	}
}

func (e *epoch) gst(m GST) {
	if m.LatErr.Valid {
		e.errLat.set(m.LatErr.Value, 0)
	}
	if m.LonErr.Valid {
		e.errLon.set(m.LonErr.Value, 0)
	}
	if m.AltErr.Valid {
		e.errAlt.set(m.AltErr.Value, 0)
	}
}
