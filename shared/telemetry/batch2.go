package telemetry

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Protocol version 2 writes a Batch in a compact binary form instead of
// protobuf: a batch of one fix, which is what a caught-up agent sends, costs
// about 40 bytes instead of about 100, and a day of records compresses to a
// fraction of version 1's. The rules, which the golden vectors in testdata
// follow byte by byte:
//
// Integers are unsigned LEB128 varints ("uv", as protobuf's) or zigzag
// varints ("sv", as protobuf's sint64); differences are taken modulo 2^64.
//
//	payload   = header body                  header: 0x20 | flags (0x01: body is one zstd frame)
//	body      = stream_id shape [kinds pids] seqs times positions obd events [sources]
//	stream_id = 8 bytes, little-endian
//	shape     = uv(n << 1 | mixed)           n records; mixed = 0: all are positions
//	kinds     = n × uv                       with mixed = 1 only: 0 position, 1 event,
//	                                         k ≥ 2 OBD sample of pids[k-2]
//	pids      = (max kind − 1) × (uv(pid) scale)   pid = mode << 8 | pid; scale: 1 byte
//	seqs      = uv(seq₀), then (n−1) × uv(seqᵢ − seqᵢ₋₁ − 1)      strictly increasing
//	times     = time word of t₀, then (n−1) × sv(tᵢ − tᵢ₋₁)        ms since the Unix epoch
//
// The time word of t₀: with v = t₀ − 1704067200000 (2024-01-01T00:00:00Z),
// q = ⌊v / 100⌋ and r = v − 100q, it is uv(zigzag(q) << 1 | (r ≠ 0)),
// followed by uv(r) when r ≠ 0 (a fix on a tenth of a second costs 5 bytes
// until 2051).
//
// Records are in seq order; each kind's values are written as columns over
// the records of that kind, in that order.
//
//	positions = masks lat lon optional columns
//	masks     = one uv per position: bit i set = field i absent, i from 0:
//	            err_lat, err_lon, err_alt, vdop, pdop, sats_in_view,
//	            geoid_sep, hdop, quality, mode, sats_used, course, speed, alt
//	lat, lon  = E7; the first as 4 bytes little-endian two's complement,
//	            then deltas of deltas (below)
//	optional  = for alt_cm, geoid_sep_cm, speed_mmps, course_cdeg, mode,
//	            quality, sats_used, sats_in_view, hdop_c, vdop_c, pdop_c,
//	            err_lat_cm, err_lon_cm, err_alt_cm in this order, over the
//	            positions that have the field: the first value sv(v) for
//	            alt_cm and geoid_sep_cm, uv(v as uint32) for the others;
//	            then deltas of deltas
//	obd       = for each pids entry in order, over its samples: with scale 0,
//	            8 bytes each, the IEEE 754 bits little-endian XOR the previous
//	            sample's bits (the first XOR 0); with scale s ≥ 1, the value
//	            is float64(k) * num / den for (num, den) of s in the table
//	            below, and k is written sv(k₀), then deltas of deltas
//	events    = per event: uv(type) uv(len) code uv(len) detail sv(value)
//	sources   = only when the batch has any: the seq ranges of the records
//	            stamped from GNSS time, then those stamped with an
//	            unsynchronised clock (Batch.GNSSTime, UnsyncedTime), each list
//	            uv(count) then per range, sorted and apart,
//	            uv(first − end of the previous range, 0 at first) uv(last − first),
//	            the end of a range being last + 1
//
// Deltas of deltas: after a column's first value v₀ comes sv(v₁ − v₀), then
// for i ≥ 2 sv((vᵢ − vᵢ₋₁) − (vᵢ₋₁ − vᵢ₋₂)). A vehicle moves smoothly, so
// these are mostly 0 or ±1, one byte each, and compress well.
//
// OBD scales (1 byte; the table only ever gains entries): 1 = 1/1, 2 = 1/4,
// 3 = 1/10, 4 = 1/100, 5 = 1/1000, 6 = 100/255, 7 = 1/20, 8 = 1/2,
// 9 = 100/128 — SAE J1979's resolutions. The encoder picks, for each PID of
// a batch, the first scale that gives every value back bit for bit, or 0.
//
// Version 2 carries no vehicle id: the topic names the vehicle, and
// DecodeBatchOn takes it from there.

// epoch2 is the origin of version 2's first record time: 2024-01-01T00:00:00Z.
const epoch2 = 1704067200000

// Wire kinds of version 2 records.
const (
	wirePosition = 0
	wireEvent    = 1
	wireOBD      = 2 // + index into the PID table
)

