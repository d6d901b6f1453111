package edge

import (
	"context"
	"errors"
	"io"
	"maps"
	"sync/atomic"
)

// Source reads one device and sends what it reads on out. Run returns when ctx is
// done (with ctx.Err()) or when the source cannot go on (a configuration error);
// a device that fails or disappears is reopened with backoff inside Run, not
// reported as an error. Run must not be called twice at once.
type Source interface {
	Run(ctx context.Context, out chan<- Record) error
}

// Device opens the byte stream of one piece of hardware: a serial port, a pty or
// a TCP socket. edge/serial implements it for device URLs. Open returns an error
// wrapping ErrTransient when trying again later may succeed (the device is
// unplugged, the port is busy).
type Device interface {
	Open(ctx context.Context) (io.ReadWriteCloser, error)
	String() string // the device URL, for logs
}

// ErrTransient marks failures that may go away by themselves: a device unplugged,
// a broker unreachable. Callers retry with backoff; errors.Is finds it.
var ErrTransient = errors.New("transient failure")

// Counters are named monotonic counters, e.g. "gps.bad_checksum". They feed the
// metrics endpoint and the status report. The zero value is ready to use and safe
// for concurrent use.
type Counters struct {
	m atomic.Pointer[map[string]*atomic.Uint64]
}

// Add adds n to the counter called name.
func (c *Counters) Add(name string, n uint64) { c.get(name).Add(n) }

// Inc adds one to the counter called name.
func (c *Counters) Inc(name string) { c.get(name).Add(1) }

// Snapshot returns the current values.
func (c *Counters) Snapshot() map[string]uint64 {
	p := c.m.Load()
	if p == nil {
		return map[string]uint64{}
	}
	out := make(map[string]uint64, len(*p))
	for k, v := range *p {
		out[k] = v.Load()
	}
	return out
}

func (c *Counters) get(name string) *atomic.Uint64 {
	for {
		old := c.m.Load()
		if old != nil {
			if v, ok := (*old)[name]; ok {
				return v
			}
		}
		next := map[string]*atomic.Uint64{}
		if old != nil {
			next = maps.Clone(*old)
		}
		v := new(atomic.Uint64)
		next[name] = v
		if c.m.CompareAndSwap(old, &next) {
			return v
		}
	}
}

// Counted is implemented by parts of the agent that keep counters.
type Counted interface {
	Counters() map[string]uint64
}
