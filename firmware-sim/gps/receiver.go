package gps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// MaxRate is the highest output rate Receiver accepts, in epochs per second.
const MaxRate = 25

// UERE is the user equivalent range error the noise model assumes, in
// metres: the 1-sigma horizontal error is about UERE × HDOP.
const UERE = 2.5

// noiseTau is the correlation time of the position error: real receivers
// wander, they do not jump from one epoch to the next.
const noiseTau = 20 * time.Second

// Receiver emits one epoch of NMEA sentences every 1/Rate second of simulated
// time, from the state of its Vehicle at that instant.
//
// Everything it writes is a function of its configuration and the vehicle
// alone: the same Seed and Vehicle give the same bytes, however fast the
// clock runs and whoever reads — with one exception, with StrictBaud, a
// client reading at another line speed than the receiver talks (see Run).
type Receiver struct {
	// Vehicle is the receiver's own copy of the vehicle model; Run advances it
	// and nothing else may use it meanwhile.
	Vehicle *firmwaresim.Vehicle
	Clock   firmwaresim.Clock
	Rate    int // epochs per simulated second, 1..MaxRate
	Format  Format
	// Baud is the line speed: epochs go out a sentence at a time, each when
	// its last byte would have left a UART at 8N1 (10 bits a byte), in
	// simulated time, and an epoch due while the line is still busy is
	// skipped, as real receivers do. 0 sends each epoch whole at its time.
	Baud int
	// StrictBaud makes the line a UART: a client reading at another speed
	// than the receiver talks (when the writer has a Baud method) gets
	// garbage. Without it the line is a pty's, which carries the bytes at any
	// speed.
	StrictBaud bool
	// Noise adds position, altitude, speed and course errors that follow the
	// DOP (1-sigma UERE × DOP, correlated over 20 s).
	Noise bool
	// ColdStart is how long after the start the first fix comes; the
	// receiver knows no time for its first third.
	ColdStart time.Duration
	// Seed decides the noise, the satellites, the time to reacquire a fix
	// after a tunnel and the garbage bytes.
	Seed uint64
	// Faults is the vehicle's fault timeline. Those hitting the GPS act here
	// (unplug, garbage, bad_checksum, baud_change, fix_loss, clock_jump,
	// week_rollover); every mark is passed to OnFault.
	Faults []firmwaresim.Fault
	// OnFault, if set, is called with every mark of Faults, in time order and
	// in order with the epochs, from Run's goroutine.
	OnFault func(firmwaresim.Mark)
	// OnEpoch, if set, is called after every epoch with what happened to it.
	OnEpoch func(Report)
	// Until, if not zero, ends the output: epochs at or after it are not sent.
	Until time.Time
}

// Report is what became of one epoch.
type Report struct {
	K     int               // epoch number from 0
	Time  time.Time         // simulated time of the epoch
	State firmwaresim.State // the vehicle, noise-free
	Fix   Fix               // as carried on the wire (Valid false: no fix)
	Sent  bool              // written whole to the line
	// Skipped says why an epoch was not sent: "unplugged", "overrun" (the
	// line was still busy) or "link down" (the client went away).
	Skipped string
	// Garbled is set when no receiver could decode the epoch: bad checksums,
	// or a client reading at another line speed.
	Garbled bool
}

// EpochTime returns the time of epoch k (0 at start) at rate epochs per
// second: start + k/rate, truncated to the hundredth of a second that NMEA
// times carry.
func EpochTime(start time.Time, rate, k int) time.Time {
	return start.Add(time.Duration(int64(k) * int64(time.Second) / int64(rate))).Truncate(10 * time.Millisecond)
}

// FromState returns the fix a perfect receiver with a clear sky would
// compute from s.
func FromState(s firmwaresim.State) Fix {
	return Fix{
		Time: s.Time, Valid: s.FixValid, Lat: s.Lat, Lon: s.Lon, AltM: s.AltM,
		SpeedMps: s.SpeedMps, CourseDeg: s.CourseDeg, Quality: 1, Sats: s.Sats,
		HDOP: s.HDOP, VDOP: s.VDOP, PDOP: s.PDOP,
		ErrLatM: UERE * s.HDOP / math.Sqrt2, ErrLonM: UERE * s.HDOP / math.Sqrt2, ErrAltM: UERE * s.VDOP,
	}
}

// Pluggable is a line that can be unplugged and plugged back in; the GPS
// unplug fault uses it when the writer given to Run has it.
type Pluggable interface {
	Unplug() error
	Replug() error
}

// Speedometer reports the line speed the client set, and false when the
// line has none (TCP); with StrictBaud the receiver garbles its output when
// the client reads at another speed than the receiver talks.
type Speedometer interface {
	Baud() (int, bool)
}

