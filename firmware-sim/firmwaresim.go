// Package firmwaresim is the simulator's deterministic vehicle model: routes,
// speed, engine state and the faults of scenarios, advanced by simulated time the
// caller supplies. It does no I/O; the GPS and ELM327 emulations and the
// transports (pty, TCP) live in subpackages, and firmware-sim/cmd wires them.
//
// The same Config (route, seed, start) always gives the same State at the same
// simulated time, however the caller slices time into calls to AdvanceTo: two
// Vehicles built from one Config tell the same story, so the GPS receiver and the
// ELM327 adapter of one simulated vehicle can each own a copy and never share a
// lock.
package firmwaresim

import (
	"context"
	"errors"
	"time"
)

// ErrLinkDown is wrapped by the errors of a device's link (a pty, a TCP port)
// when the bytes did not reach a client because the link is down: the device
// is unplugged, or its TCP client went away. Writing later may succeed; an
// emulated device treats it as output lost on the wire, not as a failure.
var ErrLinkDown = errors.New("link down")

// Clock tells simulated time. The command's clock runs it at a multiple of real
// time; tests use clocks that never sleep.
type Clock interface {
	// Now returns the current simulated time. It is safe for concurrent use.
	Now() time.Time
	// SleepUntil blocks until simulated time reaches t, or until ctx is done,
	// in which case it returns ctx.Err(). It returns at once when t is past.
	SleepUntil(ctx context.Context, t time.Time) error
}
