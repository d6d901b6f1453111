package gps

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// BaudSetter is implemented by an opened serial port whose line speed can be
// changed (edge/serial's ports); SetBaud also drops input already received.
type BaudSetter interface {
	SetBaud(baud int) error
}

// BaudLister is implemented by a device that knows which line speeds to try
// (edge/serial's devices: the rate a URL names, or a default list).
type BaudLister interface {
	Bauds() []int
}

// Baud detection defaults.
const (
	DefaultLockAfter = 3    // valid sentences in a row that lock a baud rate
	DefaultHuntBytes = 1024 // bytes read at one rate without locking before the next is tried
)

// EventJump is the event type a flagged jump is reported with: code
// "gps.jump", value the distance in metres and detail the distance, time and
// implied speed.
const EventJump = telemetry.EventGPSJump

// Source reads a GNSS receiver and sends a position record per fix. It
// implements edge.Source and edge.FixReporter.
//
// Besides the position records it sends EventGPSFixAcquired and
// EventGPSFixLost when the fix state changes (and EventGPSFixLost when the
// device goes away while there was a fix), an EventJump event for a fix the
// jump rule flags, and the DeviceLoop's connect and disconnect events.
//
// Baud detection: when the opened port implements BaudSetter and there is more
// than one rate to try (Bauds, else the device's BaudLister list), each session
// starts at the rate that last locked (the first one at first) and locks once
// LockAfter valid checksummed sentences arrive in a row; after HuntBytes bytes
// without that it switches to the next rate (gps.baud_switches). A lock counts
// gps.baud_locks. A TCP source has no rate and is not hunted.
//
// Counters, besides the Assembler's and LineReader's (all under "gps."):
// bytes, reconnects (opens after the first), baud_switches, baud_locks, and the
// DeviceLoop's opens, open_errors and disconnects.
type Source struct {
	Device    edge.Device
	Bauds     []int // rates to try; nil: the device's own (BaudLister)
	LockAfter int   // default DefaultLockAfter
	HuntBytes int   // default DefaultHuntBytes
	MaxLine   int   // see NewLineReader
	// Assembler rules; zero values are the Assembler's defaults.
	DateFloor           time.Time
	MaxSpeed, JumpSlack float64
	Talkers             []string // see Assembler.Talkers
	// Clock, if set, learns the offset of the agent's clock from each
	// fix's time (see edge.Clock).
	Clock   *edge.Clock
	Backoff edge.Backoff // between reopens; the zero value is 200ms to 5s
	// StableAfter is how long a session must last for the backoff to start
	// again from its minimum (see edge.DeviceLoop); default 5s.
	StableAfter time.Duration
	Logger      *slog.Logger
	Counters    *edge.Counters
	Now         func() time.Time // agent clock for events and FixState; nil means time.Now

	mu    sync.Mutex
	state edge.FixState
}

var (
	_ edge.Source      = (*Source)(nil)
	_ edge.FixReporter = (*Source)(nil)
)

