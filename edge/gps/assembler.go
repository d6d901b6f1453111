package gps

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Assembler checks, parses and merges sentences into fixes, one epoch at a
// time. An epoch is the set of sentences with the same UTC time of day, plus
// the sentences without a time (GSA, GSV, VTG) between them.
//
// # When an epoch closes
//
// Receivers send an epoch as a burst of sentences in an order of their own
// and say nothing when it ends. The Assembler learns the order as gpsd does:
// the first epoch closes when a sentence with another time arrives, and the
// last sentence it held becomes the cycle ender; from then on an epoch closes
// as soon as its ender arrives, without waiting for the next one. An epoch
// that closes by a change of time instead lacked its ender (lost to line
// noise) or the receiver changed its output; when two in a row end with the
// same sentence, that sentence becomes the ender. A sentence that arrives with the time of the epoch just
// closed and was not part of it (a sentence sent only now and then, after the
// ender) is counted as gps.late_sentences and becomes the new ender.
//
// # What makes a fix
//
// A fix needs a sentence that says there is one (RMC or GLL status A, GGA
// quality 1-6, a GNS mode other than N) and none that says there is not (RMC
// or GLL status V, FAA mode N, GGA quality 0, GNS mode all N, all GSAs fix type
// 1); FAA modes M (manual input) and S (simulator) are not fixes either. An
// epoch that says there is no fix closes with Epoch.Fix false (gps.no_fix).
// Values come from the sentence that says them best: position from the one
// with the most decimals; speed and course from RMC, else VTG; altitude and
// geoid separation from GGA, else GNS; quality from GGA, else GNS, else the
// FAA mode; satellites used from GNS, else GGA, else the count of GSA
// satellites; satellites in view from GSV, summed over constellations (the
// largest count of any signal of one constellation); HDOP from GGA, else GNS,
// else GSA; PDOP and VDOP from GSA; error estimates from GST; the date from
// ZDA, else RMC. A value no sentence gave stays unknown. Mode (2D/3D) is known
// only from GSA.
//
// # Time
//
// An epoch without a date of its own (no RMC or ZDA in it) takes the date of
// the last dated epoch, a day later if its time of day is earlier; until a
// date has been seen there is no fix (gps.no_date). Two-digit years 80-99 are
// 19xx, 00-79 are 20xx. Dates before DateFloor are taken for GPS week-number
// rollover (see DefaultDateFloor). A fix at the same time as the last one is
// dropped as gps.repeated_epochs, one before it as gps.backwards_epochs; the
// BackwardsLimit-th such fix in a row, each after the one before, is taken as
// the receiver's clock having stepped back for good: it is kept and followed
// from then on (gps.time_resets).
//
// # Jumps
//
// A fix farther from the previous fix than MaxSpeed × the time between them +
// JumpSlack is flagged: counted as gps.jumps and returned with Epoch.Jump set,
// not dropped, since the receiver said it and a vehicle on a ferry or a train
// does move; the Source reports it as an event.
//
// # Counters (under "gps.")
//
// sentences, bad_checksum, parse_errors, ignored (types and talkers not used),
// no_time (an RMC, GGA, GNS, GLL, ZDA or GST with an empty time field),
// duplicate_sentences, late_sentences, no_fix, no_position (an epoch that says
// there is a fix but gives no latitude and longitude), no_date,
// bad_values (a value that cannot be right: NaN, negative speed, too large
// for the wire), week_rollover_corrected, week_rollover_rejected,
// repeated_epochs, backwards_epochs, time_resets, jumps, fixes.
//
// An Assembler is not safe for concurrent use. The zero value is ready.
type Assembler struct {
	Counters *edge.Counters
	// DateFloor is the rollover floor; zero means DefaultDateFloor.
	DateFloor time.Time
	// MaxSpeed (m/s) and JumpSlack (m) make the jump rule; zero means
	// DefaultMaxSpeed and DefaultJumpSlack.
	MaxSpeed, JumpSlack float64

	parser *nmea.SentenceParser
	ep     epoch
	spare  []key // the keys slice of the epoch before last, for reuse

	ender     key // the sentence that closes an epoch; addr "" until learned
	candidate key // last sentence of the last epoch that closed by a change of time
	closed    nmea.Time
	closedOK  bool
	closedK   []key // keys of the epoch closed last

	dateOK  bool
	date    [3]int // last date seen (after rollover correction)
	dateTod nmea.Time

	last      telemetry.Position // last fix emitted
	haveLast  bool
	backwards int   // fixes before last in a row
	backMs    int64 // time of the last of them

	out [2]Epoch
}

