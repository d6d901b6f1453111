package gps

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Assembler checks, parses and merges sentences into fixes, one epoch at a
// time. An epoch is the set of sentences of one UTC time, plus the
// sentences without a time (GSA, GSV, VTG) of the same output cycle.
//
// # Parsing
//
// Sentences are parsed with github.com/adrianmo/go-nmea. When it refuses one
// of the types used, the sentence is parsed again field by field (see the
// lenient fallback in lenient.go): a malformed field the fix does not need
// is left unknown and counted, so a receiver that writes, say, its magnetic
// variation without E/W still yields fixes.
//
// # Talkers
//
// The position, time and motion sentences (RMC, GGA, GNS, GLL, VTG, ZDA) are
// used from any talker: satellite receivers (GP, GL, GA, GB, GN, ...) and the
// integrated navigation systems and chart plotters that relay them (IN, II,
// EC, ...). The satellite sentences (GSA, GSV, GST) only from satellite
// talkers. Talkers, when set, restricts both to the talkers it lists. Each
// fix is counted under gps.fixes_by_talker.<talker> of the sentence its
// position came from.
//
// # Times
//
// The epoch's time is that of its fix-data sentence: GGA or GNS, else RMC,
// else GLL, else ZDA or GST. Sentences whose times are within TimeTolerance
// of it are of the same epoch (receivers stamp a GLL a few milliseconds off
// its GGA). A GLL, ZDA or GST stamped up to a second (plus the tolerance)
// off the fix-data sentences of its cycle is learned as skewed by that much
// (gps.skewed_sentences): a GLL that comes after them with their position,
// or a GLL, ZDA or GST that comes before them stamped later than they are
// (time cannot run backwards within a cycle). From then on sentences of
// that address are filed as if stamped without the skew; one that arrives
// stamped with the epoch's own time ends the skew.
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
// same sentence, that sentence becomes the ender. A sentence that arrives
// after the ender and before the next epoch's first sentence with a time,
// and is not part of the next epoch, shows the ender was learned too early
// (a capture that started mid-cycle, a sentence lost in the first epoch):
// the ender moves to it and it is counted as gps.late_sentences.
//
// # GSA
//
// Most receivers send their untimed sentences after the timed ones of the
// same cycle (trailing); some send them before (leading). The Assembler
// starts with trailing and learns which from the GSAs themselves: a GSA
// whose HDOP or fix type matches the next epoch's GGA and not its own
// epoch's is evidence of leading, the other way round of trailing; two
// votes more one way than the other switch the layout (gps.layout_changes).
// In the leading layout the ender is the last timed sentence of the cycle.
//
// A GSA between two timed sentences of an epoch belongs to it. One before
// its first or after its last timed sentence may be a neighbour's (a
// capture that starts mid-cycle, a layout not learned yet): it counts only
// if its fix type agrees with what the epoch's RMC, GGA, GNS or GLL say
// about the fix; otherwise it is a neighbour's (gps.stale_sentences) and
// neither vetoes the fix nor gives it a mode or DOPs. So a GSA vetoes only
// the fix of the epoch it belongs to.
//
// # What makes a fix
//
// A fix needs a sentence that says there is one (RMC or GLL status A, GGA
// quality 1-6 with satellites used, a GNS mode other than N) and none that
// says there is not (RMC or GLL status V, FAA mode N, GGA quality 0, GNS mode
// all N, all of its GSAs fix type 1). FAA modes M (manual input) and S
// (simulator), GGA qualities 7 (manual input) and 8 (simulator) and a
// quality above 0 with no satellite used are not fixes from the sky either
// (gps.rejected_fixes.<why>). An epoch that says there is no fix closes
// with Epoch.Fix false (gps.no_fix). Values come from the sentence that
// says them best: position from GGA or GNS, else RMC, else GLL (between two
// of one kind, the one with the most decimals; positions that differ by more
// than their texts' rounding are counted as gps.position_disagreements);
// speed and course from RMC, else VTG; altitude and geoid separation from
// GGA, else GNS; quality from GGA, else GNS, else the FAA mode; satellites
// used from GNS, else GGA, else the count of GSA satellites; satellites in
// view from GSV, summed over constellations (the largest count of any
// signal of one constellation); HDOP from GGA, else GNS, else GSA; PDOP and
// VDOP from GSA; error estimates from GST; the date from ZDA, else RMC. A
// value no sentence gave stays unknown. Mode (2D/3D) is known only from GSA.
//
// # Date
//
// An epoch's date is the one a ZDA or RMC gave, for the time that sentence
// was stamped; an epoch without one takes the last date seen. Either way
// the day is the one that puts the epoch nearest to the dated instant, so
// the date moves on only at a real midnight crossing: not when a ZDA
// stamped half a second ahead of its GGA is followed by that GGA. Until a
// date has been seen there is no fix (gps.no_date). Two-digit years 80-99
// are 19xx, 00-79 are 20xx. Dates before DateFloor are taken for GPS
// week-number rollover (see DefaultDateFloor). A fix at the same time as
// the last one is dropped as gps.repeated_epochs, one before it as
// gps.backwards_epochs; the BackwardsLimit-th such fix in a row, each after
// the one before, is taken as the receiver's clock having stepped back for
// good: it is kept and followed from then on (gps.time_resets).
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
// sentences, bad_checksum, parse_errors, lenient, odd_fields.<type>_<field>,
// ignored (types and talkers not used), no_time (an RMC, GGA, GNS, GLL, ZDA
// or GST with an empty time field), duplicate_sentences, late_sentences,
// skewed_sentences, stale_sentences, layout_changes, no_fix,
// rejected_fixes.<why>, no_position, position_disagreements, no_date,
// bad_values (a value that cannot be right: NaN, negative speed, too large
// for the wire), week_rollover_corrected, week_rollover_rejected,
// repeated_epochs, backwards_epochs, time_resets, jumps, fixes,
// fixes_by_talker.<talker>.
//
// An Assembler is not safe for concurrent use. The zero value is ready.
type Assembler struct {
	Counters *edge.Counters
	// DateFloor is the rollover floor; zero means DefaultDateFloor.
	DateFloor time.Time
	// MaxSpeed (m/s) and JumpSlack (m) make the jump rule; zero means
	// DefaultMaxSpeed and DefaultJumpSlack.
	MaxSpeed, JumpSlack float64
	// Talkers, if not empty, are the only talker ids whose sentences are
	// used (see "Talkers").
	Talkers []string
	// TimeTolerance is how far apart the times of two sentences of one
	// epoch may be; zero means DefaultTimeTolerance.
	TimeTolerance time.Duration

	parser *nmea.SentenceParser
	base   nmea.BaseSentence // of the sentence being parsed, for the fallback
	ep     epoch
	spare  []key // the keys slice of the epoch before last, for reuse

	ender     key // the sentence that closes an epoch; addr "" until learned
	candidate key // last sentence of the last epoch that closed by a change of time
	closedMs  int
	closedOK  bool
	closedK   []key // keys of the epoch closed last
	byEnder   bool  // the epoch closed last closed by its ender

	skew  map[string]int // ms a GLL, ZDA or GST address is stamped after its cycle
	lead  bool           // untimed sentences precede the timed ones of their cycle
	votes int            // evidence for lead (> 0) or trail (< 0)
	last  closedInfo     // what the layout evidence needs of the epoch closed last

	dateOK bool
	date   [3]int // last date seen (after rollover correction)
	dateMs int    // the time of day it is the date of

	talkerKeys map[string]string // counter names of gps.fixes_by_talker, by talker

	lastFix   telemetry.Position // last fix emitted
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
	DefaultMaxSpeed      = 100.0 // m/s, 360 km/h: faster than any road vehicle
	DefaultJumpSlack     = 100.0 // m: more than urban multipath moves a fix
	BackwardsLimit       = 3
	DefaultTimeTolerance = 20 * time.Millisecond // under half the epoch of a 20 Hz receiver
)