// obdScales are version 2's OBD value scales: value = float64(k) * num / den.
// Index 0 is the raw IEEE 754 form.
var obdScales = [...]struct{ num, den float64 }{
	{0, 0}, {1, 1}, {1, 4}, {1, 10}, {1, 100}, {1, 1000}, {100, 255}, {1, 20}, {1, 2}, {100, 128},
}

// absentOrder lists the optional Position fields by their bit in a version 2
// mask (bit i: absentOrder[i] is unknown). The fields most often unknown come
// first, so that a usual fix's mask fits in one byte.
var absentOrder = [...]Field{
	HasErrLat, HasErrLon, HasErrAlt, HasVDOP, HasPDOP, HasSatsInView,
	HasGeoidSep, HasHDOP, HasQuality, HasMode, HasSatsUsed, HasCourse, HasSpeed, HasAlt,
}

// signedFirst reports whether an optional column's first value is written
// zigzag (fields often negative) rather than as an unsigned 32-bit varint.
func signedFirst(f Field) bool { return f == HasAlt || f == HasGeoidSep }

// ErrDuplicateSeq is wrapped by EncodeBatchV2's error for a batch holding a
// sequence number twice, which version 2 cannot carry.
var ErrDuplicateSeq = errors.New("sequence number repeated in the batch")

// wireRec is one record of a batch, for ordering by seq.
type wireRec struct {
	seq  uint64
	ms   int64
	kind uint64 // wire kind
	i    int    // index in the batch's slice of its kind
}

// EncodeBatchV2 writes b in protocol version 2 (see the rules above), zstd-
// compressed when compress is set and compression makes it smaller. It
// returns an error wrapping ErrDuplicateSeq for a seq present twice.
// b.VehicleID is not written.
func EncodeBatchV2(b *Batch, compress bool) ([]byte, error) {
	recs := make([]wireRec, 0, b.Len())
	var pids []uint16
	pidIndex := map[uint16]int{}
	for i := range b.Positions {
		recs = append(recs, wireRec{b.Positions[i].Seq, b.Positions[i].UnixMs, wirePosition, i})
	}
	for i := range b.OBD {
		recs = append(recs, wireRec{b.OBD[i].Seq, b.OBD[i].UnixMs, wireOBD, i})
	}
	for i := range b.Events {
		recs = append(recs, wireRec{b.Events[i].Seq, b.Events[i].UnixMs, wireEvent, i})
	}
	slices.SortStableFunc(recs, func(x, y wireRec) int { return cmp.Compare(x.seq, y.seq) })
	mixed := uint64(0)
	for j := range recs {
		if j > 0 && recs[j].seq == recs[j-1].seq {
			return nil, fmt.Errorf("encode batch: %w: seq %d", ErrDuplicateSeq, recs[j].seq)
		}
		r := &recs[j]
		if r.kind != wirePosition {
			mixed = 1
		}
		if r.kind == wireOBD {
			pid := b.OBD[r.i].PID
			k, ok := pidIndex[pid]
			if !ok {
				k = len(pids)
				pidIndex[pid] = k
				pids = append(pids, pid)
			}
			r.kind = wireOBD + uint64(k)
		}
	}

	out := []byte{version2 << 4}
	out = binary.LittleEndian.AppendUint64(out, b.StreamID)
	out = binary.AppendUvarint(out, uint64(len(recs))<<1|mixed)
	series := make([][]float64, len(pids)) // OBD values per PID, in seq order
	scales := make([]byte, len(pids))
	if mixed == 1 {
		for _, r := range recs {
			out = binary.AppendUvarint(out, r.kind)
			if r.kind >= wireOBD {
				series[r.kind-wireOBD] = append(series[r.kind-wireOBD], b.OBD[r.i].Value)
			}
		}
		for k, pid := range pids {
			scales[k] = chooseScale(series[k])
			out = binary.AppendUvarint(out, uint64(pid))
			out = append(out, scales[k])
		}
	}
	return finish2(out, b, recs, series, scales, compress)
}

