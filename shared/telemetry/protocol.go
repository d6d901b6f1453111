// Package telemetry is Fleetgate's wire protocol: the records an agent sends
// (positions, OBD-II samples, events), the cloud's acknowledgements, agent status
// and commands; the codecs that frame them (a version/flags byte, then protobuf
// or, for a version 2 batch, a compact binary form; optional zstd); and the
// MQTT topic names.
//
// It does no I/O, no logging and starts no goroutines. Every decoder returns an
// error wrapping ErrMalformed or ErrVersion for input it cannot trust, and never a
// partially decoded value.
package telemetry

// Version is the newest wire protocol version. A payload carries its version
// in the high nibble of its first byte; decoders read every version listed
// here.
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
//   - 2 (2026-12-06): Batch in a compact binary form (see EncodeBatchV2),
//     its time-source ranges included, without the vehicle id, published on
//     the vehicle's own topic (KindBatchV2: Namespace/{id}) rather than
//     up/batch: a fix sent alone costs 62 bytes on the wire instead of 137.
//     Ack gains version (6), the highest Batch version the cloud reads; an
//     agent sends version 2 only to a cloud that says it reads it. Ack,
//     Status, Command and CommandResult are unchanged and still framed as
//     version 1.
const Version = 2

// Versions of the protocol that still frame payloads.
const (
	version1 = 1 // protobuf messages, Batch included (EncodeBatch)
	version2 = 2 // Batch only (EncodeBatchV2)
)