const (
	dayMs     = 24 * 60 * 60 * 1000
	maxSkewMs = 1000 // a sentence stamped up to a second off its cycle
	layoutAt  = 2    // votes that switch the layout
)

// sentence kinds, for epoch timing.
const (
	kindUntimed   = iota // GSA, GSV, VTG, and what gives nothing
	kindFixData          // RMC, GGA, GNS: they define the epoch's time
	kindSecondary        // GLL, ZDA, GST: stamped, but may be skewed
)

// sentence is one parsed sentence on its way into an epoch.
type sentence struct {
	s     nmea.Sentence // nil: gives nothing (a parse error, an ignored type)
	addr  string
	sub   int // GSV's part, or -1
	kind  int
	tod   nmea.Time
	ms    int // tod as ms of the day
	rank  int8
	noTod bool // a timed type with an empty time field
}

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
			CheckCRC:       func(nmea.BaseSentence, string) error { return nil },
			OnBaseSentence: func(bs *nmea.BaseSentence) error { a.base = *bs; return nil },
		}
	}
	st := sentence{addr: address(line), sub: -1}
	s, err := a.parse(line)
	if err != nil {
		if notSupported(err) {
			a.inc("ignored")
		} else {
			a.inc("parse_errors")
		}
		// Still part of the receiver's cycle: it may be the ender.
		return a.add(st)
	}
	if !a.talkerOK(s.TalkerID(), s.DataType()) {
		a.inc("ignored")
		return a.add(st)
	}
	st.s = s
	switch m := s.(type) {
	case nmea.RMC:
		st.kind, st.tod, st.rank = kindFixData, m.Time, rankRMC
	case nmea.GGA:
		st.kind, st.tod, st.rank = kindFixData, m.Time, rankGGA
	case nmea.GNS:
		st.kind, st.tod, st.rank = kindFixData, m.Time, rankGGA
	case nmea.GLL:
		st.kind, st.tod, st.rank = kindSecondary, m.Time, rankGLL
	case nmea.ZDA:
		st.kind, st.tod, st.rank = kindSecondary, m.Time, rankOther
	case GST:
		st.kind, st.tod, st.rank = kindSecondary, m.Time, rankOther
	case nmea.GSV:
		last := 0
		if m.MessageNumber == m.TotalMessages {
			last = 1 << 16
		} else {
			last = int(m.MessageNumber & 0xffff)
		}
		st.sub = int(m.SystemID&0xff)<<20 | last
	case nmea.GSA, nmea.VTG:
	default:
		a.inc("ignored")
		st.s = nil
	}
	if st.kind != kindUntimed && !st.tod.Valid {
		// Sent before the receiver knew the time (empty time field): it
		// cannot be placed in an epoch, and says no more than "no fix yet".
		a.inc("no_time")
		st.kind, st.noTod = kindUntimed, true
	}
	st.ms = todMs(st.tod)
	return a.add(st)
}

