package edge

import (
	"sync"
	"time"
)

// TimeSource says where the time of a record the agent stamps itself (an OBD
// sample, an event) came from. Positions always carry the receiver's time.
type TimeSource uint8

// Time sources.
const (
	// TimeSystem: the system clock, which the kernel says is synchronised
	// (or, with no way to ask, is taken to be) and GNSS time does not
	// contradict.
	TimeSystem TimeSource = iota
	// TimeGNSS: the system clock corrected by its offset from GNSS time,
	// because it is not synchronised or is off by more than MaxSkew.
	TimeGNSS
	// TimeUnsynced: the system clock, not synchronised, with no GNSS time
	// yet to correct it: it may be hours or days off.
	TimeUnsynced
)

func (s TimeSource) String() string {
	switch s {
	case TimeSystem:
		return "system"
	case TimeGNSS:
		return "gnss"
	case TimeUnsynced:
		return "unsynced"
	}
	return "unknown"
}

// Clock defaults.
const (
	// DefaultMaxSkew is how far the system clock may be from GNSS time
	// before records are stamped from GNSS time even though the kernel
	// says the clock is synchronised. A fix reaches the agent up to about
	// a second after its time (the receiver's output, the serial line), so
	// a smaller bound would flag a good clock.
	DefaultMaxSkew = 2 * time.Second
	// DefaultSyncEvery is how often the kernel's synchronisation state is
	// read.
	DefaultSyncEvery = time.Second
	// offsetWindow is how many of the latest fixes the offset is taken
	// from: the largest of them, the fix that reached the agent fastest.
	offsetWindow = 8
	// stepAfter is how many fixes in a row must agree on a new offset
	// before the old one is given up (the system clock was set, or the
	// receiver's clock stepped).
	stepAfter = 3
)

// Clock stamps the records the agent times itself. On a gateway without a
// real-time clock the system clock starts where it stopped, or at the
// build date, and may never be synchronised; the GNSS receiver's time is
// right from its first fix. The Clock learns the offset of the system clock
// from GNSS time (Observe, for every fix) and, while the kernel says the
// system clock is not synchronised or it is more than MaxSkew off, stamps
// from GNSS time: the system clock plus that offset. Without a fix yet it
// stamps with the system clock and says so (TimeUnsynced).
//
// The offset of one fix is its time minus the system clock when it was read;
// the delay from the receiver's epoch to the agent makes it smaller than
// the truth, so the Clock keeps the largest of the latest fixes. The first
// offset, and one that differs from it by more than MaxSkew, is taken only
// when stepAfter fixes in a row agree on it (a change is counted as
// clock.steps): one stray fix (replayed from a port's buffer) changes
// nothing, and GNSS time that does not run at the rate of the system clock
// (a simulator, a replayed log) is never used. A step of the system clock
// itself (the wall clock moving against the monotonic one) shifts the
// offset at once.
//
// A nil *Clock stamps with the system clock (TimeSystem). Its methods are
// safe for concurrent use.
type Clock struct {
	// Now reads the system clock; nil means time.Now.
	Now func() time.Time
	// Synced reports whether the kernel says the system clock is
	// synchronised (see edge/cmd/edge-agent's adjtimex reader); nil means
	// it always is.
	Synced func() (bool, error)
	// MaxSkew: see DefaultMaxSkew; 0 means the default.
	MaxSkew time.Duration
	// SyncEvery: see DefaultSyncEvery; 0 means the default.
	SyncEvery time.Duration
	// Counters, if set, count clock.steps and clock.sync_errors.
	Counters *Counters

	mu         sync.Mutex
	offsets    [offsetWindow]time.Duration
	n          int // offsets held
	next       int // where the next goes
	offset     time.Duration
	haveOffset bool
	lastFix    time.Time // system clock at the last fix
	candidate  []time.Duration
	synced     bool
	syncKnown  bool
	syncAt     time.Time
	ref        time.Time // last reading, with its monotonic clock
}

// ClockState is the Clock at one moment, for the status report and the
// metrics.
type ClockState struct {
	Source      TimeSource    // what a record stamped now would get
	Synced      bool          // the kernel says the system clock is synchronised
	OffsetKnown bool          // a fix has given an offset
	Offset      time.Duration // GNSS time minus the system clock
	LastFix     time.Time     // system clock at the last fix observed
}

