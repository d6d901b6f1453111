package cloud

import (
	"context"
	"time"
)

// StoredDeadLetter is a dead letter as an administrator lists it: what was
// refused, why, and how big it was.
type StoredDeadLetter struct {
	ID           int64
	Topic        string
	VehicleID    string // "" when the topic had none
	StreamID     uint64 // 0 when the payload did not decode
	Reason       string
	PayloadBytes int
	ReceivedAt   time.Time
}

// DeadLetterFilter selects one page of dead letters, newest first.
type DeadLetterFilter struct {
	VehicleID string // "" for any
	Reason    string // a prefix of the reason; "" for any
	After     *Cursor
	Limit     int
}

// Cursor returns the keyset position just after d (newest first: Seq holds
// its id).
func (d *StoredDeadLetter) Cursor() Cursor { return Cursor{Time: d.ReceivedAt, Seq: uint64(d.ID)} }

// DeadLetterService reads the dead letters.
type DeadLetterService interface {
	// FindDeadLetters returns one page of dead letters, newest first, and
	// the cursor of the next page, nil on the last.
	FindDeadLetters(ctx context.Context, f DeadLetterFilter) ([]*StoredDeadLetter, *Cursor, error)
}
