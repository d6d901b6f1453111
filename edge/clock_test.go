package edge_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

// fakeSystem is an injected system clock and kernel synchronisation state.
type fakeSystem struct {
	now    time.Time
	synced bool
	err    error
	asked  int
}

func (f *fakeSystem) Now() time.Time { return f.now }
func (f *fakeSystem) Synced() (bool, error) {
	f.asked++
	return f.synced, f.err
}

// A gateway that booted with its clock at the image's build date, three
// hours and twenty minutes behind, then GNSS fixes that reach the agent
// 100 to 800 ms after their time.
func TestClockStampsFromGNSSWhileUnsynchronised(t *testing.T) {
	boot := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	const behind = 3*time.Hour + 20*time.Minute
	sys := &fakeSystem{now: boot}
	var c edge.Counters
	clock := &edge.Clock{Now: sys.Now, Synced: sys.Synced, Counters: &c}

	if got, src := clock.Stamp(sys.now); !got.Equal(sys.now) || src != edge.TimeUnsynced {
		t.Errorf("before any fix: %v %v, want the system clock, unsynced", got, src)
	}
	for i, delay := range []time.Duration{300, 100, 800, 250} {
		sys.now = boot.Add(time.Duration(i)*time.Second + delay*time.Millisecond)
		clock.Observe(boot.Add(behind+time.Duration(i)*time.Second), sys.now)
	}
	// The fix that came fastest (100 ms) gives the offset.
	sys.now = boot.Add(10 * time.Second)
	got, src := clock.Stamp(sys.now)
	if want := sys.now.Add(behind - 100*time.Millisecond); !got.Equal(want) || src != edge.TimeGNSS {
		t.Errorf("stamp %v %v, want %v gnss", got, src, want)
	}
	st := clock.State()
	if st.Source != edge.TimeGNSS || st.Synced || !st.OffsetKnown || st.Offset != behind-100*time.Millisecond {
		t.Errorf("state %+v", st)
	}

	// GNSS time running at five times the rate (a simulator) is not taken.
	fast := &edge.Clock{Now: sys.Now, Synced: sys.Synced}
	for i := range 10 {
		at := boot.Add(time.Duration(i) * time.Second)
		fast.Observe(boot.Add(behind+5*time.Duration(i)*time.Second), at)
	}
	if st := fast.State(); st.OffsetKnown || st.Source != edge.TimeUnsynced {
		t.Errorf("fast GNSS time: %+v, want no offset", st)
	}

	// NTP synchronises the clock: the kernel says so and the fixes agree.
	sys.synced = true
	sys.now = sys.now.Add(behind)
	for i := range 3 {
		sys.now = sys.now.Add(time.Second)
		clock.Observe(sys.now.Add(-200*time.Millisecond), sys.now)
		if i < 2 {
			if _, src := clock.Stamp(sys.now); src != edge.TimeGNSS {
				t.Errorf("after %d agreeing fixes: %v, want gnss until %d", i+1, src, 3)
			}
		}
	}
	if got, src := clock.Stamp(sys.now); !got.Equal(sys.now) || src != edge.TimeSystem {
		t.Errorf("synchronised: %v %v, want the system clock", got, src)
	}
	if n := c.Snapshot()["clock.steps"]; n != 1 {
		t.Errorf("clock.steps = %d, want 1", n)
	}
}

func TestClockSynchronisedButWrong(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration // GNSS minus system clock
		want   edge.TimeSource
	}{
		{"within the delay of a fix", -700 * time.Millisecond, edge.TimeSystem},
		{"ahead by less than the bound", 1500 * time.Millisecond, edge.TimeSystem},
		{"a few seconds off", 5 * time.Second, edge.TimeGNSS},
		{"a day ahead", -24 * time.Hour, edge.TimeGNSS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := &fakeSystem{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), synced: true}
			clock := &edge.Clock{Now: sys.Now, Synced: sys.Synced}
			for range 3 {
				sys.now = sys.now.Add(time.Second)
				clock.Observe(sys.now.Add(tt.offset), sys.now)
			}
			got, src := clock.Stamp(sys.now)
			want := sys.now
			if tt.want == edge.TimeGNSS {
				want = sys.now.Add(tt.offset)
			}
			if src != tt.want || !got.Equal(want) {
				t.Errorf("%v %v, want %v %v", got, src, want, tt.want)
			}
		})
	}
}

// One fix far from the learned offset (a fix replayed from a port's buffer
// after a reconnection) changes nothing.
func TestClockIgnoresAnOutlier(t *testing.T) {
	sys := &fakeSystem{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	clock := &edge.Clock{Now: sys.Now, Synced: sys.Synced}
	for _, off := range []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour - 40*time.Second, time.Hour} {
		sys.now = sys.now.Add(time.Second)
		clock.Observe(sys.now.Add(off), sys.now)
	}
	if got, _ := clock.Stamp(sys.now); !got.Equal(sys.now.Add(time.Hour)) {
		t.Errorf("stamp %v, want the offset of the agreeing fixes", got)
	}
}

// The kernel is asked at most every SyncEvery; a failure to ask is counted
// and keeps the last answer.
func TestClockAsksTheKernelSparingly(t *testing.T) {
	sys := &fakeSystem{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), synced: true}
	var c edge.Counters
	clock := &edge.Clock{Now: sys.Now, Synced: sys.Synced, SyncEvery: time.Second, Counters: &c}
	for range 10 {
		clock.Stamp(sys.now)
		sys.now = sys.now.Add(200 * time.Millisecond)
	}
	if sys.asked != 2 {
		t.Errorf("asked the kernel %d times in 2 s, want 2", sys.asked)
	}
	sys.err = errors.New("adjtimex: operation not permitted")
	sys.synced = false
	sys.now = sys.now.Add(2 * time.Second)
	if _, src := clock.Stamp(sys.now); src != edge.TimeSystem {
		t.Errorf("after a failed read: %v, want the last answer (system)", src)
	}
	if n := c.Snapshot()["clock.sync_errors"]; n != 1 {
		t.Errorf("clock.sync_errors = %d, want 1", n)
	}
}

// A nil Clock stamps with the system clock.
func TestNilClock(t *testing.T) {
	var clock *edge.Clock
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for range 3 {
		clock.Observe(now.Add(time.Hour), now)
	}
	if got, src := clock.Stamp(now); !got.Equal(now) || src != edge.TimeSystem {
		t.Errorf("%v %v", got, src)
	}
}
