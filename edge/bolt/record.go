package bolt

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// recordFormat is the first byte of every stored record value.
const recordFormat = 1

// encodeRecord appends the stored form of r (format 1) to b:
//
//	byte     format (1)
//	byte     kind (edge.Kind: 1 position, 2 OBD sample, 3 event) in the low
//	         nibble; the record's edge.TimeSource in the high nibble (0, the
//	         system clock, in every record written before it existed)
//	uvarint  appended at, agent clock, ms since the Unix epoch
//	varint   the record's UnixMs
//	position: varint LatE7, varint LonE7, uvarint Has, then one varint per
//	          set bit of Has, in bit order (AltCm, GeoidSepCm, SpeedMmps,
//	          CourseCdeg, Mode, Quality, SatsUsed, SatsInView, HDOPc, VDOPc,
//	          PDOPc, ErrLatCm, ErrLonCm, ErrAltCm)
//	OBD:      uvarint PID, 8 bytes IEEE 754 Value, little-endian
//	event:    uvarint Type, uvarint length + Code, uvarint length + Detail,
//	          varint Value
//
// The seq is the key, not part of the value. A fix costs about 20 bytes.
func encodeRecord(b []byte, r *edge.Record, appendedMs int64) []byte {
	b = append(b, recordFormat, byte(r.Kind)|byte(r.Time)<<4)
	b = binary.AppendUvarint(b, uint64(appendedMs))
	b = binary.AppendVarint(b, r.UnixMs())
	switch r.Kind {
	case edge.KindPosition:
		p := &r.Position
		b = binary.AppendVarint(b, int64(p.LatE7))
		b = binary.AppendVarint(b, int64(p.LonE7))
		b = binary.AppendUvarint(b, uint64(p.Has))
		for _, f := range optional(p) {
			if p.Has&f.bit != 0 {
				b = binary.AppendVarint(b, int64(*f.v))
			}
		}
	case edge.KindOBD:
		b = binary.AppendUvarint(b, uint64(r.OBD.PID))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.OBD.Value))
	case edge.KindEvent:
		e := &r.Event
		b = binary.AppendUvarint(b, uint64(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.Code)))
		b = append(b, e.Code...)
		b = binary.AppendUvarint(b, uint64(len(e.Detail)))
		b = append(b, e.Detail...)
		b = binary.AppendVarint(b, e.Value)
	}
	return b
}

type optField struct {
	bit telemetry.Field
	v   *int32
}

// optional lists a Position's optional fields in Has bit order.
func optional(p *telemetry.Position) [14]optField {
	return [14]optField{
		{telemetry.HasAlt, &p.AltCm}, {telemetry.HasGeoidSep, &p.GeoidSepCm},
		{telemetry.HasSpeed, &p.SpeedMmps}, {telemetry.HasCourse, &p.CourseCdeg},
		{telemetry.HasMode, &p.Mode}, {telemetry.HasQuality, &p.Quality},
		{telemetry.HasSatsUsed, &p.SatsUsed}, {telemetry.HasSatsInView, &p.SatsInView},
		{telemetry.HasHDOP, &p.HDOPc}, {telemetry.HasVDOP, &p.VDOPc}, {telemetry.HasPDOP, &p.PDOPc},
		{telemetry.HasErrLat, &p.ErrLatCm}, {telemetry.HasErrLon, &p.ErrLonCm}, {telemetry.HasErrAlt, &p.ErrAltCm},
	}
}

// decoder reads the fields of one stored value; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: stored record: bad %s", edge.ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int32(what string) int32 {
	v := d.varint(what)
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(what)
		return 0
	}
	return int32(v)
}

func (d *decoder) bytes(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeRecord reverses encodeRecord for the record stored under seq. It
// returns an error wrapping edge.ErrCorrupt for anything it did not write.
func decodeRecord(v []byte, seq uint64) (edge.Record, int64, error) {
	if len(v) < 2 || v[0] != recordFormat {
		return edge.Record{}, 0, fmt.Errorf("%w: stored record %d: format byte", edge.ErrCorrupt, seq)
	}
	d := decoder{b: v[2:]}
	r := edge.Record{Kind: edge.Kind(v[1] & 0x0f), Time: edge.TimeSource(v[1] >> 4)}
	if r.Time > edge.TimeUnsynced {
		return edge.Record{}, 0, fmt.Errorf("%w: stored record %d: time source %d", edge.ErrCorrupt, seq, r.Time)
	}
	appended := int64(d.uvarint("append time"))
	unixMs := d.varint("time")
	switch r.Kind {
	case edge.KindPosition:
		p := &r.Position
		p.UnixMs = unixMs
		p.LatE7 = d.int32("latitude")
		p.LonE7 = d.int32("longitude")
		has := d.uvarint("field set")
		if has >= 1<<14 {
			d.fail("field set")
		}
		p.Has = telemetry.Field(has)
		for _, f := range optional(p) {
			if p.Has&f.bit != 0 {
				*f.v = d.int32("optional field")
			}
		}
	case edge.KindOBD:
		pid := d.uvarint("PID")
		if pid > math.MaxUint16 || len(d.b) < 8 {
			d.fail("OBD sample")
			break
		}
		r.OBD = telemetry.OBDSample{UnixMs: unixMs, PID: uint16(pid), Value: math.Float64frombits(binary.LittleEndian.Uint64(d.b))}
		d.b = d.b[8:]
	case edge.KindEvent:
		typ := d.uvarint("event type")
		if typ > math.MaxInt32 {
			d.fail("event type")
		}
		r.Event = telemetry.Event{UnixMs: unixMs, Type: telemetry.EventType(typ)}
		r.Event.Code = d.bytes("event code")
		r.Event.Detail = d.bytes("event detail")
		r.Event.Value = d.varint("event value")
	default:
		d.fail("kind")
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("length")
	}
	if d.err != nil {
		return edge.Record{}, 0, fmt.Errorf("seq %d: %w", seq, d.err)
	}
	r.SetSeq(seq)
	return r, appended, nil
}