// finish2 writes seqs, times and the columns after the shape, kinds and PID
// table, then compresses.
func finish2(out []byte, b *Batch, recs []wireRec, series [][]float64, scales []byte, compress bool) ([]byte, error) {
	for j, r := range recs {
		if j == 0 {
			out = binary.AppendUvarint(out, r.seq)
		} else {
			out = binary.AppendUvarint(out, r.seq-recs[j-1].seq-1)
		}
	}
	for j, r := range recs {
		if j == 0 {
			out = appendTimeWord(out, r.ms)
		} else {
			out = binary.AppendVarint(out, int64(uint64(r.ms)-uint64(recs[j-1].ms)))
		}
	}
	var pos []*Position
	var events []*Event
	for _, r := range recs {
		switch {
		case r.kind == wirePosition:
			pos = append(pos, &b.Positions[r.i])
		case r.kind == wireEvent:
			events = append(events, &b.Events[r.i])
		}
	}
	out = appendPositions(out, pos)
	for k, vals := range series {
		out = appendSeries(out, vals, scales[k])
	}
	for _, e := range events {
		out = binary.AppendUvarint(out, uint64(int64(e.Type)))
		out = binary.AppendUvarint(out, uint64(len(e.Code)))
		out = append(out, e.Code...)
		out = binary.AppendUvarint(out, uint64(len(e.Detail)))
		out = append(out, e.Detail...)
		out = binary.AppendVarint(out, e.Value)
	}
	if len(b.GNSSTime) > 0 || len(b.UnsyncedTime) > 0 {
		for _, rs := range [][]SeqRange{b.GNSSTime, b.UnsyncedTime} {
			rs = MergeRanges(rs)
			out = binary.AppendUvarint(out, uint64(len(rs)))
			var end uint64
			for _, r := range rs {
				out = binary.AppendUvarint(out, r.First-end)
				out = binary.AppendUvarint(out, r.Last-r.First)
				end = r.Last + 1
			}
		}
	}
	if compress {
		z := zenc().EncodeAll(out[1:], []byte{version2<<4 | FlagZstd})
		if len(z) < len(out) {
			return z, nil
		}
	}
	return out, nil
}

func appendTimeWord(out []byte, ms int64) []byte {
	v := int64(uint64(ms) - uint64(epoch2))
	q, r := v/100, v%100
	if r < 0 {
		q, r = q-1, r+100
	}
	w := zigzag(q) << 1
	if r != 0 {
		w |= 1
	}
	out = binary.AppendUvarint(out, w)
	if r != 0 {
		out = binary.AppendUvarint(out, uint64(r))
	}
	return out
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func appendPositions(out []byte, pos []*Position) []byte {
	for _, p := range pos {
		var m uint64
		for i, f := range absentOrder {
			if p.Has&f == 0 {
				m |= 1 << i
			}
		}
		out = binary.AppendUvarint(out, m)
	}
	for _, get := range []func(*Position) int32{
		func(p *Position) int32 { return p.LatE7 },
		func(p *Position) int32 { return p.LonE7 },
	} {
		var d dod
		for j, p := range pos {
			if j == 0 {
				out = binary.LittleEndian.AppendUint32(out, uint32(get(p)))
				d.first(int64(get(p)))
			} else {
				out = d.append(out, int64(get(p)))
			}
		}
	}
	for _, f := range optionalFields {
		var d dod
		for _, p := range pos {
			if p.Has&f.bit == 0 {
				continue
			}
			v := *f.get(p)
			switch {
			case d.n > 0:
				out = d.append(out, int64(v))
				continue
			case signedFirst(f.bit):
				out = binary.AppendVarint(out, int64(v))
			default:
				out = binary.AppendUvarint(out, uint64(uint32(v)))
			}
			d.first(int64(v))
		}
	}
	return out
}

// dod writes or reads a column's values after the first as deltas of deltas.
type dod struct {
	n     int   // values so far
	prev  int64 // the last value
	delta int64 // the last difference
}

func (d *dod) first(v int64) { d.n, d.prev, d.delta = 1, v, 0 }

// append writes v, which is not the column's first value.
func (d *dod) append(out []byte, v int64) []byte {
	delta := v - d.prev
	w := delta
	if d.n >= 2 {
		w = delta - d.delta
	}
	d.n, d.prev, d.delta = d.n+1, v, delta
	return binary.AppendVarint(out, w)
}

// next returns the value after the first whose delta-of-delta form is w.
func (d *dod) next(w int64) int64 {
	delta := w
	if d.n >= 2 {
		delta = d.delta + w
	}
	d.n, d.prev, d.delta = d.n+1, d.prev+delta, delta
	return d.prev
}

// scaled returns the value of k at scale s.
func scaled(k int64, s byte) float64 {
	return float64(k) * obdScales[s].num / obdScales[s].den
}

// chooseScale returns the first scale that gives every value of vals back
// exactly (same bits), or 0.
func chooseScale(vals []float64) byte {
next:
	for s := 1; s < len(obdScales); s++ {
		for _, v := range vals {
			k, ok := scaleOf(v, byte(s))
			if !ok || math.Float64bits(scaled(k, byte(s))) != math.Float64bits(v) {
				continue next
			}
		}
		return byte(s)
	}
	return 0
}

// scaleOf returns the integer that stands for v at scale s, if it is one an
// int64 holds exactly in a float64.
func scaleOf(v float64, s byte) (int64, bool) {
	x := math.Round(v * obdScales[s].den / obdScales[s].num)
	if math.IsNaN(x) || math.Abs(x) > 1<<53 {
		return 0, false
	}
	return int64(x), true
}

func appendSeries(out []byte, vals []float64, s byte) []byte {
	var prevBits uint64
	var d dod
	for j, v := range vals {
		if s == 0 {
			bits := math.Float64bits(v)
			out = binary.LittleEndian.AppendUint64(out, bits^prevBits)
			prevBits = bits
			continue
		}
		k, _ := scaleOf(v, s)
		if j == 0 {
			out = binary.AppendVarint(out, k)
			d.first(k)
		} else {
			out = d.append(out, k)
		}
	}
	return out
}

// reader2 reads a version 2 body; the first error sticks.
type reader2 struct {
	p   []byte
	err error
}

func (r *reader2) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader2) uv(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.fail("%s: bad varint", what)
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *reader2) sv(what string) int64 { return unzigzag(r.uv(what)) }

