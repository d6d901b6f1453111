package telemetry

import (
	"errors"
	"fmt"
	"math"

	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// colWriter builds one Column: zigzag values (the protobuf sint64 does the
// zigzag), delta or delta-of-delta, skipping absent rows.
type colWriter struct {
	dod     bool
	n       int // rows seen
	vals    []int64
	absent  []byte
	anyGone bool
	prev    int64
	prevD   int64
	seen    int // present values so far
}

func (c *colWriter) add(v int64, ok bool) {
	row := c.n
	c.n++
	if !ok {
		for len(c.absent) <= row/8 {
			c.absent = append(c.absent, 0)
		}
		c.absent[row/8] |= 1 << (row % 8)
		c.anyGone = true
		return
	}
	d := v - c.prev
	c.prev = v
	// Delta of delta stores the first value, then the first delta, then the
	// differences between consecutive deltas.
	if c.dod && c.seen > 0 {
		d, c.prevD = d-c.prevD, d
	}
	c.seen++
	c.vals = append(c.vals, d)
}

func (c *colWriter) column() *telemetrypb.Column {
	if len(c.vals) == 0 {
		return nil // no row has a value
	}
	col := &telemetrypb.Column{Values: c.vals}
	if c.anyGone {
		for len(c.absent) < (c.n+7)/8 {
			c.absent = append(c.absent, 0)
		}
		col.Absent = c.absent
	}
	return col
}

// colReader walks a Column row by row.
type colReader struct {
	col    *telemetrypb.Column
	dod    bool
	i      int
	prev   int64
	prevD  int64
	name   string
	nRows  int
	needed bool
}

var errColumn = errors.New("bad column")

func newColReader(name string, col *telemetrypb.Column, rows int, dod, required bool) (*colReader, error) {
	r := &colReader{col: col, dod: dod, name: name, nRows: rows}
	if col == nil {
		if required && rows > 0 {
			return nil, fmt.Errorf("%w %s: required column missing", errColumn, name)
		}
		return r, nil
	}
	absent := 0
	if len(col.Absent) != 0 {
		if required {
			return nil, fmt.Errorf("%w %s: required column has absent rows", errColumn, name)
		}
		if len(col.Absent) != (rows+7)/8 {
			return nil, fmt.Errorf("%w %s: absent bitmap of %d bytes for %d rows", errColumn, name, len(col.Absent), rows)
		}
		for i := range len(col.Absent) * 8 {
			if col.Absent[i/8]&(1<<(i%8)) != 0 {
				if i >= rows {
					return nil, fmt.Errorf("%w %s: absent bit %d beyond %d rows", errColumn, name, i, rows)
				}
				absent++
			}
		}
	}
	if len(col.Values) != rows-absent {
		return nil, fmt.Errorf("%w %s: %d values for %d rows with %d absent", errColumn, name, len(col.Values), rows, absent)
	}
	return r, nil
}

// next returns the value of the given row (rows are read in order).
func (r *colReader) next(row int) (int64, bool) {
	if r.col == nil {
		return 0, false
	}
	if a := r.col.Absent; len(a) != 0 && a[row/8]&(1<<(row%8)) != 0 {
		return 0, false
	}
	d := r.col.Values[r.i]
	if r.dod && r.i > 0 {
		d += r.prevD
		r.prevD = d
	}
	r.i++
	r.prev += d
	return r.prev, true
}

// next32 is next for a column held in an int32 field.
func (r *colReader) next32(row int, dst *int32) (bool, error) {
	v, ok := r.next(row)
	if !ok {
		return false, nil
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return false, fmt.Errorf("%w %s: row %d value %d out of int32", errColumn, r.name, row, v)
	}
	*dst = int32(v)
	return true, nil
}

// optionalField ties a Position field to its presence bit and its column.
type optionalField struct {
	name string
	bit  Field
	get  func(p *Position) *int32
	col  func(pc *telemetrypb.Positions) **telemetrypb.Column
}

var optionalFields = []optionalField{
	{"alt_cm", HasAlt, func(p *Position) *int32 { return &p.AltCm }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.AltCm }},
	{"geoid_sep_cm", HasGeoidSep, func(p *Position) *int32 { return &p.GeoidSepCm }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.GeoidSepCm }},
	{"speed_mmps", HasSpeed, func(p *Position) *int32 { return &p.SpeedMmps }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.SpeedMmps }},
	{"course_cdeg", HasCourse, func(p *Position) *int32 { return &p.CourseCdeg }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.CourseCdeg }},
	{"mode", HasMode, func(p *Position) *int32 { return &p.Mode }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.Mode }},
	{"quality", HasQuality, func(p *Position) *int32 { return &p.Quality }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.Quality }},
	{"sats_used", HasSatsUsed, func(p *Position) *int32 { return &p.SatsUsed }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.SatsUsed }},
	{"sats_in_view", HasSatsInView, func(p *Position) *int32 { return &p.SatsInView }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.SatsInView }},
	{"hdop_c", HasHDOP, func(p *Position) *int32 { return &p.HDOPc }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.HdopC }},
	{"vdop_c", HasVDOP, func(p *Position) *int32 { return &p.VDOPc }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.VdopC }},
	{"pdop_c", HasPDOP, func(p *Position) *int32 { return &p.PDOPc }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.PdopC }},
	{"err_lat_cm", HasErrLat, func(p *Position) *int32 { return &p.ErrLatCm }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.ErrLatCm }},
	{"err_lon_cm", HasErrLon, func(p *Position) *int32 { return &p.ErrLonCm }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.ErrLonCm }},
	{"err_alt_cm", HasErrAlt, func(p *Position) *int32 { return &p.ErrAltCm }, func(pc *telemetrypb.Positions) **telemetrypb.Column { return &pc.ErrAltCm }},
}