// Observe learns from a fix: gnss is the fix's time, at the system clock
// when its last sentence was read.
func (c *Clock) Observe(gnss, at time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stepped(at)
	off := gnss.Sub(at)
	c.lastFix = at
	if c.haveOffset && within(off, c.offset, c.maxSkew()) {
		c.candidate = c.candidate[:0]
		c.add(off)
		return
	}
	// A first offset, or one far from the last: taken when stepAfter fixes
	// in a row agree on it within half of MaxSkew (the spread of the delay
	// of fixes), which GNSS time that does not run at the system clock's
	// rate (a simulator, a replayed log) never does.
	if len(c.candidate) > 0 && !within(off, c.candidate[0], c.maxSkew()/2) {
		c.candidate = c.candidate[:0]
	}
	if c.candidate = append(c.candidate, off); len(c.candidate) < stepAfter {
		return
	}
	if c.haveOffset {
		c.count("clock.steps")
	}
	c.reset(c.candidate[0])
	for _, o := range c.candidate[1:] {
		c.add(o)
	}
	c.candidate = c.candidate[:0]
}

func within(a, b, d time.Duration) bool { return a-b <= d && b-a <= d }

func (c *Clock) reset(off time.Duration) {
	c.n, c.next, c.haveOffset = 0, 0, true
	c.add(off)
}

func (c *Clock) add(off time.Duration) {
	c.offsets[c.next] = off
	c.next = (c.next + 1) % offsetWindow
	c.n = min(c.n+1, offsetWindow)
	c.offset = c.offsets[0]
	for _, o := range c.offsets[1:c.n] {
		c.offset = max(c.offset, o)
	}
}

// stepped shifts the offset by a step of the system clock seen between the
// last reading and now: the wall clock moving by more than the monotonic
// clock did (only readings that carry a monotonic clock show it).
func (c *Clock) stepped(now time.Time) {
	ref := c.ref
	c.ref = now
	if ref.IsZero() {
		return
	}
	step := now.Round(0).Sub(ref.Round(0)) - now.Sub(ref)
	if step > 100*time.Millisecond || step < -100*time.Millisecond {
		c.count("clock.steps")
		for i := range c.n {
			c.offsets[i] -= step
		}
		c.offset -= step
		for i := range c.candidate {
			c.candidate[i] -= step
		}
	}
}

// Stamp returns the time to stamp a record with, for a reading of the
// system clock taken when the record was made, and where that time came
// from.
func (c *Clock) Stamp(sys time.Time) (time.Time, TimeSource) {
	if c == nil {
		return sys, TimeSystem
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	src := c.source(c.now())
	if src == TimeGNSS {
		return sys.Add(c.offset), src
	}
	return sys, src
}

// StampNow is Stamp of the system clock now.
func (c *Clock) StampNow() (time.Time, TimeSource) {
	if c == nil {
		return time.Now(), TimeSystem
	}
	return c.Stamp(c.now())
}

// State returns the clock's state now.
func (c *Clock) State() ClockState {
	if c == nil {
		return ClockState{Synced: true}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	src := c.source(c.now())
	return ClockState{Source: src, Synced: c.synced, OffsetKnown: c.haveOffset, Offset: c.offset, LastFix: c.lastFix}
}

// source decides where a stamp comes from now; c.mu is held.
func (c *Clock) source(now time.Time) TimeSource {
	c.stepped(now)
	c.readSync(now)
	off := c.offset
	switch {
	case c.haveOffset && (!c.synced || off > c.maxSkew() || off < -c.maxSkew()):
		return TimeGNSS
	case !c.synced:
		return TimeUnsynced
	}
	return TimeSystem
}

// readSync asks the kernel, at most every SyncEvery. A failure keeps the
// last answer (synchronised before the first) and is counted.
func (c *Clock) readSync(now time.Time) {
	if c.Synced == nil {
		c.synced, c.syncKnown = true, true
		return
	}
	every := c.SyncEvery
	if every <= 0 {
		every = DefaultSyncEvery
	}
	if c.syncKnown && now.Sub(c.syncAt) < every && now.Sub(c.syncAt) >= 0 {
		return
	}
	c.syncAt = now
	ok, err := c.Synced()
	if err != nil {
		c.count("clock.sync_errors")
		if !c.syncKnown {
			c.synced, c.syncKnown = true, true
		}
		return
	}
	c.synced, c.syncKnown = ok, true
}

func (c *Clock) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Clock) maxSkew() time.Duration {
	if c.MaxSkew > 0 {
		return c.MaxSkew
	}
	return DefaultMaxSkew
}

func (c *Clock) count(name string) {
	if c.Counters != nil {
		c.Counters.Inc(name)
	}
}
