package cloud

import (
	"context"
	"time"
)

// OBDSample is one stored OBD-II reading.
type OBDSample struct {
	VehicleID string
	StreamID  uint64
	Seq       uint64
	Time      time.Time
	PID       uint16  // mode << 8 | pid, e.g. 0x010C
	Value     float64 // in the unit SAE J1979 gives the PID
}

// Cursor returns the keyset position just after s.
func (s *OBDSample) Cursor() Cursor { return Cursor{Time: s.Time, StreamID: s.StreamID, Seq: s.Seq} }

// OBDFilter selects a vehicle's OBD samples like PositionFilter; PID, when not
// zero, keeps only that PID (mode << 8 | pid).
type OBDFilter struct {
	VehicleID string
	From, To  time.Time
	PID       uint16
	After     *Cursor
	Limit     int
}

// OBDService reads stored OBD samples.
type OBDService interface {
	// FindOBDSamples returns one page of samples and the cursor of the next
	// page, nil when this page is the last. It returns an error with code
	// ENOTFOUND for an unknown vehicle.
	FindOBDSamples(ctx context.Context, f OBDFilter) ([]*OBDSample, *Cursor, error)
}
