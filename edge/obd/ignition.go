package obd

import "fmt"

// Ignition defaults.
const (
	// DefaultOnVoltage is the supply voltage above which the alternator is
	// charging: the engine runs. A resting 12 V battery reads 12.2-12.8 V.
	DefaultOnVoltage = 13.2
	// DefaultOffAfter is how many observations in a row must say "not
	// running" before the ignition is taken to be off.
	DefaultOffAfter = 3
)

// IgnitionState is what Ignition believes.
type IgnitionState uint8

// Ignition states.
const (
	IgnitionUnknown IgnitionState = iota
	IgnitionOn
	IgnitionOff
)

func (s IgnitionState) String() string {
	switch s {
	case IgnitionOn:
		return "on"
	case IgnitionOff:
		return "off"
	}
	return "unknown"
}

// Evidence is what one polling round (or one check while the ignition is off)
// saw.
type Evidence struct {
	Answered bool // some ECU answered a Mode 01 request with data
	Silent   bool // requests were made and no ECU answered any
	HasRPM   bool
	RPM      float64 // PID 0C, when HasRPM
	HasVolts bool
	Volts    float64 // ATRV, when HasVolts
}

func (e Evidence) String() string {
	s := ""
	if e.HasRPM {
		s += fmt.Sprintf("rpm %g", e.RPM)
	}
	if e.HasVolts {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%.1f V", e.Volts)
	}
	if e.Silent {
		if s != "" {
			s += ", "
		}
		s += "ECU silent"
	}
	return s
}

// Ignition infers whether the engine runs, the ignition as a telematics unit
// sees it, from engine speed and supply voltage: running when the engine
// turns (RPM > 0) or the alternator charges (voltage at or above OnVoltage);
// stopped when neither holds and the engine reads 0 rpm or no ECU answers,
// OffAfter times in a row. Anything else (an ECU answers, but neither RPM nor
// voltage is known) changes nothing. The zero value uses the defaults. It
// is not safe for concurrent use.
type Ignition struct {
	OnVoltage float64 // DefaultOnVoltage if 0
	OffAfter  int     // DefaultOffAfter if 0

	state   IgnitionState
	stopped int
}

// State returns the current belief.
func (g *Ignition) State() IgnitionState { return g.state }

// Observe feeds one round's evidence and returns the new state and whether
// it changed. The change from unknown to off is a change: the caller decides
// what to report.
func (g *Ignition) Observe(e Evidence) (IgnitionState, bool) {
	onV := g.OnVoltage
	if onV <= 0 {
		onV = DefaultOnVoltage
	}
	after := g.OffAfter
	if after <= 0 {
		after = DefaultOffAfter
	}
	running := (e.HasRPM && e.RPM > 0) || (e.HasVolts && e.Volts >= onV)
	stopped := !running && (e.Silent || (e.HasRPM && e.RPM == 0))
	old := g.state
	switch {
	case running:
		g.stopped = 0
		g.state = IgnitionOn
	case stopped:
		g.stopped++
		if g.stopped >= after {
			g.state = IgnitionOff
		}
	}
	return g.state, g.state != old
}