// Epoch is what closing an epoch yields: a fix, or the receiver saying it has
// none.
type Epoch struct {
	Fix      bool               // Position is meaningful
	Position telemetry.Position // Seq is left 0
	// Jump is set when the fix breaks the jump rule (see Assembler).
	Jump *Jump
}

// Jump describes a fix implausibly far from the previous one.
type Jump struct {
	Metres  float64       // great-circle distance from the previous fix
	Elapsed time.Duration // receiver time since the previous fix
}

// Defaults of the Assembler's rules.
const (
	DefaultMaxSpeed  = 100.0 // m/s, 360 km/h: faster than any road vehicle
	DefaultJumpSlack = 100.0 // m: more than urban multipath moves a fix
	BackwardsLimit   = 3
)

// Feed takes one sentence (as LineReader returns it) and returns the epochs it
// closed: none, one, or two (the one a change of time closed and the new one,
// when the sentence is also the ender). The slice is valid until the next call.
// Sentences with a bad or missing checksum, that do not parse, or of types not
// used are counted and dropped.
func (a *Assembler) Feed(line string) []Epoch {
	a.inc("sentences")
	if !checksumOK(line) {
		a.inc("bad_checksum")
		return nil
	}
	if a.parser == nil {
		a.parser = &nmea.SentenceParser{
			CustomParsers: map[string]nmea.ParserFunc{TypeGST: parseGST},
			// checksumOK has checked it (in either case of hex digits).
			CheckCRC: func(nmea.BaseSentence, string) error { return nil },
		}
	}
	addr := address(line)
	s, err := a.parse(line)
	if err != nil {
		var ns *nmea.NotSupportedError
		if errors.As(err, &ns) {
			a.inc("ignored")
		} else {
			a.inc("parse_errors")
		}
		// Still part of the receiver's cycle: it may be the ender.
		return a.add(nil, addr, -1, nmea.Time{})
	}
	sub, tod := -1, nmea.Time{}
	if !gnssTalker(s.TalkerID()) {
		a.inc("ignored")
		return a.add(nil, addr, sub, tod)
	}
	timed := true // a type that belongs to an epoch only with its time
	switch m := s.(type) {
	case nmea.RMC:
		tod = m.Time
	case nmea.GGA:
		tod = m.Time
	case nmea.GNS:
		tod = m.Time
	case nmea.GLL:
		tod = m.Time
	case nmea.ZDA:
		tod = m.Time
	case GST:
		tod = m.Time
	case nmea.GSV:
		timed = false
		last := 0
		if m.MessageNumber == m.TotalMessages {
			last = 1 << 16
		} else {
			last = int(m.MessageNumber & 0xffff)
		}
		sub = int(m.SystemID&0xff)<<20 | last
	case nmea.GSA, nmea.VTG:
		timed = false
	default:
		a.inc("ignored")
		s = nil
	}
	if timed && !tod.Valid && s != nil {
		// Sent before the receiver knew the time (empty time field): it
		// cannot be placed in an epoch, and says no more than "no fix yet".
		a.inc("no_time")
		return a.add(noTime{s}, addr, sub, tod)
	}
	return a.add(s, addr, sub, tod)
}

