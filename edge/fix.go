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