// FixState returns the fix state: the mode of the last epoch (GSA's, or for a
// receiver that sends no GSA, 3D when the fix has an altitude and 2D when not,
// as gpsd infers it), since when (agent clock) there has been no fix, and the
// receiver time of the last fix. Safe for concurrent use.
func (s *Source) FixState() edge.FixState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Source) setState(f func(*edge.FixState)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

// Run reads the device until ctx is done and returns ctx.Err(). A device that
// fails or ends is reopened with backoff; Run returns early only for a
// configuration error (see edge.DeviceLoop.Run).
func (s *Source) Run(ctx context.Context, out chan<- edge.Record) error {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.setState(func(st *edge.FixState) { *st = edge.FixState{NoFixSince: now()} })
	asm := &Assembler{Counters: s.Counters, DateFloor: s.DateFloor, MaxSpeed: s.MaxSpeed, JumpSlack: s.JumpSlack, Talkers: s.Talkers}
	r := run{s: s, out: out, asm: asm, now: now, log: log}
	loop := edge.DeviceLoop{Device: s.Device, Name: "gps", Backoff: s.Backoff, Logger: s.Logger,
		Counters: s.Counters, Now: s.Now, Clock: s.Clock, StableAfter: s.StableAfter}
	return loop.Run(ctx, out, r.session)
}

// run is the state of one Run that outlives its sessions.
type run struct {
	s        *Source
	out      chan<- edge.Record
	asm      *Assembler
	now      func() time.Time
	log      *slog.Logger
	fix      bool // last epoch state, once known
	known    bool
	sessions int
	baudIdx  int // rate that last locked
}

func (r *run) session(ctx context.Context, rw io.ReadWriter) error {
	r.sessions++
	if r.sessions > 1 {
		r.s.inc("reconnects")
	}
	r.asm.Reset()
	h := r.hunter(rw)
	lr := NewLineReader(h, r.s.MaxLine, r.s.Counters)
	err := r.read(ctx, lr, h)
	if ep, ok := r.asm.Flush(); ok && ctx.Err() == nil {
		if err := r.epoch(ctx, ep); err != nil {
			return err
		}
	}
	if r.known && r.fix && ctx.Err() == nil {
		// The device is gone: so is the fix.
		r.fix = false
		t := r.now()
		r.s.setState(func(st *edge.FixState) { st.Mode, st.NoFixSince = telemetry.ModeNoFix, t })
		if err := edge.Send(ctx, r.out, r.event(telemetry.Event{Type: telemetry.EventGPSFixLost}, t)); err != nil {
			return err
		}
	}
	return err
}

func (r *run) read(ctx context.Context, lr *LineReader, h *hunter) error {
	for {
		line, err := lr.Next()
		if err != nil {
			return err
		}
		h.sentence(line)
		for _, ep := range r.asm.Feed(line) {
			if err := r.epoch(ctx, ep); err != nil {
				return err
			}
		}
	}
}

// epoch sends what a closed epoch yields and updates the fix state.
func (r *run) epoch(ctx context.Context, ep Epoch) error {
	t := r.now()
	if !r.known || ep.Fix != r.fix {
		typ := telemetry.EventGPSFixLost
		if ep.Fix {
			typ = telemetry.EventGPSFixAcquired
		}
		if r.known || ep.Fix {
			if err := edge.Send(ctx, r.out, r.event(telemetry.Event{Type: typ}, t)); err != nil {
				return err
			}
		}
		r.fix, r.known = ep.Fix, true
	}
	if !ep.Fix {
		r.s.setState(func(st *edge.FixState) {
			if st.Mode != telemetry.ModeNoFix || st.NoFixSince.IsZero() {
				st.NoFixSince = t
			}
			st.Mode = telemetry.ModeNoFix
		})
		return nil
	}
	p := ep.Position
	r.s.Clock.Observe(time.UnixMilli(p.UnixMs), t)
	mode := int32(telemetry.Mode2D)
	switch {
	case p.Has&telemetry.HasMode != 0:
		mode = p.Mode
	case p.Has&telemetry.HasAlt != 0:
		mode = telemetry.Mode3D
	}
	r.s.setState(func(st *edge.FixState) {
		st.Mode, st.NoFixSince, st.LastFix = mode, time.Time{}, time.UnixMilli(p.UnixMs).UTC()
	})
	if err := edge.Send(ctx, r.out, edge.PositionRecord(p)); err != nil {
		return err
	}
	if j := ep.Jump; j != nil {
		r.log.Warn("implausible jump", "metres", int64(j.Metres), "elapsed", j.Elapsed)
		ev := telemetry.Event{UnixMs: p.UnixMs, Type: EventJump, Code: "gps.jump", Value: int64(j.Metres),
			Detail: fmt.Sprintf("%.0f m in %s (%.0f m/s)", j.Metres, j.Elapsed, j.Metres/max(j.Elapsed.Seconds(), 0.001))}
		if err := edge.Send(ctx, r.out, edge.EventRecord(ev)); err != nil {
			return err
		}
	}
	return nil
}

// event stamps e, made at t on the agent clock (see edge.Clock).
func (r *run) event(e telemetry.Event, t time.Time) edge.Record {
	return edge.EventRecord(e).Stamped(r.s.Clock.Stamp(t))
}

// hunter counts the bytes read and runs baud detection.
type hunter struct {
	r       io.Reader
	run     *run
	setter  BaudSetter // nil: no detection
	bauds   []int
	idx     int
	locked  bool
	valid   int // valid sentences in a row at this rate
	bytes   int // bytes read at this rate
	lock    int
	window  int
	counter *edge.Counters
}

func (r *run) hunter(rw io.ReadWriter) *hunter {
	h := &hunter{r: rw, run: r, counter: r.s.Counters, lock: r.s.LockAfter, window: r.s.HuntBytes}
	if h.lock <= 0 {
		h.lock = DefaultLockAfter
	}
	if h.window <= 0 {
		h.window = DefaultHuntBytes
	}
	h.bauds = r.s.Bauds
	if h.bauds == nil {
		if bl, ok := r.s.Device.(BaudLister); ok {
			h.bauds = bl.Bauds()
		}
	}
	setter, ok := rw.(BaudSetter)
	if !ok || len(h.bauds) < 2 {
		h.locked = true
		return h
	}
	h.setter = setter
	h.idx = r.baudIdx % len(h.bauds)
	h.set()
	return h
}

// set switches the port to the current rate.
func (h *hunter) set() {
	h.valid, h.bytes = 0, 0
	if err := h.setter.SetBaud(h.bauds[h.idx]); err != nil {
		h.run.log.Warn("cannot set baud rate", "baud", h.bauds[h.idx], "err", err)
	}
}

// Read reads for the LineReader. While hunting, the decision to try the next
// rate is taken here, before reading more: the LineReader asks for more only
// once it has parsed every complete line it holds, so by then every sentence
// read at this rate has been counted (a lock ends the hunt). And a hunting
// read never returns more than what is left of the window, so a large read
// (a pty's buffered backlog) is not charged to the window before its
// sentences are seen; switching rate flushes the port's input.
func (h *hunter) Read(p []byte) (int, error) {
	if !h.locked {
		if h.bytes >= h.window {
			h.idx = (h.idx + 1) % len(h.bauds)
			h.run.s.inc("baud_switches")
			h.run.log.Debug("no NMEA at this baud rate, trying the next", "baud", h.bauds[h.idx])
			h.set()
		}
		if left := h.window - h.bytes; len(p) > left {
			p = p[:left]
		}
	}
	n, err := h.r.Read(p)
	if n > 0 && h.counter != nil {
		h.counter.Add("gps.bytes", uint64(n))
	}
	if !h.locked {
		h.bytes += n
	}
	return n, err
}

// sentence notes a line the LineReader returned, for baud detection.
func (h *hunter) sentence(line string) {
	if h.locked {
		return
	}
	if !checksumOK(line) {
		h.valid = 0
		return
	}
	h.valid++
	if h.valid >= h.lock {
		h.locked = true
		h.run.baudIdx = h.idx
		h.run.s.inc("baud_locks")
		h.run.log.Info("baud rate locked", "baud", h.bauds[h.idx])
	}
}

func (s *Source) inc(name string) {
	if s.Counters != nil {
		s.Counters.Inc("gps." + name)
	}
}