// add files sentence s (nil for one that gives nothing) into the epoch in
// progress, opening, closing or refusing epochs as its time says.
func (a *Assembler) add(s nmea.Sentence, addr string, sub int, tod nmea.Time) []Epoch {
	out := a.out[:0]
	if tod.Valid && a.ep.open && a.ep.tod != tod {
		if ep, ok := a.close(true); ok {
			out = append(out, ep)
		}
	}
	if !a.ep.open && (single(s) || sub >= 0) && containsKey(a.ep.keys, key{addr, max(sub, 0)}) {
		// Sentences waiting for a time, and one of them again: an epoch
		// went by without a time; start over.
		a.resetEpoch()
	}
	if tod.Valid {
		if !a.ep.open {
			// A sentence with the time of the epoch just closed: the first
			// of a repeated epoch if that epoch had one like it, else late.
			if a.closedOK && a.closed == tod && !containsKey(a.closedK, key{addr, max(sub, 0)}) {
				a.inc("late_sentences")
				a.ender = key{addr, a.sub(a.closedK, addr, sub)}
				return out
			}
			a.ep.open, a.ep.tod = true, tod
		}
	}
	k := key{addr, a.sub(a.ep.keys, addr, sub)}
	if len(a.ep.keys) < maxKeys {
		a.ep.keys = append(a.ep.keys, k)
	}
	if _, skip := s.(noTime); s != nil && !skip {
		a.merge(s, k)
	}
	if a.ep.open && a.ender.addr != "" && k == a.ender {
		if ep, ok := a.close(false); ok {
			out = append(out, ep)
		}
	}
	return out
}

// sub returns the sub of a sentence of address addr: given (GSV), or the
// number of sentences of addr already in keys.
func (a *Assembler) sub(keys []key, addr string, sub int) int {
	if sub >= 0 {
		return sub
	}
	n := 0
	for _, k := range keys {
		if k.addr == addr {
			n++
		}
	}
	return n
}

// noTime wraps a sentence that is filed without its values.
type noTime struct{ nmea.Sentence }

// single reports whether s is of a type sent once per epoch.
func single(s nmea.Sentence) bool {
	if nt, ok := s.(noTime); ok {
		s = nt.Sentence
	}
	switch s.(type) {
	case nmea.RMC, nmea.GGA, nmea.GNS, nmea.GLL, nmea.VTG, nmea.ZDA, GST:
		return true
	}
	return false
}

func containsKey(keys []key, k key) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// merge adds what s says to the epoch. A second sentence of an address that
// can only come once per epoch is counted and ignored.
func (a *Assembler) merge(s nmea.Sentence, k key) {
	e := &a.ep
	switch m := s.(type) {
	case nmea.GSA:
		e.gsa(m)
		return
	case nmea.GSV:
		e.gsv(m)
		return
	}
	if k.sub > 0 {
		a.inc("duplicate_sentences")
		return
	}
	switch m := s.(type) {
	case nmea.RMC:
		e.rmc(m)
	case nmea.GGA:
		e.gga(m)
	case nmea.GNS:
		e.gns(m)
	case nmea.GLL:
		e.gll(m)
	case nmea.VTG:
		e.vtg(m)
	case nmea.ZDA:
		e.zda(m)
	case GST:
		e.gst(m)
	}
}

// Flush closes the epoch in progress (at the end of a stream) and returns it,
// if it yields anything. Sentences waiting for a time are dropped.
func (a *Assembler) Flush() (Epoch, bool) {
	if !a.ep.open {
		a.resetEpoch()
		return Epoch{}, false
	}
	return a.close(false)
}

// Reset forgets the epoch in progress and the date, for a reopened device.
// The learned ender and the last fix are kept: a replayed epoch is still
// dropped, and a jump across the reconnection is still flagged.
func (a *Assembler) Reset() {
	a.resetEpoch()
	a.closedOK = false
	a.dateOK = false
}

func (a *Assembler) resetEpoch() {
	keys := a.ep.keys[:0]
	a.ep = epoch{keys: keys}
}