// Validate checks the receiver's settings.
func (r *Receiver) Validate() error {
	if r.Rate < 1 || r.Rate > MaxRate {
		return fmt.Errorf("gps receiver: rate %d Hz outside 1..%d", r.Rate, MaxRate)
	}
	if r.Vehicle == nil || r.Clock == nil {
		return errors.New("gps receiver: no vehicle or clock")
	}
	if r.Baud < 0 || r.ColdStart < 0 {
		return errors.New("gps receiver: negative baud rate or cold start")
	}
	if err := r.Format.Validate(); err != nil {
		return fmt.Errorf("gps receiver: %w", err)
	}
	return nil
}

// Run writes epochs to w, waiting on the Clock for each, from the vehicle's
// start until Until or until ctx is done. After each epoch is written whole
// it calls onFix (if not nil) with the values the epoch carried, when the
// epoch holds a valid fix that a receiver could decode.
//
// A Write that blocks (nobody reads the port) holds the output back; the
// epochs due meanwhile follow as soon as it returns, so the bytes do not
// depend on the reader. A Write error wrapping firmwaresim.ErrLinkDown loses
// that output (no fix is reported) and Run goes on. With StrictBaud, when w
// has a Baud method (Speedometer) and the client reads at another speed than
// the receiver talks, the client gets garbage in its place, as from a real
// UART.
//
// Run returns nil once the Clock reaches Until, ctx.Err() when ctx is done,
// and the write error otherwise.
func (r *Receiver) Run(ctx context.Context, w io.Writer, onFix func(Fix)) error {
	if err := r.Validate(); err != nil {
		return err
	}
	start := r.Vehicle.Config().Start
	sk := newSky(r.Seed)
	ln := &line{w: w, baud: r.Baud, free: start, rng: rand.New(rand.NewPCG(r.Seed, 0x6761726265))}
	marks := firmwaresim.Timeline(r.Faults)
	mi := 0
	for k := 0; ; k++ {
		t := EpochTime(start, r.Rate, k)
		for ; mi < len(marks) && !start.Add(marks[mi].At).After(t); mi++ {
			at := start.Add(marks[mi].At)
			if !r.Until.IsZero() && !at.Before(r.Until) {
				break
			}
			if err := r.Clock.SleepUntil(ctx, at); err != nil {
				return err
			}
			if err := r.mark(ctx, marks[mi], at, ln); err != nil {
				return err
			}
			if r.OnFault != nil {
				r.OnFault(marks[mi])
			}
		}
		if !r.Until.IsZero() && !t.Before(r.Until) {
			return r.Clock.SleepUntil(ctx, r.Until) // the drive ends at Until, not at the last epoch
		}
		if err := r.Clock.SleepUntil(ctx, t); err != nil {
			return err
		}
		rep, e := r.epoch(k, t, start, sk)
		if err := r.send(ctx, ln, &rep, e); err != nil {
			return err
		}
		if rep.Sent && rep.Fix.Valid && !rep.Garbled && onFix != nil {
			onFix(rep.Fix)
		}
		if r.OnEpoch != nil {
			r.OnEpoch(rep)
		}
	}
}

// line is the receiver's serial line.
type line struct {
	w         io.Writer
	baud      int       // the receiver's speed now (0: unpaced)
	free      time.Time // when the last byte sent so far has left
	unplugged bool
	rng       *rand.Rand // garbage
}

// byteTime is the time one byte takes on the line (8N1: ten bits).
func (l *line) byteTime(n int) time.Duration {
	if l.baud <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(l.baud))
}

// mark carries out the GPS side of a timeline mark.
func (r *Receiver) mark(ctx context.Context, m firmwaresim.Mark, at time.Time, ln *line) error {
	f := m.Fault
	switch {
	case f.Kind == firmwaresim.FaultUnplug && f.Device == firmwaresim.DeviceGPS:
		p, ok := ln.w.(Pluggable)
		if m.Phase == firmwaresim.PhaseBegin {
			ln.unplugged = true
			if ok {
				return p.Unplug()
			}
		} else {
			ln.unplugged = false
			if ok {
				return p.Replug()
			}
		}
	case f.Kind == firmwaresim.FaultBaudChange:
		ln.baud = f.Baud
		if m.Phase == firmwaresim.PhaseEnd {
			ln.baud = r.Baud
		}
	case f.Kind == firmwaresim.FaultGarbage && f.Device == firmwaresim.DeviceGPS:
		n := f.Bytes
		if n <= 0 {
			n = 64
		}
		b := Garbage(ln.rng, n)
		from := at
		if ln.free.After(from) {
			from = ln.free
		}
		ln.free = from.Add(ln.byteTime(len(b)))
		if err := r.Clock.SleepUntil(ctx, ln.free); err != nil {
			return err
		}
		if !ln.unplugged {
			if _, err := ln.w.Write(b); err != nil && !errors.Is(err, firmwaresim.ErrLinkDown) {
				return fmt.Errorf("gps receiver: write garbage: %w", err)
			}
		}
	}
	return nil
}

