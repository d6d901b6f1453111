package cloud

import (
	"context"
	"time"
)

// Position is one stored GNSS fix. Optional measures are nil when the receiver
// did not report them (the API then omits their keys).
type Position struct {
	VehicleID string
	StreamID  uint64
	Seq       uint64
	Time      time.Time
	Lat, Lon  float64 // WGS-84 degrees

	AltM       *float64 // above mean sea level
	GeoidSepM  *float64
	SpeedMPS   *float64
	CourseDeg  *float64 // true, 0 ≤ x < 360
	Mode       *int     // 1 no fix, 2 2D, 3 3D
	Quality    *int     // GGA quality indicator
	SatsUsed   *int
	SatsInView *int
	HDOP       *float64
	VDOP       *float64
	PDOP       *float64
	ErrLatM    *float64 // 1-sigma error estimates
	ErrLonM    *float64
	ErrAltM    *float64
}

// Cursor returns the keyset position just after p.
func (p *Position) Cursor() Cursor { return Cursor{Time: p.Time, StreamID: p.StreamID, Seq: p.Seq} }

// Page limits.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// PositionFilter selects a vehicle's positions with From ≤ time < To, ordered by
// (time, stream_id, seq), starting after After when set, at most Limit of them.
type PositionFilter struct {
	VehicleID string
	From, To  time.Time
	After     *Cursor
	Limit     int
}

// PositionService reads stored positions.
type PositionService interface {
	// FindPositions returns one page of positions and the cursor of the next
	// page, nil when this page is the last. It returns an error with code
	// ENOTFOUND for an unknown vehicle.
	FindPositions(ctx context.Context, f PositionFilter) ([]*Position, *Cursor, error)
	// EachPosition calls fn with every position of f's window in order
	// (f.After and f.Limit are ignored), reading them from the store as fn
	// consumes them: memory stays flat however many there are. fn's *Position
	// is reused between calls. It stops at fn's first error and returns it;
	// ENOTFOUND for an unknown vehicle (before any call).
	EachPosition(ctx context.Context, f PositionFilter, fn func(*Position) error) error
}

// MaxWindow is the longest time range a history request may ask for.
const MaxWindow = 31 * 24 * time.Hour
