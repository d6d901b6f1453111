package gps

import (
	"math"
	"strings"

	nmea "github.com/adrianmo/go-nmea"
)

// knotMps is one knot in metres per second (1852 m / 3600 s), exactly.
const knotMps = 1852.0 / 3600.0

// maxKeys bounds the sentences an epoch remembers for cycle detection.
const maxKeys = 64

// maxGSAs bounds the GSAs an epoch keeps (one per constellation, four to
// seven on a multi-GNSS receiver, twice that with a neighbour's).
const maxGSAs = 16

// key names a sentence within an epoch: its address (talker and type, e.g.
// "GNGSA") and sub, which tells apart the sentences of one address in one
// epoch: the occurrence number for most, the signal and part for GSV.
type key struct {
	addr string
	sub  int
}

// Ranks of the sentences that give an epoch its time and position: the
// fix-data sentences first.
const (
	rankGGA = iota // GGA, GNS
	rankRMC
	rankGLL
	rankOther // ZDA, GST
)

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

// gsaRec is one GSA, kept apart until the epoch closes: whether it belongs
// to the epoch depends on where it came (see Assembler, "GSA").
type gsaRec struct {
	fixType          int // 1 no fix, 2, 3; 0 not given
	sats             int64
	pdop, hdop, vdop opt
	after            int // timed sentences of the epoch before it
}

// epoch gathers what the sentences of one epoch said. It is open once a
// sentence with a time has arrived; sentences without one (GSA, GSV, VTG)
// that come first wait in it for the epoch they precede.
type epoch struct {
	open    bool
	todMs   int  // time of day of the epoch, ms
	todRank int8 // rank of the sentence the time came from
	keys    []key
	timed   int  // sentences with a time filed
	fixData bool // an RMC, GGA or GNS is filed

	fix   bool // a sentence said there is a fix
	noFix bool // a sentence said there is none

	lat, lon   float64
	posDigits  int  // decimals of the latitude text the position came from
	posRank    int8 // rank of the sentence it came from
	posOK      bool
	posTalker  string
	posDiffers bool // two sentences gave positions further apart than their rounding

	date     [3]int // year, month, day
	dateMs   int    // time of day of the sentence that gave the date
	dateFull bool   // the year has four digits (ZDA)
	dateOK   bool

	speed, course, alt, sep, quality, satsUsed opt
	hdop, vdop, pdop, errLat, errLon, errAlt   opt

	gsas   [maxGSAs]gsaRec
	nGSA   int
	views  [16]inView
	nViews int
}

// has reports whether field i was sent and not empty.
func has(fs []string, i int) bool { return i < len(fs) && fs[i] != "" }

// decimals returns the digits after the point of a number's text.
func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// position offers a latitude and longitude from a sentence of rank rank:
// the fix-data sentence (GGA, GNS) wins over RMC and RMC over GLL; between
// sentences of one rank, the one written with the most decimals. Two
// positions further apart than the rounding of their texts are noted
// (posDiffers).
func (e *epoch) position(fs []string, latField, lonField int, lat, lon float64, rank int8, talker string) {
	if !has(fs, latField) || !has(fs, lonField) {
		return
	}
	digits := decimals(fs[latField])
	if e.posOK {
		// Half a unit of the last decimal of either text, in minutes.
		tol := (0.5*math.Pow10(-min(digits, e.posDigits)) + 1e-9) / 60
		if math.Abs(lat-e.lat) > 2*tol || math.Abs(lon-e.lon) > 2*tol {
			e.posDiffers = true
		}
	}
	if !e.posOK || rank < e.posRank || rank == e.posRank && digits > e.posDigits {
		e.lat, e.lon, e.posDigits, e.posRank, e.posOK, e.posTalker = lat, lon, digits, rank, true, talker
	}
}

// samePosition reports whether lat, lon (from a text of digits decimals)
// is the epoch's position within the rounding of the two texts.
func (e *epoch) samePosition(lat, lon float64, digits int) bool {
	if !e.posOK {
		return false
	}
	tol := (0.5*math.Pow10(-min(digits, e.posDigits)) + 1e-9) / 60
	return math.Abs(lat-e.lat) <= 2*tol && math.Abs(lon-e.lon) <= 2*tol
}

