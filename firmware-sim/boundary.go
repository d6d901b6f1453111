package firmwaresim

import (
	"slices"
	"time"
)

// BoundaryKind says what changed at a Boundary.
type BoundaryKind string

// Boundary kinds.
const (
	IgnitionOn  BoundaryKind = "ignition_on"  // the engine starts (at Start, and at the end of a halt with the engine off)
	IgnitionOff BoundaryKind = "ignition_off" // the engine stops (a halt with the engine off, or Stop)
	StopBegin   BoundaryKind = "stop_begin"   // a halt on schedule begins: the vehicle stands
	StopEnd     BoundaryKind = "stop_end"     // the halt ends: the driver may leave
)

// Boundary is a change of the vehicle's engine or motion on schedule: the
// trip boundaries the ground truth records. Traffic lights are not
// boundaries.
type Boundary struct {
	At        time.Time
	Kind      BoundaryKind
	EngineOff bool // for StopBegin and StopEnd: the engine is off while standing
}

// Boundaries returns the boundaries of a drive with this configuration, in
// time order: the engine started at Start, the halts (a halt with the
// engine off stops and restarts it), and the engine stopped at Stop. What
// Stop cuts short does not happen. A halt of no length (an ignition_off
// fault without a duration) never ends. The model's State follows them: the
// engine is off, and the vehicle stands, from each boundary's At on.
func (c Config) Boundaries() []Boundary {
	if !c.Stop.IsZero() && !c.Start.Before(c.Stop) {
		return nil
	}
	out := []Boundary{{At: c.Start, Kind: IgnitionOn}}
	for _, h := range c.Halts {
		if !c.Stop.IsZero() && !h.At.Before(c.Stop) {
			break
		}
		out = append(out, Boundary{At: h.At, Kind: StopBegin, EngineOff: h.EngineOff})
		if h.EngineOff {
			out = append(out, Boundary{At: h.At, Kind: IgnitionOff})
		}
		end := h.At.Add(h.For)
		if h.For == 0 || (!c.Stop.IsZero() && !end.Before(c.Stop)) {
			if h.For == 0 || h.EngineOff {
				return out // standing for good, or the engine already off at Stop
			}
			break
		}
		if h.EngineOff {
			out = append(out, Boundary{At: end, Kind: IgnitionOn})
		}
		out = append(out, Boundary{At: end, Kind: StopEnd, EngineOff: h.EngineOff})
	}
	if !c.Stop.IsZero() {
		out = append(out, Boundary{At: c.Stop, Kind: IgnitionOff})
	}
	slices.SortStableFunc(out, func(a, b Boundary) int { return a.At.Compare(b.At) })
	return out
}