func (r *reader2) bytes(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.p)) {
		r.fail("%s: %d bytes, %d left", what, n, len(r.p))
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

// i32 checks that v fits an int32 field.
func (r *reader2) i32(v int64, what string) int32 {
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("%s: %d out of int32", what, v)
		return 0
	}
	return int32(v)
}

// decodeBatch2 reads a version 2 body (after the header and decompression).
// Errors do not wrap ErrMalformed; the caller wraps them.
func decodeBatch2(body []byte) (*Batch, error) {
	r := &reader2{p: body}
	sid := r.bytes(8, "stream id")
	shape := r.uv("shape")
	if r.err != nil {
		return nil, r.err
	}
	n, mixed := shape>>1, shape&1 == 1
	if n > MaxRows {
		return nil, fmt.Errorf("%d records exceed %d", n, MaxRows)
	}
	b := &Batch{StreamID: binary.LittleEndian.Uint64(sid)}
	kinds := make([]uint64, n)
	var maxKind uint64
	if mixed {
		for j := range kinds {
			kinds[j] = r.uv("kind")
			maxKind = max(maxKind, kinds[j])
		}
	}
	if maxKind > MaxRows {
		return nil, fmt.Errorf("kind %d: more PIDs than records", maxKind)
	}
	var pids []uint16
	var scales []byte
	for k := uint64(wireOBD); k <= maxKind && r.err == nil; k++ {
		pid := r.uv("pid")
		s := r.bytes(1, "scale")
		if r.err != nil {
			break
		}
		if pid > math.MaxUint16 || int(s[0]) >= len(obdScales) {
			return nil, fmt.Errorf("pid %#x with scale %d: out of range", pid, s[0])
		}
		pids, scales = append(pids, uint16(pid)), append(scales, s[0])
	}
	seqs, times := make([]uint64, n), make([]int64, n)
	for j := range seqs {
		if j == 0 {
			seqs[0] = r.uv("seq")
			continue
		}
		gap := r.uv("seq gap")
		if gap >= math.MaxUint64-seqs[j-1] {
			r.fail("seq gap %d after %d overflows", gap, seqs[j-1])
		}
		seqs[j] = seqs[j-1] + gap + 1
	}
	for j := range times {
		if j == 0 {
			times[0] = r.timeWord()
			continue
		}
		times[j] = int64(uint64(times[j-1]) + uint64(r.sv("time")))
	}
	if r.err != nil {
		return nil, r.err
	}
	var posRows, evRows []int
	obdRows := make([][]int, len(pids))
	for j, k := range kinds {
		switch {
		case k == wirePosition:
			posRows = append(posRows, j)
		case k == wireEvent:
			evRows = append(evRows, j)
		default:
			obdRows[k-wireOBD] = append(obdRows[k-wireOBD], j)
		}
	}
	if len(posRows) > 0 {
		b.Positions = make([]Position, len(posRows))
		for i, j := range posRows {
			b.Positions[i].Seq, b.Positions[i].UnixMs = seqs[j], times[j]
		}
		r.positions(b.Positions)
	}
	nOBD := 0
	for _, rows := range obdRows {
		nOBD += len(rows)
	}
	if nOBD > 0 {
		b.OBD = make([]OBDSample, 0, nOBD)
	}
	for k, rows := range obdRows {
		var prevBits uint64
		var d dod
		for i, j := range rows {
			s := OBDSample{Seq: seqs[j], UnixMs: times[j], PID: pids[k]}
			if scales[k] == 0 {
				x := r.bytes(8, "obd value")
				if r.err != nil {
					break
				}
				prevBits ^= binary.LittleEndian.Uint64(x)
				s.Value = math.Float64frombits(prevBits)
			} else {
				w := r.sv("obd value")
				if i == 0 {
					d.first(w)
				} else {
					d.next(w)
				}
				if d.prev > 1<<53 || d.prev < -(1<<53) {
					r.fail("obd value %d beyond 2^53", d.prev)
					break
				}
				s.Value = scaled(d.prev, scales[k])
			}
			b.OBD = append(b.OBD, s)
		}
	}
	// The OBD samples were read PID by PID; the batch lists them in seq order.
	slices.SortFunc(b.OBD, func(x, y OBDSample) int { return cmp.Compare(x.Seq, y.Seq) })
	for _, j := range evRows {
		e := Event{Seq: seqs[j], UnixMs: times[j]}
		t := r.uv("event type")
		if t > math.MaxInt32 {
			r.fail("event type %d out of range", t)
		}
		e.Type = EventType(int32(t))
		e.Code = string(r.bytes(r.uv("code length"), "event code"))
		e.Detail = string(r.bytes(r.uv("detail length"), "event detail"))
		e.Value = r.sv("event value")
		b.Events = append(b.Events, e)
	}
	if r.err == nil && len(r.p) > 0 {
		b.GNSSTime, b.UnsyncedTime = r.ranges("gnss_time"), r.ranges("unsynced_time")
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.p) != 0 {
		return nil, fmt.Errorf("%d bytes after the last column", len(r.p))
	}
	return b, nil
}