// close ends the epoch in progress; learn says it closed by a change of time,
// so its last sentence is the ender from now on.
func (a *Assembler) close(learn bool) (Epoch, bool) {
	ep := a.ep
	if learn && len(ep.keys) > 0 {
		// The first epoch's last sentence is the ender. Later, an epoch
		// that closes by a change of time lacked the ender (lost to line
		// noise) or the receiver changed its output: the ender changes only
		// when two such epochs in a row end with the same sentence.
		last := ep.keys[len(ep.keys)-1]
		switch {
		case a.ender.addr == "" || last == a.candidate:
			a.ender = last
		default:
			a.candidate = last
		}
	}
	a.closed, a.closedOK = ep.tod, true
	// The closed epoch's keys stay readable in closedK; the slice they replace
	// serves the next epoch.
	a.spare, a.closedK = a.closedK, ep.keys
	a.ep = epoch{keys: a.spare[:0]}
	return a.result(&ep)
}

// result turns a closed epoch into a fix, a no-fix, or nothing. The date of
// an epoch that does not say there is no fix is kept for the epochs after it.
func (a *Assembler) result(ep *epoch) (Epoch, bool) {
	if ep.noFix || ep.gsaMode == 1 {
		a.inc("no_fix")
		return Epoch{}, true
	}
	var t time.Time
	if ep.dateOK {
		var ok bool
		t, ok = a.resolveRollover(dateTime(ep.date, ep.tod))
		if !ok {
			a.inc("week_rollover_rejected")
			return Epoch{}, false
		}
		a.date, a.dateTod, a.dateOK = [3]int{t.Year(), int(t.Month()), t.Day()}, ep.tod, true
	}
	if !ep.fix {
		return Epoch{}, false // only sentences that do not tell (GSA, GSV, ZDA, ...)
	}
	if !ep.posOK {
		a.inc("no_position")
		return Epoch{}, false
	}
	if !ep.dateOK {
		if !a.dateOK {
			a.inc("no_date")
			return Epoch{}, false
		}
		t = dateTime(a.carriedDate(ep.tod), ep.tod)
	}
	p, ok := a.position(ep, t.UnixMilli())
	if !ok {
		a.inc("bad_values")
		return Epoch{}, false
	}
	if !a.inOrder(p.UnixMs) {
		return Epoch{}, false
	}
	out := Epoch{Fix: true, Position: p}
	if a.haveLast {
		out.Jump = a.jump(&a.last, &p)
	}
	a.last, a.haveLast = p, true
	a.inc("fixes")
	return out, true
}

func dateTime(d [3]int, t nmea.Time) time.Time {
	return time.Date(d[0], time.Month(d[1]), d[2], t.Hour, t.Minute, t.Second, t.Millisecond*int(time.Millisecond), time.UTC)
}

// carriedDate returns the last date seen, a day later if tod is earlier in
// the day than the epoch that date came with.
func (a *Assembler) carriedDate(tod nmea.Time) [3]int {
	d := a.date
	if todMs(tod) < todMs(a.dateTod) {
		t := time.Date(d[0], time.Month(d[1]), d[2]+1, 0, 0, 0, 0, time.UTC)
		d = [3]int{t.Year(), int(t.Month()), t.Day()}
	}
	return d
}

func todMs(t nmea.Time) int {
	return ((t.Hour*60+t.Minute)*60+t.Second)*1000 + t.Millisecond
}

// inOrder applies the repeated and backwards rules to a fix at ms.
func (a *Assembler) inOrder(ms int64) bool {
	if !a.haveLast || ms > a.last.UnixMs {
		a.backwards = 0
		return true
	}
	if ms == a.last.UnixMs {
		a.inc("repeated_epochs")
		return false
	}
	if a.backwards > 0 && ms <= a.backMs {
		a.backwards = 0 // not a clock running on from an earlier time
	}
	a.backwards++
	a.backMs = ms
	if a.backwards < BackwardsLimit {
		a.inc("backwards_epochs")
		return false
	}
	a.inc("time_resets")
	a.backwards = 0
	a.haveLast = false
	return true
}

