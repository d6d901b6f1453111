package cloud

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Bounds that ValidateBatch enforces. Records outside them are refused (dead
// lettered and acknowledged as rejected), never clamped.
var (
	// MinRecordTime is the earliest record time accepted.
	MinRecordTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	// MaxClockAhead is how far past the server's clock a record time may be.
	MaxClockAhead = 24 * time.Hour
)

const (
	maxSeq       = math.MaxInt64 // seq is stored as a signed 64-bit integer
	maxSpeedMmps = 350_000       // 350 m/s, 1,260 km/h
	minAltCm     = -1_000_00     // −1 km
	maxAltCm     = 50_000_00     // 50 km
	maxSats      = 255
	maxDOPc      = 100_00 // DOP 100
	maxErrCm     = 100_000_00
	maxCodeBytes = 64
	maxTextBytes = 1024
	maxReasons   = 10
)

// Rejection says why one record of a batch was refused.
type Rejection struct {
	Seq    uint64
	Reason string
}

// Verdict is what ValidateBatch decided about a batch.
type Verdict struct {
	// Accepted holds the records that passed, with the batch's vehicle and
	// stream id; nil when none did.
	Accepted *telemetry.Batch
	// Rejected lists the refused records in the batch's order.
	Rejected []Rejection
	// Problem, when not empty, says why the whole batch was refused (every
	// record is then in Rejected too).
	Problem string
}

// OK reports whether the whole batch was accepted.
func (v *Verdict) OK() bool { return v.Problem == "" && len(v.Rejected) == 0 }

// RejectedRanges returns the sorted, merged seq ranges of the rejected records.
func (v *Verdict) RejectedRanges() []telemetry.SeqRange {
	seqs := make([]uint64, len(v.Rejected))
	for i, r := range v.Rejected {
		seqs[i] = r.Seq
	}
	return telemetry.RangesOf(seqs)
}

// Reason summarises why records were refused, for the dead letter and the
// ack: the batch's problem, or the first few record reasons and a count.
// It returns "" when nothing was refused.
func (v *Verdict) Reason() string {
	if v.Problem != "" {
		return v.Problem
	}
	if len(v.Rejected) == 0 {
		return ""
	}
	var b strings.Builder
	total := len(v.Rejected)
	if v.Accepted != nil {
		total += v.Accepted.Len()
	}
	fmt.Fprintf(&b, "%d of %d records rejected: ", len(v.Rejected), total)
	for i, r := range v.Rejected {
		if i == maxReasons {
			fmt.Fprintf(&b, "; and %d more", len(v.Rejected)-maxReasons)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "seq %d: %s", r.Seq, r.Reason)
	}
	return b.String()
}

// ValidateBatch checks a decoded batch received on the topic of vehicle
// topicVehicleID at server time now. The whole batch is refused when its
// vehicle id differs from the topic's or its stream id is 0 (unset); otherwise
// each record is checked on its own: seq in 1..2^63−1 and not repeated in the
// batch, time in [MinRecordTime, now+MaxClockAhead], and values in range
// (|lat| ≤ 90, |lon| ≤ 180, speed, course, altitude, mode, quality, DOPs,
// finite OBD values of a known service, event text that is valid UTF-8 without
// NUL bytes). It never modifies b.
func ValidateBatch(b *telemetry.Batch, topicVehicleID string, now time.Time) Verdict {
	var v Verdict
	switch {
	case b.VehicleID != topicVehicleID:
		v.Problem = fmt.Sprintf("vehicle id %q in the payload differs from %q in the topic", b.VehicleID, topicVehicleID)
	case b.StreamID == 0:
		v.Problem = "stream id is 0 (unset)"
	}
	if v.Problem != "" {
		for _, seq := range seqs(b) {
			v.Rejected = append(v.Rejected, Rejection{Seq: seq, Reason: v.Problem})
		}
		return v
	}

	seen := make(map[uint64]int, b.Len())
	for _, seq := range seqs(b) {
		seen[seq]++
	}
	minMs, maxMs := MinRecordTime.UnixMilli(), now.Add(MaxClockAhead).UnixMilli()
	common := func(seq uint64, ms int64) string {
		switch {
		case seq == 0:
			return "seq is 0"
		case seq > maxSeq:
			return fmt.Sprintf("seq above %d", uint64(maxSeq))
		case seen[seq] > 1:
			return "seq appears more than once in the batch"
		case ms < minMs:
			return fmt.Sprintf("time %s before %s", fmtMs(ms), MinRecordTime.Format(time.RFC3339))
		case ms > maxMs:
			return fmt.Sprintf("time %s more than %s ahead of the server clock", fmtMs(ms), MaxClockAhead)
		}
		return ""
	}

	reject := func(seq uint64, reason string) { v.Rejected = append(v.Rejected, Rejection{Seq: seq, Reason: reason}) }
	check := func(seq uint64, ms int64, problem func() string) bool {
		r := common(seq, ms)
		if r == "" {
			r = problem()
		}
		if r != "" {
			reject(seq, r)
		}
		return r == ""
	}
	acc := &telemetry.Batch{
		VehicleID: b.VehicleID, StreamID: b.StreamID,
		Positions: sift(b.Positions, func(p *telemetry.Position) bool {
			return check(p.Seq, p.UnixMs, func() string { return positionProblem(p) })
		}),
		OBD: sift(b.OBD, func(s *telemetry.OBDSample) bool {
			return check(s.Seq, s.UnixMs, func() string { return obdProblem(s) })
		}),
		Events: sift(b.Events, func(e *telemetry.Event) bool {
			return check(e.Seq, e.UnixMs, func() string { return eventProblem(e) })
		}),
	}
	if acc.Len() > 0 {
		v.Accepted = acc
	}
	return v
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func positionProblem(p *telemetry.Position) string {
	has := func(f telemetry.Field) bool { return p.Has&f != 0 }
	switch {
	case p.LatE7 < -90e7 || p.LatE7 > 90e7:
		return fmt.Sprintf("latitude %.7f outside [-90, 90]", p.Lat())
	case p.LonE7 < -180e7 || p.LonE7 > 180e7:
		return fmt.Sprintf("longitude %.7f outside [-180, 180]", p.Lon())
	case has(telemetry.HasAlt) && (p.AltCm < minAltCm || p.AltCm > maxAltCm):
		return fmt.Sprintf("altitude %.2f m outside [-1000, 50000]", float64(p.AltCm)/100)
	case has(telemetry.HasSpeed) && (p.SpeedMmps < 0 || p.SpeedMmps > maxSpeedMmps):
		return fmt.Sprintf("speed %.3f m/s outside [0, 350]", float64(p.SpeedMmps)/1000)
	case has(telemetry.HasCourse) && (p.CourseCdeg < 0 || p.CourseCdeg >= 36000):
		return fmt.Sprintf("course %.2f° outside [0, 360)", float64(p.CourseCdeg)/100)
	case has(telemetry.HasMode) && (p.Mode < telemetry.ModeNoFix || p.Mode > telemetry.Mode3D):
		return fmt.Sprintf("fix mode %d not 1, 2 or 3", p.Mode)
	case has(telemetry.HasQuality) && (p.Quality < 0 || p.Quality > 8):
		return fmt.Sprintf("fix quality %d outside [0, 8]", p.Quality)
	case has(telemetry.HasSatsUsed) && (p.SatsUsed < 0 || p.SatsUsed > maxSats):
		return fmt.Sprintf("satellites used %d outside [0, 255]", p.SatsUsed)
	case has(telemetry.HasSatsInView) && (p.SatsInView < 0 || p.SatsInView > maxSats):
		return fmt.Sprintf("satellites in view %d outside [0, 255]", p.SatsInView)
	}
	for _, d := range []struct {
		f    telemetry.Field
		v    int32
		name string
		max  int32
	}{
		{telemetry.HasHDOP, p.HDOPc, "HDOP", maxDOPc},
		{telemetry.HasVDOP, p.VDOPc, "VDOP", maxDOPc},
		{telemetry.HasPDOP, p.PDOPc, "PDOP", maxDOPc},
		{telemetry.HasErrLat, p.ErrLatCm, "latitude error", maxErrCm},
		{telemetry.HasErrLon, p.ErrLonCm, "longitude error", maxErrCm},
		{telemetry.HasErrAlt, p.ErrAltCm, "altitude error", maxErrCm},
	} {
		if has(d.f) && (d.v < 0 || d.v > d.max) {
			return fmt.Sprintf("%s %.2f outside [0, %d]", d.name, float64(d.v)/100, d.max/100)
		}
	}
	return ""
}

func obdProblem(s *telemetry.OBDSample) string {
	switch m := s.Mode(); {
	case m < 0x01 || m > 0x0A:
		return fmt.Sprintf("OBD service %#02x of PID %#04x is not 01 to 0A", m, s.PID)
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return fmt.Sprintf("OBD value %v is not a finite number", s.Value)
	}
	return ""
}

func eventProblem(e *telemetry.Event) string {
	for _, f := range []struct {
		name, s string
		max     int
	}{{"code", e.Code, maxCodeBytes}, {"detail", e.Detail, maxTextBytes}} {
		switch {
		case len(f.s) > f.max:
			return fmt.Sprintf("event %s of %d bytes exceeds %d", f.name, len(f.s), f.max)
		case !utf8.ValidString(f.s):
			return fmt.Sprintf("event %s is not valid UTF-8", f.name)
		case strings.IndexByte(f.s, 0) >= 0:
			return fmt.Sprintf("event %s contains a NUL byte", f.name)
		}
	}
	if e.Type < 0 {
		return fmt.Sprintf("event type %d is negative", e.Type)
	}
	return ""
}

// sift returns the elements of in for which keep is true, or nil when none is.
func sift[T any](in []T, keep func(*T) bool) []T {
	var out []T
	for i := range in {
		if keep(&in[i]) {
			out = append(out, in[i])
		}
	}
	return out
}

// seqs returns the seq of every record of b, in the batch's order.
func seqs(b *telemetry.Batch) []uint64 {
	out := make([]uint64, 0, b.Len())
	for i := range b.Positions {
		out = append(out, b.Positions[i].Seq)
	}
	for i := range b.OBD {
		out = append(out, b.OBD[i].Seq)
	}
	for i := range b.Events {
		out = append(out, b.Events[i].Seq)
	}
	return out
}
