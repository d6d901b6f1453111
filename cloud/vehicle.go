package cloud

import (
	"context"
	"time"
)

// Vehicle is a vehicle the cloud has received data from.
type Vehicle struct {
	ID string
	// FirstSeen and LastSeen are when the cloud first and last committed a
	// batch from the vehicle (arrival time, not record time).
	FirstSeen time.Time
	LastSeen  time.Time
	// Position is the vehicle's latest fix by record time; nil before the first
	// one. Late history never replaces it with an older fix.
	Position *Position
}

// VehicleService reads vehicles.
type VehicleService interface {
	// FindVehicleByID returns the vehicle, or an error with code ENOTFOUND.
	FindVehicleByID(ctx context.Context, id string) (*Vehicle, error)
	// FindVehicles returns every vehicle, ordered by id.
	FindVehicles(ctx context.Context) ([]*Vehicle, error)
}

// VehicleState is a vehicle's live state as the live store (Redis) keeps it:
// its newest fix by record time and when that was written.
type VehicleState struct {
	VehicleID string
	Position  Position
	UpdatedAt time.Time // arrival of the batch that carried Position
	// ClockLimit, when set, is the latest record time a sane state may
	// carry: a stored state stamped after it gives way to this one.
	ClockLimit time.Time
}

// LiveState keeps each vehicle's latest state for the live map and stream.
// Implementations are safe for concurrent use.
type LiveState interface {
	// UpdateLatest records each state whose position time is newer than the
	// one stored for its vehicle and announces it to live subscribers; older
	// or equal ones are ignored, so replays and late history never move a
	// vehicle backwards (unless the stored one is stamped after the new
	// state's ClockLimit: a clock far ahead never pins a vehicle). It returns an error with code EUNAVAILABLE when the
	// store cannot be reached.
	UpdateLatest(ctx context.Context, states []VehicleState) error
}