// BatchToProto converts b to its columnar wire message. Most callers want
// EncodeBatch.
func BatchToProto(b *Batch) *telemetrypb.Batch {
	out := &telemetrypb.Batch{VehicleId: b.VehicleID, StreamId: b.StreamID}
	if n := len(b.Positions); n > 0 {
		seq, ts := colWriter{}, colWriter{dod: true}
		lat, lon := colWriter{}, colWriter{}
		opt := make([]colWriter, len(optionalFields))
		for i := range b.Positions {
			p := &b.Positions[i]
			seq.add(int64(p.Seq), true)
			ts.add(p.UnixMs, true)
			lat.add(int64(p.LatE7), true)
			lon.add(int64(p.LonE7), true)
			for j, f := range optionalFields {
				opt[j].add(int64(*f.get(p)), p.Has&f.bit != 0)
			}
		}
		pc := &telemetrypb.Positions{Count: uint32(n), Seq: seq.column(), UnixMs: ts.column(), LatE7: lat.column(), LonE7: lon.column()}
		for j, f := range optionalFields {
			*f.col(pc) = opt[j].column()
		}
		out.Positions = pc
	}
	if n := len(b.OBD); n > 0 {
		seq, ts := colWriter{}, colWriter{dod: true}
		oc := &telemetrypb.ObdSamples{Count: uint32(n), Pid: make([]uint32, n), Value: make([]float64, n)}
		for i := range b.OBD {
			s := &b.OBD[i]
			seq.add(int64(s.Seq), true)
			ts.add(s.UnixMs, true)
			oc.Pid[i] = uint32(s.PID)
			oc.Value[i] = s.Value
		}
		oc.Seq, oc.UnixMs = seq.column(), ts.column()
		out.Obd = oc
	}
	for i := range b.Events {
		e := &b.Events[i]
		out.Events = append(out.Events, &telemetrypb.Event{
			Seq: e.Seq, UnixMs: e.UnixMs, Type: e.Type, Code: e.Code, Detail: e.Detail, Value: e.Value,
		})
	}
	out.GnssTime, out.UnsyncedTime = rangesToProto(b.GNSSTime), rangesToProto(b.UnsyncedTime)
	return out
}

