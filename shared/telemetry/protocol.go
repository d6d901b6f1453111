// Package telemetry is Fleetgate's wire protocol: the records an agent sends
// (positions, OBD-II samples, events), the cloud's acknowledgements, agent status
// and commands; the codec that frames them (a version/flags byte, protobuf,
// optional zstd); and the MQTT topic names.
//
// It does no I/O, no logging and starts no goroutines. Every decoder returns an
// error wrapping ErrMalformed or ErrVersion for input it cannot trust, and never a
// partially decoded value.
package telemetry

// Version is the wire protocol version carried in the high nibble of the first
// byte of every payload.
//
// History:
//   - 1 (2026-11-27): first version. Batch with columnar, delta-encoded positions
//     and OBD samples plus events, each record identified by (stream_id, seq);
//     Ack with committed and rejected seq ranges; Status; Command and
//     CommandResult. Flags: 0x01 = zstd-compressed body.
//   - 1 (2026-11-27): EVENT_TYPE_GPS_JUMP (15) added. A new enum value, not a new
//     version: older decoders read it as an unknown event type.
//   - 1 (2026-12-04): for gateways without a real-time clock, full disks and
//     adapters that are not talking to a vehicle: Batch.gnss_time (6) and
//     Batch.unsynced_time (7), the seq ranges of records the agent stamped from
//     GNSS time or with an unsynchronised clock; Status.clock_source (16),
//     clock_offset_ms (17), outbox_trouble (18), obd_state (19);
//     EVENT_TYPE_CLOCK_SOURCE (16), EVENT_TYPE_OBD_ADAPTER (17),
//     EVENT_TYPE_OUTBOX_TROUBLE (18). New fields and enum values, not a new
//     version: older decoders skip the fields and read the events as unknown
//     types.
const Version = 1
