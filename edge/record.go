package edge

import (
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Kind says which of a Record's values is set.
type Kind uint8

// Record kinds.
const (
	KindPosition Kind = iota + 1
	KindOBD
	KindEvent
)

func (k Kind) String() string {
	switch k {
	case KindPosition:
		return "position"
	case KindOBD:
		return "obd"
	case KindEvent:
		return "event"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Record is one reading on its way from a source through the outbox to the
// cloud. Exactly one of Position, OBD and Event is meaningful, as Kind says. The
// outbox assigns the sequence number (in the value's Seq field) when it stores
// the record; sources leave it zero.
type Record struct {
	Kind     Kind
	Position telemetry.Position
	OBD      telemetry.OBDSample
	Event    telemetry.Event
	// Time says where the time of an OBD sample or event came from (see
	// Clock); positions carry the receiver's time and leave it TimeSystem.
	Time TimeSource
}

// Stamped returns r with its time set from a Clock stamp.
func (r Record) Stamped(t time.Time, src TimeSource) Record {
	switch r.Kind {
	case KindOBD:
		r.OBD.UnixMs = t.UnixMilli()
	case KindEvent:
		r.Event.UnixMs = t.UnixMilli()
	default:
		return r
	}
	r.Time = src
	return r
}

// PositionRecord wraps a fix.
func PositionRecord(p telemetry.Position) Record { return Record{Kind: KindPosition, Position: p} }

// OBDRecord wraps an OBD-II sample.
func OBDRecord(s telemetry.OBDSample) Record { return Record{Kind: KindOBD, OBD: s} }

// EventRecord wraps an event.
func EventRecord(e telemetry.Event) Record { return Record{Kind: KindEvent, Event: e} }

// Seq returns the record's sequence number (0 before the outbox assigned one).
func (r *Record) Seq() uint64 {
	switch r.Kind {
	case KindPosition:
		return r.Position.Seq
	case KindOBD:
		return r.OBD.Seq
	case KindEvent:
		return r.Event.Seq
	}
	return 0
}

// SetSeq sets the record's sequence number; the outbox calls it.
func (r *Record) SetSeq(seq uint64) {
	switch r.Kind {
	case KindPosition:
		r.Position.Seq = seq
	case KindOBD:
		r.OBD.Seq = seq
	case KindEvent:
		r.Event.Seq = seq
	}
}

// UnixMs returns the record's time in milliseconds since the Unix epoch.
func (r *Record) UnixMs() int64 {
	switch r.Kind {
	case KindPosition:
		return r.Position.UnixMs
	case KindOBD:
		return r.OBD.UnixMs
	case KindEvent:
		return r.Event.UnixMs
	}
	return 0
}

// AddTo appends the record to the batch's list of its kind, and its seq to
// the batch's ranges of its time source (consecutive seqs added in order
// share a range).
func (r *Record) AddTo(b *telemetry.Batch) {
	switch r.Kind {
	case KindPosition:
		b.Positions = append(b.Positions, r.Position)
	case KindOBD:
		b.OBD = append(b.OBD, r.OBD)
	case KindEvent:
		b.Events = append(b.Events, r.Event)
	}
	switch r.Time {
	case TimeGNSS:
		b.GNSSTime = telemetry.AddSeq(b.GNSSTime, r.Seq())
	case TimeUnsynced:
		b.UnsyncedTime = telemetry.AddSeq(b.UnsyncedTime, r.Seq())
	}
}