// talkerOK applies the talker rules (see Assembler, "Talkers").
func (a *Assembler) talkerOK(talker, typ string) bool {
	if len(a.Talkers) > 0 {
		return slices.Contains(a.Talkers, talker)
	}
	switch typ {
	case nmea.TypeGSA, nmea.TypeGSV, TypeGST:
		return gnssTalker(talker)
	}
	return true
}

// add files a sentence into the epoch in progress, opening, closing or
// refusing epochs as its time says.
func (a *Assembler) add(st sentence) []Epoch {
	out := a.out[:0]
	if st.kind != kindUntimed && a.ep.open && !a.join(&st) {
		if ep, ok := a.close(true); ok {
			out = append(out, ep)
		}
	}
	if !a.ep.open && (single(st.s, st.noTod) || st.sub >= 0) && containsKey(a.ep.keys, key{st.addr, max(st.sub, 0)}) {
		// Sentences waiting for a time, and one of them again: an epoch
		// went by without a time; start over.
		a.resetEpoch()
	}
	if st.kind != kindUntimed && !a.ep.open {
		if a.closedOK && a.sameTime(a.filedMs(&st), a.closedMs) && !containsKey(a.closedK, key{st.addr, max(st.sub, 0)}) {
			// A sentence with the time of the epoch just closed that was
			// not part of it: sent after the ender, so it is the ender.
			a.lateSentences(len(a.ep.keys) + 1)
			a.ender = key{st.addr, a.sub(a.closedK, st.addr, st.sub)}
			a.resetEpoch()
			return out
		}
		if a.byEnder && !a.lead && a.leftovers() {
			// Trailing sentences after the ender, none of which the closed
			// epoch had: they were its own, and its last one is the ender.
			keys := slices.Clone(a.closedK)
			for _, k := range a.ep.keys {
				keys = append(keys, key{k.addr, a.subOf(keys, k)})
			}
			a.ender = keys[len(keys)-1]
			a.lateSentences(len(a.ep.keys))
			a.resetEpoch()
		}
		a.ep.open, a.ep.todMs, a.ep.todRank = true, a.filedMs(&st), st.rank
	}
	k := key{st.addr, a.sub(a.ep.keys, st.addr, st.sub)}
	if len(a.ep.keys) < maxKeys {
		a.ep.keys = append(a.ep.keys, k)
	}
	if st.s != nil && !st.noTod {
		a.merge(&st, k)
	}
	if st.kind != kindUntimed {
		a.ep.timed++
		a.ep.fixData = a.ep.fixData || st.kind == kindFixData
	}
	if a.ep.open && a.ender.addr != "" && k == a.ender {
		if ep, ok := a.close(false); ok {
			out = append(out, ep)
		}
	}
	return out
}