// position builds the wire record; ok is false if a value the receiver sent
// cannot be right or does not fit the wire's integers.
func (a *Assembler) position(ep *epoch, ms int64) (p telemetry.Position, ok bool) {
	// !(x <= max) also catches NaN, which strconv accepts and E7 cannot convert.
	if !(math.Abs(ep.lat) <= 90) || !(math.Abs(ep.lon) <= 180) {
		return p, false
	}
	p = telemetry.Position{UnixMs: ms, LatE7: telemetry.E7(ep.lat), LonE7: telemetry.E7(ep.lon)}
	ok = true
	// set stores o × scale into *dst and marks it known, if a sentence gave
	// it; nonNeg says a negative value cannot be right.
	set := func(o opt, scale float64, nonNeg bool, has telemetry.Field, dst *int32) {
		if !o.ok {
			return
		}
		if !(math.Abs(o.v*scale) < math.MaxInt32) || (nonNeg && o.v < 0) {
			ok = false
			return
		}
		p.Has |= has
		*dst = telemetry.Scaled(o.v, scale)
	}
	course := ep.course
	if course.ok {
		course.v = math.Mod(course.v, 360)
	}
	set(ep.speed, 1000, true, telemetry.HasSpeed, &p.SpeedMmps)
	set(course, 100, true, telemetry.HasCourse, &p.CourseCdeg)
	if p.CourseCdeg == 36000 { // 359.999 rounds up
		p.CourseCdeg = 0
	}
	set(ep.alt, 100, false, telemetry.HasAlt, &p.AltCm)
	set(ep.sep, 100, false, telemetry.HasGeoidSep, &p.GeoidSepCm)
	set(ep.quality, 1, true, telemetry.HasQuality, &p.Quality)
	sats := ep.satsUsed
	if !sats.ok && ep.gsaSats > 0 {
		sats = opt{v: float64(ep.gsaSats), ok: true}
	}
	set(sats, 1, true, telemetry.HasSatsUsed, &p.SatsUsed)
	if n, seen := ep.satsInView(); seen {
		set(opt{v: float64(n), ok: true}, 1, true, telemetry.HasSatsInView, &p.SatsInView)
	}
	set(ep.hdop, 100, true, telemetry.HasHDOP, &p.HDOPc)
	set(ep.vdop, 100, true, telemetry.HasVDOP, &p.VDOPc)
	set(ep.pdop, 100, true, telemetry.HasPDOP, &p.PDOPc)
	set(ep.errLat, 100, true, telemetry.HasErrLat, &p.ErrLatCm)
	set(ep.errLon, 100, true, telemetry.HasErrLon, &p.ErrLonCm)
	set(ep.errAlt, 100, true, telemetry.HasErrAlt, &p.ErrAltCm)
	if ep.gsaMode == telemetry.Mode2D || ep.gsaMode == telemetry.Mode3D {
		p.Has |= telemetry.HasMode
		p.Mode = int32(ep.gsaMode)
	}
	return p, ok
}

// gnssTalker reports whether a talker is a satellite receiver: GPS, GLONASS,
// Galileo, BeiDou (GB, or BD before NMEA 4.11), QZSS, NavIC, or a combination.
func gnssTalker(t string) bool {
	switch t {
	case "GP", "GL", "GA", "GB", "BD", "GQ", "GI", "GN":
		return true
	}
	return false
}

// address returns a sentence's address field: talker and type, e.g. "GPRMC".
func address(line string) string {
	end := strings.IndexAny(line, ",*")
	if end < 0 {
		end = len(line)
	}
	return line[1:end]
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

// parse runs go-nmea's parser and turns a panic inside it into a parse error
// (counted as gps.parser_panics too): go-nmea v1.10.0 panics on some malformed
// sentences that pass the checksum — a TXT with fewer than four fields,
// "$GPTXT,0AN*5C", slices past its fields — and serial garbage must never stop
// the agent.
func (a *Assembler) parse(line string) (s nmea.Sentence, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.inc("parser_panics")
			s, err = nil, fmt.Errorf("go-nmea panicked on %q: %v", line, r)
		}
	}()
	return a.parser.Parse(line)
}