// faaMode applies an FAA mode indicator (NMEA 2.3+; RMC, GLL, GNS): N says
// no fix; M (manual input) and S (simulator) are not fixes from the sky and
// count as none either; the others are fixes whose kind maps to the GGA
// quality scale.
func (e *epoch) faaMode(mode string, prio int8) (rejected string) {
	switch mode {
	case "":
	case nmea.FAAModeDataNotValid:
		e.noFix = true
	case nmea.FAAModeManualInput:
		e.noFix = true
		return "manual_input"
	case nmea.FAAModeSimulated:
		e.noFix = true
		return "simulator"
	default:
		if q, ok := faaQuality[mode]; ok {
			e.quality.set(q, prio)
		}
	}
	return ""
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

func (e *epoch) rmc(m nmea.RMC, ms int) string {
	switch m.Validity {
	case nmea.ValidRMC:
		e.fix = true
	case nmea.InvalidRMC:
		e.noFix = true
	}
	rejected := e.faaMode(m.FFAMode, 3)
	e.position(m.Fields, 2, 4, m.Latitude, m.Longitude, rankRMC, m.Talker)
	e.speed.field(m.Fields, 6, m.Speed*knotMps, 0)
	e.course.field(m.Fields, 7, m.Course, 0)
	if m.Date.Valid && !e.dateFull {
		year := 2000 + m.Date.YY // two-digit years: 80-99 are 19xx, 00-79 20xx
		if m.Date.YY >= 80 {
			year = 1900 + m.Date.YY
		}
		e.date, e.dateMs, e.dateOK = [3]int{year, m.Date.MM, m.Date.DD}, ms, true
	}
	return rejected
}

// gga applies a GGA. Quality 0 says no fix; 7 (manual input) and 8
// (simulator) are not fixes from the sky; a quality above 0 with no
// satellite used cannot be a fix either.
func (e *epoch) gga(m nmea.GGA) string {
	switch q := m.FixQuality; {
	case q == "":
	case q == nmea.Invalid:
		e.noFix = true
	case q == "7":
		e.noFix = true
		return "manual_input"
	case q == "8":
		e.noFix = true
		return "simulator"
	case has(m.Fields, 6) && m.NumSatellites == 0:
		e.noFix = true
		return "no_satellites"
	default:
		e.fix = true
		e.quality.set(float64(q[0]-'0'), 0)
	}
	e.position(m.Fields, 1, 3, m.Latitude, m.Longitude, rankGGA, m.Talker)
	e.satsUsed.field(m.Fields, 6, float64(m.NumSatellites), 1)
	e.hdop.field(m.Fields, 7, m.HDOP, 0)
	e.alt.field(m.Fields, 8, m.Altitude, 0)
	e.sep.field(m.Fields, 10, m.Separation, 0)
	return ""
}

// gnsRank orders GNS mode characters from the best fix to the worst.
const gnsRank = "RFPDAE"

func (e *epoch) gns(m nmea.GNS) string {
	// One mode character per constellation; the best one is the fix's.
	best := len(gnsRank)
	sky := false
	for _, c := range m.Mode {
		if i := strings.Index(gnsRank, c); i >= 0 && c != "" {
			best, sky = min(best, i), true
		}
	}
	switch {
	case len(m.Mode) == 0:
	case sky && has(m.Fields, 6) && m.SVs == 0:
		e.noFix = true
		return "no_satellites"
	case sky:
		e.fix = true
		e.quality.set(faaQuality[gnsRank[best:best+1]], 1)
	default: // all N, or only manual / simulator
		e.noFix = true
	}
	e.position(m.Fields, 1, 3, m.Latitude, m.Longitude, rankGGA, m.Talker)
	e.satsUsed.field(m.Fields, 6, float64(m.SVs), 0)
	e.hdop.field(m.Fields, 7, m.HDOP, 1)
	e.alt.field(m.Fields, 8, m.Altitude, 1)
	e.sep.field(m.Fields, 9, m.Separation, 1)
	return ""
}

func (e *epoch) gll(m nmea.GLL) string {
	switch m.Validity {
	case nmea.ValidGLL:
		e.fix = true
	case nmea.InvalidGLL:
		e.noFix = true
	}
	rejected := e.faaMode(m.FFAMode, 4)
	e.position(m.Fields, 0, 2, m.Latitude, m.Longitude, rankGLL, m.Talker)
	return rejected
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

// gsa keeps a GSA for the close, where its place decides whether it counts.
func (e *epoch) gsa(m nmea.GSA) {
	if e.nGSA == len(e.gsas) {
		return
	}
	g := gsaRec{sats: int64(len(m.SV)), after: e.timed}
	if has(m.Fields, 1) {
		g.fixType = int(m.FixType[0] - '0')
	}
	g.pdop.field(m.Fields, 14, m.PDOP, 0)
	g.hdop.field(m.Fields, 15, m.HDOP, 2)
	g.vdop.field(m.Fields, 16, m.VDOP, 0)
	e.gsas[e.nGSA] = g
	e.nGSA++
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

func (e *epoch) zda(m nmea.ZDA, ms int) {
	if has(m.Fields, 1) && has(m.Fields, 2) && has(m.Fields, 3) {
		e.date, e.dateMs, e.dateOK, e.dateFull = [3]int{int(m.Year), int(m.Month), int(m.Day)}, ms, true, true
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
