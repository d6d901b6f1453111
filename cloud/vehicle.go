package cloud

import (
	"context"
	"time"
)

// Vehicle is a vehicle the cloud has received data or a status from.
type Vehicle struct {
	ID string
	// FirstSeen and LastSeen are when the cloud first and last heard from
	// the vehicle: a batch committed (arrival time) or a status (the
	// agent's time of the report, so that a retained status the broker
	// hands again does not make a vehicle gone for long look alive).
	FirstSeen time.Time
	LastSeen  time.Time
	// Position is the vehicle's latest fix by record time; nil before the first
	// one. Late history never replaces it with an older fix.
	Position *Position
	// Device is the agent's latest status; nil before the first.
	Device *DeviceStatus
	// TroubleCodes are the trouble codes set and not cleared since, by code.
	TroubleCodes []TroubleCode
	// DistanceM is the distance from the point of VehicleFilter.Near, when
	// the list was asked for with one.
	DistanceM *float64
}

// BBox is a bounding box in WGS-84 degrees. MinLon > MaxLon crosses the
// antimeridian.
type BBox struct {
	MinLon, MinLat, MaxLon, MaxLat float64
}

// Contains reports whether (lat, lon) is inside the box, edges included.
func (b BBox) Contains(lat, lon float64) bool {
	if lat < b.MinLat || lat > b.MaxLat {
		return false
	}
	if b.MinLon <= b.MaxLon {
		return lon >= b.MinLon && lon <= b.MaxLon
	}
	return lon >= b.MinLon || lon <= b.MaxLon
}

// Circle is a point and a radius in metres.
type Circle struct {
	Lat, Lon float64
	RadiusM  float64
}

// VehicleFilter selects vehicles, ordered by id, starting after After when
// set, at most Limit of them.
type VehicleFilter struct {
	Online *bool    // by the latest status; a vehicle without one is offline
	BBox   *BBox    // by the latest position
	Near   *Circle  // by the latest position
	IDs    []string // only these (nil: any)
	After  string
	Limit  int
}

// VehicleService reads vehicles.
type VehicleService interface {
	// FindVehicleByID returns the vehicle with its latest position, status
	// and trouble codes, or an error with code ENOTFOUND.
	FindVehicleByID(ctx context.Context, id string) (*Vehicle, error)
	// FindVehicles returns one page of the vehicles f selects, ordered by
	// id, and whether more follow.
	FindVehicles(ctx context.Context, f VehicleFilter) (vs []*Vehicle, more bool, err error)
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

// LiveReader reads the live store: the latest state of vehicles and the
// GEO index. Implementations are safe for concurrent use.
type LiveReader interface {
	// LatestStates returns the stored state of each of ids that has one. It
	// returns an error with code EUNAVAILABLE when the store cannot be
	// reached.
	LatestStates(ctx context.Context, ids []string) (map[string]*VehicleState, error)
	// Nearby returns the vehicles whose latest position is within c, with
	// their distance in metres; EUNAVAILABLE as above.
	Nearby(ctx context.Context, c Circle) (map[string]float64, error)
	// InBox returns the vehicles whose latest position is within b;
	// EUNAVAILABLE as above.
	InBox(ctx context.Context, b BBox) ([]string, error)
}