// ranges reads a list of seq ranges of the sources section; nil for none.
func (r *reader2) ranges(what string) []SeqRange {
	n := r.uv(what)
	if n > MaxRows {
		r.fail("%s: %d ranges exceed %d", what, n, MaxRows)
		return nil
	}
	var out []SeqRange
	var end uint64
	var top bool // the previous range ended at the top of uint64
	for i := range n {
		gap, length := r.uv(what), r.uv(what)
		if r.err != nil {
			return nil
		}
		if i > 0 && gap == 0 {
			r.fail("%s: ranges not apart", what)
			return nil
		}
		first := end + gap
		if top || first < end || first+length < first {
			r.fail("%s: range past 2^64", what)
			return nil
		}
		out = append(out, SeqRange{First: first, Last: first + length})
		end, top = first+length+1, first+length == math.MaxUint64
	}
	return out
}

func (r *reader2) timeWord() int64 {
	w := r.uv("time")
	q := unzigzag(w >> 1)
	var rem int64
	if w&1 == 1 {
		u := r.uv("time remainder")
		if u == 0 || u >= 100 {
			r.fail("time remainder %d: want 1 to 99", u)
		}
		rem = int64(u)
	}
	if q > (math.MaxInt64-99)/100 || q < math.MinInt64/100 {
		r.fail("time %d × 100 ms overflows", q)
		return 0
	}
	return int64(uint64(100*q+rem) + uint64(epoch2))
}

func (r *reader2) positions(ps []Position) {
	for i := range ps {
		m := r.uv("mask")
		if m >= 1<<len(absentOrder) {
			r.fail("mask %#x: unknown fields", m)
		}
		ps[i].Has = 0
		for bit, f := range absentOrder {
			if m&(1<<bit) == 0 {
				ps[i].Has |= f
			}
		}
	}
	for _, dst := range []func(*Position) *int32{
		func(p *Position) *int32 { return &p.LatE7 },
		func(p *Position) *int32 { return &p.LonE7 },
	} {
		var d dod
		for i := range ps {
			if i == 0 {
				x := r.bytes(4, "lat/lon")
				if r.err != nil {
					return
				}
				d.first(int64(int32(binary.LittleEndian.Uint32(x))))
			} else {
				d.next(r.sv("lat/lon"))
			}
			*dst(&ps[i]) = r.i32(d.prev, "lat/lon")
		}
	}
	for _, f := range optionalFields {
		var d dod
		for i := range ps {
			if ps[i].Has&f.bit == 0 {
				continue
			}
			switch {
			case d.n > 0:
				d.next(r.sv(f.name))
			case signedFirst(f.bit):
				d.first(r.sv(f.name))
			default:
				u := r.uv(f.name)
				if u > math.MaxUint32 {
					r.fail("%s: %d out of 32 bits", f.name, u)
				}
				d.first(int64(int32(uint32(u))))
			}
			*f.get(&ps[i]) = r.i32(d.prev, f.name)
			if r.err != nil {
				return
			}
		}
	}
}
