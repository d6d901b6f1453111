package cloud

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Event is one stored event of a vehicle: something that happened on it or
// in its agent (ignition, a trouble code set or cleared, a fix lost, ...).
type Event struct {
	VehicleID string
	StreamID  uint64
	Seq       uint64
	Time      time.Time
	Type      telemetry.EventType
	Code      string // e.g. the trouble code of dtc_set
	Detail    string
	Value     int64
}

// Cursor returns the keyset position just after e.
func (e *Event) Cursor() Cursor { return Cursor{Time: e.Time, StreamID: e.StreamID, Seq: e.Seq} }

// EventTypeName returns the API's name of an event type: the wire enum's
// name without its prefix, in lower case ("dtc_set"); "unknown_N" for a
// value this server does not know.
func EventTypeName(t telemetry.EventType) string {
	name, ok := telemetrypb.EventType_name[int32(t)]
	if !ok || t == 0 {
		return "unknown_" + strconv.Itoa(int(t))
	}
	return strings.ToLower(strings.TrimPrefix(name, "EVENT_TYPE_"))
}

// ParseEventType reads a name EventTypeName returns for a known type;
// anything else is EINVALID.
func ParseEventType(s string) (telemetry.EventType, error) {
	v, ok := telemetrypb.EventType_value["EVENT_TYPE_"+strings.ToUpper(s)]
	if !ok || v == 0 || strings.ToLower(s) != s {
		return 0, Errorf(EINVALID, "event type %q: want one of %s", s, strings.Join(EventTypeNames(), ", "))
	}
	return telemetry.EventType(v), nil
}

// EventTypeNames lists the names of the known event types, in wire order.
func EventTypeNames() []string {
	var out []string
	for v := int32(1); ; v++ {
		if _, ok := telemetrypb.EventType_name[v]; !ok {
			return out
		}
		out = append(out, EventTypeName(telemetry.EventType(v)))
	}
}

// EventFilter selects a vehicle's events like PositionFilter; Types, when
// not empty, keeps only those types.
type EventFilter struct {
	VehicleID string
	From, To  time.Time
	Types     []telemetry.EventType
	After     *Cursor
	Limit     int
}

// TroubleCode is a diagnostic trouble code set on a vehicle and not cleared
// since: Since is the time of the event that set it.
type TroubleCode struct {
	Code  string
	Since time.Time
}

// EventService reads stored events.
type EventService interface {
	// FindEvents returns one page of events and the cursor of the next page,
	// nil when this page is the last; ENOTFOUND for an unknown vehicle.
	FindEvents(ctx context.Context, f EventFilter) ([]*Event, *Cursor, error)
	// FindTroubleCodes returns the trouble codes a vehicle has now (set and
	// not cleared since, by the events' record order), by code; ENOTFOUND
	// for an unknown vehicle.
	FindTroubleCodes(ctx context.Context, vehicleID string) ([]TroubleCode, error)
}