// join decides whether a timed sentence belongs to the open epoch, learning
// a skew when its place in the cycle shows one (see Assembler, "Times"). It
// may move the epoch's time to the sentence's, when the sentence outranks
// the one the time came from.
func (a *Assembler) join(st *sentence) bool {
	e := &a.ep
	if a.sameTime(st.ms, e.todMs) {
		if a.skew[st.addr] != 0 {
			delete(a.skew, st.addr) // stamped with its cycle's time again
		}
		if st.rank < e.todRank {
			e.todMs, e.todRank = st.ms, st.rank
		}
		return true
	}
	if s, ok := a.skew[st.addr]; ok && a.sameTime(st.ms-s, e.todMs) {
		return true
	}
	d := diffMs(st.ms, e.todMs)
	if abs(d) > maxSkewMs+a.tolMs() {
		return false
	}
	switch {
	case st.kind == kindSecondary && d > 0 && e.fixData && !e.hasAddr(st.addr):
		// A GLL after the fix-data sentences, stamped later, with their
		// position: it is of their cycle.
		gll, ok := st.s.(nmea.GLL)
		if !ok || !has(gll.Fields, 0) || !e.samePosition(gll.Latitude, gll.Longitude, decimals(gll.Fields[0])) {
			return false
		}
		a.learnSkew(st.addr, d)
		return true
	case st.kind == kindFixData && d < 0 && !e.fixData && e.timed > 0:
		// The epoch holds only GLL, ZDA or GST stamped later than the
		// fix-data sentence that follows them: they were stamped ahead.
		for _, k := range e.keys {
			if secondaryAddr(k.addr) {
				a.learnSkew(k.addr, -d)
			}
		}
		e.todMs, e.todRank = st.ms, st.rank
		return true
	}
	return false
}

func (a *Assembler) learnSkew(addr string, ms int) {
	if a.skew == nil {
		a.skew = map[string]int{}
	}
	if _, known := a.skew[addr]; !known {
		a.inc("skewed_sentences")
	}
	a.skew[addr] = ms
}

// filedMs is the time a sentence is filed under: its own, less its
// address's skew.
func (a *Assembler) filedMs(st *sentence) int {
	if s, ok := a.skew[st.addr]; ok && st.kind == kindSecondary {
		return ((st.ms-s)%dayMs + dayMs) % dayMs
	}
	return st.ms
}

func (a *Assembler) lateSentences(n int) {
	if a.Counters != nil && n > 0 {
		a.Counters.Add("gps.late_sentences", uint64(n))
	}
}

