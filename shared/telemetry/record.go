package telemetry

import (
	"math"

	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Field is a bit set naming the optional fields of a Position that hold a value.
// A field whose bit is clear is unknown: the receiver did not say it.
type Field uint32

// Optional Position fields.
const (
	HasAlt Field = 1 << iota
	HasGeoidSep
	HasSpeed
	HasCourse
	HasMode
	HasQuality
	HasSatsUsed
	HasSatsInView
	HasHDOP
	HasVDOP
	HasPDOP
	HasErrLat
	HasErrLon
	HasErrAlt
)

// Fix modes, as in Position.Mode (the NMEA GSA mode).
const (
	ModeNoFix = 1
	Mode2D    = 2
	Mode3D    = 3
)

// Position is one GNSS fix. Coordinates and measures are integers in the units
// their names give, so that a fix survives the wire exactly: E7 is degrees × 10^7
// (about 1 cm), Cm centimetres, Mmps millimetres per second, Cdeg centidegrees, and
// the DOPs are × 100. Has says which optional fields are known.
type Position struct {
	Seq    uint64 // position in the agent's stream; assigned by the outbox
	UnixMs int64  // UTC time of the fix, milliseconds since the Unix epoch
	LatE7  int32  // WGS-84 latitude
	LonE7  int32  // WGS-84 longitude
	Has    Field

	AltCm      int32 // altitude above mean sea level
	GeoidSepCm int32 // geoid separation (height of the geoid above the ellipsoid)
	SpeedMmps  int32 // speed over ground
	CourseCdeg int32 // course over ground, degrees true × 100, 0 ≤ x < 36000
	Mode       int32 // ModeNoFix, Mode2D or Mode3D
	Quality    int32 // GGA quality: 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning, ...
	SatsUsed   int32
	SatsInView int32
	HDOPc      int32 // horizontal dilution of precision × 100
	VDOPc      int32
	PDOPc      int32
	ErrLatCm   int32 // 1-sigma error estimates (NMEA GST)
	ErrLonCm   int32
	ErrAltCm   int32
}

// Lat returns the latitude in degrees.
func (p *Position) Lat() float64 { return float64(p.LatE7) / 1e7 }

// Lon returns the longitude in degrees.
func (p *Position) Lon() float64 { return float64(p.LonE7) / 1e7 }

// E7 converts degrees to the integer units of Position.LatE7 and LonE7, rounding
// to the nearest unit.
func E7(deg float64) int32 { return int32(math.Round(deg * 1e7)) }

// Scaled converts a measure to integer units, rounding to the nearest: Scaled(12.345, 100) = 1235.
func Scaled(v, unitsPerOne float64) int32 { return int32(math.Round(v * unitsPerOne)) }

// OBDSample is one decoded OBD-II reading.
type OBDSample struct {
	Seq    uint64
	UnixMs int64
	PID    uint16  // mode << 8 | pid, e.g. 0x010C for Mode 01 PID 0C (engine speed)
	Value  float64 // in the engineering unit SAE J1979 gives the PID
}

// Mode returns the OBD service (mode) of the sample's PID, e.g. 0x01.
func (s *OBDSample) Mode() uint8 { return uint8(s.PID >> 8) }

// EventType says what an Event reports; the values are the wire enum's.
type EventType = telemetrypb.EventType

// Event types, re-exported from the schema for readability at call sites.
const (
	EventAgentStarted       = telemetrypb.EventType_EVENT_TYPE_AGENT_STARTED
	EventIgnitionOn         = telemetrypb.EventType_EVENT_TYPE_IGNITION_ON
	EventIgnitionOff        = telemetrypb.EventType_EVENT_TYPE_IGNITION_OFF
	EventDTCSet             = telemetrypb.EventType_EVENT_TYPE_DTC_SET
	EventDTCCleared         = telemetrypb.EventType_EVENT_TYPE_DTC_CLEARED
	EventVINRead            = telemetrypb.EventType_EVENT_TYPE_VIN_READ
	EventVINChanged         = telemetrypb.EventType_EVENT_TYPE_VIN_CHANGED
	EventGPSFixLost         = telemetrypb.EventType_EVENT_TYPE_GPS_FIX_LOST
	EventGPSFixAcquired     = telemetrypb.EventType_EVENT_TYPE_GPS_FIX_ACQUIRED
	EventOutboxQuarantined  = telemetrypb.EventType_EVENT_TYPE_OUTBOX_QUARANTINED
	EventRecordsDropped     = telemetrypb.EventType_EVENT_TYPE_RECORDS_DROPPED
	EventClockJump          = telemetrypb.EventType_EVENT_TYPE_CLOCK_JUMP
	EventDeviceConnected    = telemetrypb.EventType_EVENT_TYPE_DEVICE_CONNECTED
	EventDeviceDisconnected = telemetrypb.EventType_EVENT_TYPE_DEVICE_DISCONNECTED
	EventGPSJump            = telemetrypb.EventType_EVENT_TYPE_GPS_JUMP
	EventClockSource        = telemetrypb.EventType_EVENT_TYPE_CLOCK_SOURCE
	EventOBDAdapter         = telemetrypb.EventType_EVENT_TYPE_OBD_ADAPTER
	EventOutboxTrouble      = telemetrypb.EventType_EVENT_TYPE_OUTBOX_TROUBLE
)

// Event is something that happened on the vehicle or in the agent.
type Event struct {
	Seq    uint64
	UnixMs int64
	Type   EventType
	Code   string
	Detail string
	Value  int64
}

// Batch is the unit an agent publishes: records of one stream of one vehicle.
type Batch struct {
	VehicleID string
	StreamID  uint64
	Positions []Position
	OBD       []OBDSample
	Events    []Event
	// GNSSTime are the seqs of the records the agent stamped itself whose
	// time is its system clock corrected from GNSS time (the system clock
	// was not synchronised or was off); UnsyncedTime those stamped with an
	// unsynchronised system clock and nothing to correct it. Positions carry
	// the receiver's time and are in neither.
	GNSSTime     []SeqRange
	UnsyncedTime []SeqRange
}

// Len returns the number of records in the batch.
func (b *Batch) Len() int { return len(b.Positions) + len(b.OBD) + len(b.Events) }

// SeqRanges returns the sorted, merged, inclusive ranges of sequence numbers the
// batch carries.
func (b *Batch) SeqRanges() []SeqRange {
	seqs := make([]uint64, 0, b.Len())
	for i := range b.Positions {
		seqs = append(seqs, b.Positions[i].Seq)
	}
	for i := range b.OBD {
		seqs = append(seqs, b.OBD[i].Seq)
	}
	for i := range b.Events {
		seqs = append(seqs, b.Events[i].Seq)
	}
	return RangesOf(seqs)
}
