package edge

import "time"

// FixState is what the agent knows of its GNSS fix, for the status report and the
// metrics: the current mode and, while there is no fix, since when.
type FixState struct {
	Mode       int32     // telemetry.ModeNoFix, Mode2D or Mode3D; 0 before the receiver said anything
	NoFixSince time.Time // zero while there is a fix
	LastFix    time.Time // receiver time of the last valid fix; zero if none yet
}

// FixReporter is implemented by the GPS source. FixState is safe to call from any
// goroutine while the source runs.
type FixReporter interface {
	FixState() FixState
}

// AdapterState is what the agent knows of its OBD adapter and the bus behind
// it, for the status report and the metrics.
type AdapterState struct {
	// Vehicle is what the last protocol search found: VehicleAnswered,
	// VehicleNone (no ECU answered: ignition off, or no vehicle),
	// VehicleBusFault (the bus cannot be used: wiring, bus), or "" before
	// the adapter answered at all.
	Vehicle string
	Detail  string // the evidence: the adapter's reply, e.g. "CAN ERROR"
	// SupplyMissing: ATRV reads 0.0V, the adapter is not powered from the
	// vehicle, and its voltage says nothing of the ignition.
	SupplyMissing bool
	Since         time.Time // when Vehicle last changed, agent clock
}

// Adapter states (AdapterState.Vehicle).
const (
	VehicleAnswered = "answered"
	VehicleNone     = "none"
	VehicleBusFault = "bus_fault"
)

// String returns the state as the status report carries it, e.g.
// "bus_fault: CAN ERROR; supply missing"; "" before the adapter answered.
func (a AdapterState) String() string {
	s := a.Vehicle
	if a.Detail != "" && a.Vehicle != VehicleAnswered {
		s += ": " + a.Detail
	}
	if a.SupplyMissing {
		if s != "" {
			s += "; "
		}
		s += "supply missing"
	}
	return s
}

// AdapterReporter is implemented by the OBD source. AdapterState is safe to
// call from any goroutine while the source runs.
type AdapterReporter interface {
	AdapterState() AdapterState
}