// Garbage returns n random bytes followed by CR LF: line noise, none of it a
// '$' or '!' (which would start a sentence) or a '>' (an ELM327 prompt).
func Garbage(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+2)
	for len(b) < n {
		c := byte(rng.IntN(256))
		if c != '$' && c != '!' && c != '>' {
			b = append(b, c)
		}
	}
	return append(b, '\r', '\n')
}

// active returns the faults of kind in force at off from the start.
func (r *Receiver) active(kind firmwaresim.FaultKind, off time.Duration) []firmwaresim.Fault {
	var out []firmwaresim.Fault
	for _, f := range r.Faults {
		if f.Kind == kind && f.Active(off) {
			out = append(out, f)
		}
	}
	return out
}

// epoch computes epoch k at t: the state, the sky, the noise, the faults.
func (r *Receiver) epoch(k int, t, start time.Time, sk *sky) (Report, Epoch) {
	s := r.Vehicle.AdvanceTo(t)
	off := t.Sub(start)
	clear := s.FixValid && len(r.active(firmwaresim.FaultFixLoss, off)) == 0
	valid := sk.acquire(clear, t) && off >= r.ColdStart

	f := FromState(s)
	f.Valid = valid
	f.NoTime = off < r.ColdStart/3
	f.InView = sk.inView(s, clear, off, r.ColdStart)
	dt := time.Second / time.Duration(r.Rate)
	if r.Noise {
		sk.perturb(&f, dt)
	}
	for _, j := range r.active(firmwaresim.FaultClockJump, off) {
		f.Time = f.Time.Add(j.Offset)
	}
	if len(r.active(firmwaresim.FaultWeekRollover, off)) > 0 {
		f.Time = f.Time.Add(-firmwaresim.WeekRollover)
	}
	e := Encode(f, r.Format)
	rep := Report{K: k, Time: t, State: s, Fix: e.Fix}
	if len(r.active(firmwaresim.FaultBadChecksum, off)) > 0 {
		for i, snt := range e.Sentences {
			e.Sentences[i] = badChecksum(snt)
		}
		rep.Garbled = true
	}
	return rep, e
}

// badChecksum replaces the checksum of a sentence with a wrong one.
func badChecksum(s string) string {
	star := len(s) - 3
	return fmt.Sprintf("%s*%02X", s[:star], checksum(s[1:star])^0x5A)
}

// send writes the epoch on the line, paced, unless the line is unplugged or
// still busy.
func (r *Receiver) send(ctx context.Context, ln *line, rep *Report, e Epoch) error {
	switch {
	case ln.unplugged:
		rep.Skipped = "unplugged"
		return nil
	case ln.free.After(rep.Time):
		rep.Skipped = "overrun"
		return nil
	}
	chunks := make([][]byte, 0, len(e.Sentences))
	for _, s := range e.Sentences {
		chunks = append(chunks, []byte(s+"\r\n"))
	}
	if sp, ok := ln.w.(Speedometer); ok && ln.baud > 0 && r.StrictBaud {
		if client, ok := sp.Baud(); ok && client != ln.baud {
			chunks = [][]byte{misread(ln.rng, e.Bytes(), client, ln.baud)}
			rep.Garbled = true
		}
	}
	if ln.baud <= 0 {
		chunks = [][]byte{e.Bytes()}
	}
	at, sent := rep.Time, 0
	for _, c := range chunks {
		sent += len(c)
		at = rep.Time.Add(ln.byteTime(sent))
		if err := r.Clock.SleepUntil(ctx, at); err != nil {
			return err
		}
		if _, err := ln.w.Write(c); err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, firmwaresim.ErrLinkDown):
				rep.Skipped = "link down"
				return nil
			}
			return fmt.Errorf("gps receiver: write epoch %s: %w", rep.Time.Format(time.RFC3339Nano), err)
		}
	}
	ln.free = at
	rep.Sent = true
	return nil
}

// misread returns what a UART at clientBaud makes of b sent at baud: about
// len(b)·clientBaud/baud bytes of framing errors and noise.
func misread(rng *rand.Rand, b []byte, clientBaud, baud int) []byte {
	n := max(1, int(math.Round(float64(len(b))*float64(clientBaud)/float64(baud))))
	return Garbage(rng, n)[:n]
}