// BatchFromProto converts a wire message back to rows. It checks the columns'
// consistency (lengths, bitmaps, ranges of the Go types) and returns an error
// for any inconsistency, never a partial batch.
func BatchFromProto(pb *telemetrypb.Batch) (*Batch, error) {
	b := &Batch{VehicleID: pb.VehicleId, StreamID: pb.StreamId}
	if pc := pb.Positions; pc != nil {
		if pc.Count > MaxRows {
			return nil, fmt.Errorf("%d positions exceed %d", pc.Count, MaxRows)
		}
		n := int(pc.Count)
		seq, err := newColReader("seq", pc.Seq, n, false, true)
		if err != nil {
			return nil, err
		}
		ts, err := newColReader("unix_ms", pc.UnixMs, n, true, true)
		if err != nil {
			return nil, err
		}
		lat, err := newColReader("lat_e7", pc.LatE7, n, false, true)
		if err != nil {
			return nil, err
		}
		lon, err := newColReader("lon_e7", pc.LonE7, n, false, true)
		if err != nil {
			return nil, err
		}
		opt := make([]*colReader, len(optionalFields))
		for j, f := range optionalFields {
			if opt[j], err = newColReader(f.name, *f.col(pc), n, false, false); err != nil {
				return nil, err
			}
		}
		if n > 0 {
			b.Positions = make([]Position, n)
		}
		for i := range b.Positions {
			p := &b.Positions[i]
			s, _ := seq.next(i)
			if s < 0 {
				return nil, fmt.Errorf("%w seq: row %d negative", errColumn, i)
			}
			p.Seq = uint64(s)
			p.UnixMs, _ = ts.next(i)
			if _, err := lat.next32(i, &p.LatE7); err != nil {
				return nil, err
			}
			if _, err := lon.next32(i, &p.LonE7); err != nil {
				return nil, err
			}
			for j, f := range optionalFields {
				ok, err := opt[j].next32(i, f.get(p))
				if err != nil {
					return nil, err
				}
				if ok {
					p.Has |= f.bit
				}
			}
		}
	}
	if oc := pb.Obd; oc != nil {
		if oc.Count > MaxRows {
			return nil, fmt.Errorf("%d OBD samples exceed %d", oc.Count, MaxRows)
		}
		n := int(oc.Count)
		seq, err := newColReader("obd seq", oc.Seq, n, false, true)
		if err != nil {
			return nil, err
		}
		ts, err := newColReader("obd unix_ms", oc.UnixMs, n, true, true)
		if err != nil {
			return nil, err
		}
		if len(oc.Pid) != n || len(oc.Value) != n {
			return nil, fmt.Errorf("%w obd: %d pids and %d values for %d rows", errColumn, len(oc.Pid), len(oc.Value), n)
		}
		if n > 0 {
			b.OBD = make([]OBDSample, n)
		}
		for i := range b.OBD {
			s := &b.OBD[i]
			q, _ := seq.next(i)
			if q < 0 {
				return nil, fmt.Errorf("%w obd seq: row %d negative", errColumn, i)
			}
			if oc.Pid[i] > math.MaxUint16 {
				return nil, fmt.Errorf("%w obd pid: row %d value %#x out of range", errColumn, i, oc.Pid[i])
			}
			s.Seq = uint64(q)
			s.UnixMs, _ = ts.next(i)
			s.PID = uint16(oc.Pid[i])
			s.Value = oc.Value[i]
		}
	}
	if len(pb.Events) > MaxRows {
		return nil, fmt.Errorf("%d events exceed %d", len(pb.Events), MaxRows)
	}
	for _, e := range pb.Events {
		b.Events = append(b.Events, Event{Seq: e.Seq, UnixMs: e.UnixMs, Type: e.Type, Code: e.Code, Detail: e.Detail, Value: e.Value})
	}
	if len(pb.GnssTime)+len(pb.UnsyncedTime) > MaxRows {
		return nil, fmt.Errorf("%d time-source ranges exceed %d", len(pb.GnssTime)+len(pb.UnsyncedTime), MaxRows)
	}
	if len(pb.GnssTime) > 0 {
		b.GNSSTime = rangesFromProto(pb.GnssTime)
	}
	if len(pb.UnsyncedTime) > 0 {
		b.UnsyncedTime = rangesFromProto(pb.UnsyncedTime)
	}
	return b, nil
}