func (a *Assembler) tolMs() int {
	if a.TimeTolerance > 0 {
		return int(a.TimeTolerance.Milliseconds())
	}
	return int(DefaultTimeTolerance.Milliseconds())
}

func (a *Assembler) sameTime(x, y int) bool { return abs(diffMs(x, y)) <= a.tolMs() }

// diffMs is x - y in ms, across midnight: in (-12 h, 12 h].
func diffMs(x, y int) int {
	d := ((x-y)%dayMs + dayMs) % dayMs
	if d > dayMs/2 {
		d -= dayMs
	}
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func (e *epoch) hasAddr(addr string) bool {
	return slices.ContainsFunc(e.keys, func(k key) bool { return k.addr == addr })
}

// sentenceType returns the type part of an address ("GPGLL" → "GLL").
func sentenceType(addr string) string {
	if len(addr) < 3 {
		return addr
	}
	return addr[len(addr)-3:]
}

func secondaryAddr(addr string) bool {
	switch sentenceType(addr) {
	case nmea.TypeGLL, nmea.TypeZDA, TypeGST:
		return true
	}
	return false
}

func timedAddr(addr string) bool {
	switch sentenceType(addr) {
	case nmea.TypeRMC, nmea.TypeGGA, nmea.TypeGNS, nmea.TypeGLL, nmea.TypeZDA, TypeGST:
		return true
	}
	return false
}

// leftovers reports whether the sentences waiting for a time are the end
// of the epoch closed last rather than the start of the next: there are
// some, and none of them is a sentence that epoch already had.
func (a *Assembler) leftovers() bool {
	if len(a.ep.keys) == 0 {
		return false
	}
	for i, k := range a.ep.keys {
		if containsKey(a.closedK, key{k.addr, a.subOf(a.ep.keys[:i], k)}) {
			return false
		}
	}
	return true
}

// subOf renumbers k as if it came after keys: a GSV keeps its sub, others
// are numbered by occurrence.
func (a *Assembler) subOf(keys []key, k key) int {
	if sentenceType(k.addr) == nmea.TypeGSV {
		return k.sub
	}
	return a.sub(keys, k.addr, -1)
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

// single reports whether s is of a type sent once per epoch.
func single(s nmea.Sentence, noTod bool) bool {
	if noTod {
		return true
	}
	switch s.(type) {
	case nmea.RMC, nmea.GGA, nmea.GNS, nmea.GLL, nmea.VTG, nmea.ZDA, GST:
		return true
	}
	return false
}

func containsKey(keys []key, k key) bool {
	return slices.Contains(keys, k)
}

// merge adds what s says to the epoch. A second sentence of an address that
// can only come once per epoch is counted and ignored.
func (a *Assembler) merge(st *sentence, k key) {
	e := &a.ep
	switch m := st.s.(type) {
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
	rejected := ""
	switch m := st.s.(type) {
	case nmea.RMC:
		rejected = e.rmc(m, st.ms)
	case nmea.GGA:
		rejected = e.gga(m)
	case nmea.GNS:
		rejected = e.gns(m)
	case nmea.GLL:
		rejected = e.gll(m)
	case nmea.VTG:
		e.vtg(m)
	case nmea.ZDA:
		e.zda(m, st.ms)
	case GST:
		e.gst(m)
	}
	if rejected != "" {
		a.inc("rejected_fixes." + rejected)
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
// What was learned of the receiver (its cycle ender, layout and skews) and
// the last fix are kept: a replayed epoch is still dropped, and a jump
// across the reconnection is still flagged.
func (a *Assembler) Reset() {
	a.resetEpoch()
	a.closedOK, a.byEnder, a.last = false, false, closedInfo{}
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
		// The first epoch's last sentence is the ender (its last timed one
		// in the leading layout). Later, an epoch that closes by a change
		// of time lacked the ender (lost to line noise) or the receiver
		// changed its output: the ender changes only when two such epochs
		// in a row end with the same sentence.
		last := ep.keys[len(ep.keys)-1]
		if k, ok := lastTimed(ep.keys); ok && a.lead {
			last = k
		}
		switch {
		case a.ender.addr == "" || last == a.candidate:
			a.ender = last
		default:
			a.candidate = last
		}
	}
	a.closedMs, a.closedOK, a.byEnder = ep.todMs, true, !learn
	// The closed epoch's keys stay readable in closedK; the slice they replace
	// serves the next epoch.
	a.spare, a.closedK = a.closedK, ep.keys
	a.ep = epoch{keys: a.spare[:0]}
	return a.result(&ep)
}

// result turns a closed epoch into a fix, a no-fix, or nothing. The date of
// an epoch that does not say there is no fix is kept for the epochs after it.
func (a *Assembler) result(ep *epoch) (Epoch, bool) {
	mode, veto := a.gsas(ep)
	if ep.noFix || veto {
		a.inc("no_fix")
		return Epoch{}, true
	}
	var t time.Time
	if ep.dateOK {
		var ok bool
		t, ok = a.resolveRollover(dateTime(nearestDay(ep.date, ep.dateMs, ep.todMs), ep.todMs))
		if !ok {
			a.inc("week_rollover_rejected")
			return Epoch{}, false
		}
		a.date, a.dateMs, a.dateOK = [3]int{t.Year(), int(t.Month()), t.Day()}, ep.todMs, true
	}
	if !ep.fix {
		return Epoch{}, false // only sentences that do not tell (GSA, GSV, ZDA, ...)
	}
	if !ep.posOK {
		a.inc("no_position")
		return Epoch{}, false
	}
	if ep.posDiffers {
		a.inc("position_disagreements")
	}
	if !ep.dateOK {
		if !a.dateOK {
			a.inc("no_date")
			return Epoch{}, false
		}
		t = dateTime(nearestDay(a.date, a.dateMs, ep.todMs), ep.todMs)
	}
	p, ok := a.position(ep, mode, t.UnixMilli())
	if !ok {
		a.inc("bad_values")
		return Epoch{}, false
	}
	if !a.inOrder(p.UnixMs) {
		return Epoch{}, false
	}
	out := Epoch{Fix: true, Position: p}
	if a.haveLast {
		out.Jump = a.jump(&a.lastFix, &p)
	}
	a.lastFix, a.haveLast = p, true
	a.inc("fixes")
	if ep.posTalker != "" && a.Counters != nil {
		name, ok := a.talkerKeys[ep.posTalker]
		if !ok {
			if a.talkerKeys == nil {
				a.talkerKeys = map[string]string{}
			}
			name = "gps.fixes_by_talker." + ep.posTalker
			a.talkerKeys[ep.posTalker] = name
		}
		a.Counters.Inc(name)
	}
	return out, true
}

// fixStatus is what an epoch's timed sentences say of the fix.
type fixStatus uint8

const (
	statusUnknown fixStatus = iota
	statusFix
	statusNoFix
)

func (e *epoch) status() fixStatus {
	switch {
	case e.noFix:
		return statusNoFix
	case e.fix:
		return statusFix
	}
	return statusUnknown
}

// agrees reports whether a GSA's fix type agrees with a status.
func (g *gsaRec) agrees(s fixStatus) bool {
	switch {
	case s == statusUnknown || g.fixType == 0:
		return true
	case g.fixType == 1:
		return s == statusNoFix
	}
	return s == statusFix
}

// closedInfo is what the layout evidence needs of the epoch closed last.
type closedInfo struct {
	ok     bool
	hdop   opt // its GGA's or GNS's
	status fixStatus
	after  [maxGSAs]gsaRec // its GSAs after its last timed sentence
	nAfter int
}

// gsas decides which of the epoch's GSAs belong to it (see Assembler,
// "GSA") and applies them: the satellites used, the DOPs and the mode, and
// whether they veto the fix.
func (a *Assembler) gsas(ep *epoch) (mode int, veto bool) {
	st := ep.status()
	// Three groups in arrays of the epoch's size: no allocation per epoch.
	var bufs [3][maxGSAs]gsaRec
	inner, before, after := bufs[0][:0], bufs[1][:0], bufs[2][:0]
	for _, g := range ep.gsas[:ep.nGSA] {
		switch {
		case ep.timed == 0 || (g.after > 0 && g.after < ep.timed):
			inner = append(inner, g)
		case g.after == 0:
			before = append(before, g)
		default:
			after = append(after, g)
		}
	}
	if lead := a.lead; a.layoutEvidence(ep, st, before, after) && a.lead && !lead {
		// Learned just now: the GSAs after this epoch's timed sentences
		// are the next epoch's.
		for _, g := range after {
			if a.ep.nGSA < len(a.ep.gsas) {
				g.after = 0
				a.ep.gsas[a.ep.nGSA] = g
				a.ep.nGSA++
			}
		}
		after = nil
	}
	// Those between its timed sentences; then the outer ones of the
	// layout (after them when trailing, before them when leading) that
	// agree with the epoch, else the other outer ones that do.
	prefer, other := after, before
	if a.lead {
		prefer, other = before, after
	}
	var usedBuf [2 * maxGSAs]gsaRec
	used := append(usedBuf[:0], inner...)
	stale := 0
	for _, gs := range [2][]gsaRec{prefer, other} {
		if len(used) > len(inner) {
			stale += len(gs)
			continue
		}
		for _, g := range gs {
			if g.agrees(st) {
				used = append(used, g)
			} else {
				stale++
			}
		}
	}
	if stale > 0 && a.Counters != nil {
		a.Counters.Add("gps.stale_sentences", uint64(stale))
	}
	if len(used) == 0 {
		return 0, false
	}
	veto = true
	var sats int64
	for i, g := range used {
		prio := int8(min(i, 100))
		mode = max(mode, g.fixType)
		veto = veto && g.fixType == 1
		sats += g.sats
		if g.pdop.ok {
			ep.pdop.set(g.pdop.v, prio)
		}
		if g.vdop.ok {
			ep.vdop.set(g.vdop.v, prio)
		}
		if g.hdop.ok {
			ep.hdop.set(g.hdop.v, 2)
		}
	}
	if sats > 0 {
		ep.satsUsed.set(float64(sats), 2)
	}
	return mode, veto
}

// layoutEvidence weighs the GSAs sent between the epoch closed last and
// this one (after the last timed sentence of the one, before the first of
// the other): whose HDOP, whose fix type do they carry, when the two
// epochs differ in them? Theirs says trailing, this one's leading.
//
// It reports whether the layout changed.
func (a *Assembler) layoutEvidence(ep *epoch, st fixStatus, before, after []gsaRec) bool {
	prev := a.last
	a.last = closedInfo{ok: true, hdop: ep.hdop, status: st}
	a.last.nAfter = copy(a.last.after[:], after)
	if !prev.ok {
		return false
	}
	hdops := prev.hdop.ok && ep.hdop.ok && prev.hdop.v != ep.hdop.v
	fixes := prev.status != statusUnknown && st != statusUnknown && prev.status != st
	lead, trail := false, false
	for _, g := range slices.Concat(prev.after[:prev.nAfter], before) {
		if hdops && g.hdop.ok {
			lead = lead || g.hdop.v == ep.hdop.v
			trail = trail || g.hdop.v == prev.hdop.v
		}
		if fixes && g.fixType != 0 {
			lead = lead || g.agrees(st)
			trail = trail || g.agrees(prev.status)
		}
	}
	was := a.lead
	switch {
	case lead && !trail:
		a.vote(+1, ep)
	case trail && !lead:
		a.vote(-1, ep)
	}
	return a.lead != was
}

// vote adds evidence for the leading (+1) or trailing (-1) layout and
// switches when it is strong enough; ep is the epoch being closed.
func (a *Assembler) vote(v int, ep *epoch) {
	a.votes = max(min(a.votes+v, layoutAt), -layoutAt)
	switch {
	case !a.lead && a.votes >= layoutAt:
		a.lead = true
		a.inc("layout_changes")
		// The cycle ends with its last timed sentence.
		if k, ok := lastTimed(ep.keys); ok {
			a.ender = k
		}
	case a.lead && a.votes <= -layoutAt:
		a.lead = false
		a.inc("layout_changes")
		a.ender = key{} // learned again at the next change of time
	}
}

// notSupported reports whether go-nmea refused a sentence for its type.
func notSupported(err error) bool {
	var ns *nmea.NotSupportedError
	return errors.As(err, &ns)
}

// lastTimed returns the last key of a timed sentence type.
func lastTimed(keys []key) (key, bool) {
	for i := len(keys) - 1; i >= 0; i-- {
		if timedAddr(keys[i].addr) {
			return keys[i], true
		}
	}
	return key{}, false
}

// nearestDay returns the date, among d and the days either side of it, that
// puts time of day todMs nearest to the instant d was given for (dateMs):
// a date moves on only across a real midnight.
func nearestDay(d [3]int, dateMs, todMs int) [3]int {
	shift := 0
	switch diff := todMs - dateMs; {
	case diff > dayMs/2:
		shift = -1 // before midnight, dated just after it
	case diff < -dayMs/2:
		shift = 1 // after midnight, dated just before it
	default:
		return d
	}
	t := time.Date(d[0], time.Month(d[1]), d[2]+shift, 0, 0, 0, 0, time.UTC)
	return [3]int{t.Year(), int(t.Month()), t.Day()}
}

func dateTime(d [3]int, ms int) time.Time {
	return time.Date(d[0], time.Month(d[1]), d[2], 0, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
}

func todMs(t nmea.Time) int {
	return ((t.Hour*60+t.Minute)*60+t.Second)*1000 + t.Millisecond
}

// inOrder applies the repeated and backwards rules to a fix at ms.
func (a *Assembler) inOrder(ms int64) bool {
	if !a.haveLast || ms > a.lastFix.UnixMs {
		a.backwards = 0
		return true
	}
	if ms == a.lastFix.UnixMs {
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
func (a *Assembler) position(ep *epoch, mode int, ms int64) (p telemetry.Position, ok bool) {
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
	set(ep.satsUsed, 1, true, telemetry.HasSatsUsed, &p.SatsUsed)
	if n, seen := ep.satsInView(); seen {
		set(opt{v: float64(n), ok: true}, 1, true, telemetry.HasSatsInView, &p.SatsInView)
	}
	set(ep.hdop, 100, true, telemetry.HasHDOP, &p.HDOPc)
	set(ep.vdop, 100, true, telemetry.HasVDOP, &p.VDOPc)
	set(ep.pdop, 100, true, telemetry.HasPDOP, &p.PDOPc)
	set(ep.errLat, 100, true, telemetry.HasErrLat, &p.ErrLatCm)
	set(ep.errLon, 100, true, telemetry.HasErrLon, &p.ErrLonCm)
	set(ep.errAlt, 100, true, telemetry.HasErrAlt, &p.ErrAltCm)
	if mode == telemetry.Mode2D || mode == telemetry.Mode3D {
		p.Has |= telemetry.HasMode
		p.Mode = int32(mode)
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

// parse runs go-nmea's parser, then for a sentence of a type used that it
// refuses, the lenient fallback (see lenient.go). A panic inside go-nmea
// becomes a parse error (counted as gps.parser_panics too): go-nmea v1.10.0
// panics on some malformed sentences that pass the checksum — a TXT with
// fewer than four fields, "$GPTXT,0AN*5C", slices past its fields — and
// serial garbage must never stop the agent.
func (a *Assembler) parse(line string) (s nmea.Sentence, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.inc("parser_panics")
			s, err = nil, fmt.Errorf("go-nmea panicked on %q: %v", line, r)
		}
	}()
	a.base = nmea.BaseSentence{}
	s, err = a.parser.Parse(line)
	if err == nil || a.base.Type == "" || notSupported(err) {
		return s, err
	}
	fallback, ok := lenientParsers[a.base.Type]
	if !ok {
		return nil, err
	}
	f := newFields(a.base)
	ls := fallback(f)
	if f.failed {
		return nil, err
	}
	a.inc("lenient")
	for _, name := range f.odd {
		a.inc("odd_fields." + name)
	}
	return ls, nil
}
