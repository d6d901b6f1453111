package postgres

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

const insertPositions = `INSERT INTO positions (vehicle_id, stream_id, seq, time, lat_e7, lon_e7,
	alt_cm, geoid_sep_cm, speed_mmps, course_cdeg, mode, quality, sats_used, sats_in_view,
	hdop_c, vdop_c, pdop_c, err_lat_cm, err_lon_cm, err_alt_cm, received_at)
SELECT u.*, $21::timestamptz FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int4[], $6::int4[],
	$7::int4[], $8::int4[], $9::int4[], $10::int4[], $11::int2[], $12::int2[], $13::int2[], $14::int2[],
	$15::int4[], $16::int4[], $17::int4[], $18::int4[], $19::int4[], $20::int4[]) AS u
ON CONFLICT DO NOTHING`

const insertOBD = `INSERT INTO obd_samples (vehicle_id, stream_id, seq, time, pid, value, received_at)
SELECT u.*, $7::timestamptz FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int4[], $6::float8[]) AS u
ON CONFLICT DO NOTHING`

const insertEvents = `INSERT INTO events (vehicle_id, stream_id, seq, time, type, code, detail, value, received_at)
SELECT u.*, $9::timestamptz FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int4[], $6::text[], $7::text[], $8::int8[]) AS u
ON CONFLICT DO NOTHING`

const upsertVehicles = `INSERT INTO vehicles (id, first_seen, last_seen)
SELECT id, $2::timestamptz, $2::timestamptz FROM unnest($1::text[]) AS id
ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(vehicles.last_seen, excluded.last_seen)`

// updateLatest moves a vehicle's latest fix forward only: a fix older than (or
// as old as) the stored one changes nothing.
const updateLatest = `UPDATE vehicles v SET pos_stream_id = u.stream_id, pos_seq = u.seq, pos_time = u.time,
	pos_lat_e7 = u.lat_e7, pos_lon_e7 = u.lon_e7, pos_speed_mmps = u.speed_mmps, pos_course_cdeg = u.course_cdeg
FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int4[], $6::int4[], $7::int4[], $8::int4[])
	AS u(id, stream_id, seq, time, lat_e7, lon_e7, speed_mmps, course_cdeg)
WHERE v.id = u.id AND (v.pos_time IS NULL OR u.time > v.pos_time)`

const insertDeadLetters = `INSERT INTO dead_letters (topic, vehicle_id, stream_id, payload, reason, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bytea[], $5::text[], $6::timestamptz[])`

// Commit writes c in one transaction: positions, OBD samples and events with
// one INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING per table, the
// vehicles (first and last seen, latest fix moving forward only) and the dead
// letters, pipelined in one round trip, then COMMIT. Records already stored
// are skipped, not rewritten. See cloud.IngestStore for the error codes.
func (db *DB) Commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, error) {
	var res cloud.CommitResult
	received := c.ReceivedAt
	if received.IsZero() {
		received = db.Now()
	}
	b := &pgx.Batch{}
	var counted []*pgx.QueuedQuery
	if cols := positionColumns(c.Batches); cols.n > 0 {
		counted = append(counted, b.Queue(insertPositions, cols.args(received)...))
	}
	if cols := obdColumns(c.Batches); len(cols.vehicle) > 0 {
		counted = append(counted, b.Queue(insertOBD, cols.vehicle, cols.stream, cols.seq, cols.time, cols.pid, cols.value, received))
	}
	if cols := eventColumns(c.Batches); len(cols.vehicle) > 0 {
		counted = append(counted, b.Queue(insertEvents, cols.vehicle, cols.stream, cols.seq, cols.time, cols.typ, cols.code, cols.detail, cols.value, received))
	}
	if ids := vehicleIDs(c.Batches); len(ids) > 0 {
		b.Queue(upsertVehicles, ids, received)
		if l := latestColumns(c.Batches); len(l.vehicle) > 0 {
			b.Queue(updateLatest, l.vehicle, l.stream, l.seq, l.time, l.lat, l.lon, l.speed, l.course)
		}
	}
	if len(c.DeadLetters) > 0 {
		b.Queue(insertDeadLetters, deadLetterColumns(c.DeadLetters, received)...)
	}
	if b.Len() == 0 {
		return res, nil
	}
	for _, q := range counted {
		q.Exec(func(tag pgconn.CommandTag) error {
			res.Inserted += tag.RowsAffected()
			return nil
		})
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return cloud.CommitResult{}, classify("commit batch", err)
	}
	return res, nil
}

// positionCols holds the columns of insertPositions.
type positionCols struct {
	n           int
	vehicle     []string
	stream, seq []int64
	time        []time.Time
	lat, lon    []int32
	opt         [14][]*int32 // alt_cm … err_alt_cm, in the statement's order
}

// optional lists the optional Position fields in insertPositions' order.
var optional = [14]struct {
	bit telemetry.Field
	get func(*telemetry.Position) int32
}{
	{telemetry.HasAlt, func(p *telemetry.Position) int32 { return p.AltCm }},
	{telemetry.HasGeoidSep, func(p *telemetry.Position) int32 { return p.GeoidSepCm }},
	{telemetry.HasSpeed, func(p *telemetry.Position) int32 { return p.SpeedMmps }},
	{telemetry.HasCourse, func(p *telemetry.Position) int32 { return p.CourseCdeg }},
	{telemetry.HasMode, func(p *telemetry.Position) int32 { return p.Mode }},
	{telemetry.HasQuality, func(p *telemetry.Position) int32 { return p.Quality }},
	{telemetry.HasSatsUsed, func(p *telemetry.Position) int32 { return p.SatsUsed }},
	{telemetry.HasSatsInView, func(p *telemetry.Position) int32 { return p.SatsInView }},
	{telemetry.HasHDOP, func(p *telemetry.Position) int32 { return p.HDOPc }},
	{telemetry.HasVDOP, func(p *telemetry.Position) int32 { return p.VDOPc }},
	{telemetry.HasPDOP, func(p *telemetry.Position) int32 { return p.PDOPc }},
	{telemetry.HasErrLat, func(p *telemetry.Position) int32 { return p.ErrLatCm }},
	{telemetry.HasErrLon, func(p *telemetry.Position) int32 { return p.ErrLonCm }},
	{telemetry.HasErrAlt, func(p *telemetry.Position) int32 { return p.ErrAltCm }},
}

func positionColumns(batches []*telemetry.Batch) *positionCols {
	c := &positionCols{}
	for _, b := range batches {
		for i := range b.Positions {
			p := &b.Positions[i]
			c.n++
			c.vehicle = append(c.vehicle, b.VehicleID)
			c.stream = append(c.stream, int64(b.StreamID))
			c.seq = append(c.seq, int64(p.Seq))
			c.time = append(c.time, time.UnixMilli(p.UnixMs).UTC())
			c.lat = append(c.lat, p.LatE7)
			c.lon = append(c.lon, p.LonE7)
			for j, f := range optional {
				var v *int32
				if p.Has&f.bit != 0 {
					x := f.get(p)
					v = &x
				}
				c.opt[j] = append(c.opt[j], v)
			}
		}
	}
	return c
}

func (c *positionCols) args(received time.Time) []any {
	args := []any{c.vehicle, c.stream, c.seq, c.time, c.lat, c.lon}
	for _, o := range c.opt {
		args = append(args, o)
	}
	return append(args, received)
}

type obdCols struct {
	vehicle     []string
	stream, seq []int64
	time        []time.Time
	pid         []int32
	value       []float64
}

func obdColumns(batches []*telemetry.Batch) *obdCols {
	c := &obdCols{}
	for _, b := range batches {
		for i := range b.OBD {
			s := &b.OBD[i]
			c.vehicle = append(c.vehicle, b.VehicleID)
			c.stream = append(c.stream, int64(b.StreamID))
			c.seq = append(c.seq, int64(s.Seq))
			c.time = append(c.time, time.UnixMilli(s.UnixMs).UTC())
			c.pid = append(c.pid, int32(s.PID))
			c.value = append(c.value, s.Value)
		}
	}
	return c
}

type eventCols struct {
	vehicle      []string
	stream, seq  []int64
	time         []time.Time
	typ          []int32
	code, detail []string
	value        []int64
}

func eventColumns(batches []*telemetry.Batch) *eventCols {
	c := &eventCols{}
	for _, b := range batches {
		for i := range b.Events {
			e := &b.Events[i]
			c.vehicle = append(c.vehicle, b.VehicleID)
			c.stream = append(c.stream, int64(b.StreamID))
			c.seq = append(c.seq, int64(e.Seq))
			c.time = append(c.time, time.UnixMilli(e.UnixMs).UTC())
			c.typ = append(c.typ, int32(e.Type))
			c.code = append(c.code, e.Code)
			c.detail = append(c.detail, e.Detail)
			c.value = append(c.value, e.Value)
		}
	}
	return c
}

// vehicleIDs returns the distinct vehicle ids of batches with records, sorted
// so that concurrent transactions lock vehicle rows in the same order.
func vehicleIDs(batches []*telemetry.Batch) []string {
	var ids []string
	for _, b := range batches {
		if b.Len() > 0 {
			ids = append(ids, b.VehicleID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

type latestCols struct {
	vehicle       []string
	stream, seq   []int64
	time          []time.Time
	lat, lon      []int32
	speed, course []*int32
}

// latestColumns returns, per vehicle, the newest position of batches (ties:
// the later one in the batch), sorted by vehicle id.
func latestColumns(batches []*telemetry.Batch) *latestCols {
	type latest struct {
		stream uint64
		p      *telemetry.Position
	}
	newest := map[string]latest{}
	for _, b := range batches {
		for i := range b.Positions {
			p := &b.Positions[i]
			if cur, ok := newest[b.VehicleID]; !ok || p.UnixMs >= cur.p.UnixMs {
				newest[b.VehicleID] = latest{b.StreamID, p}
			}
		}
	}
	c := &latestCols{}
	for _, id := range slices.Sorted(maps.Keys(newest)) {
		l := newest[id]
		c.vehicle = append(c.vehicle, id)
		c.stream = append(c.stream, int64(l.stream))
		c.seq = append(c.seq, int64(l.p.Seq))
		c.time = append(c.time, time.UnixMilli(l.p.UnixMs).UTC())
		c.lat = append(c.lat, l.p.LatE7)
		c.lon = append(c.lon, l.p.LonE7)
		c.speed = append(c.speed, optionalField(l.p, telemetry.HasSpeed, l.p.SpeedMmps))
		c.course = append(c.course, optionalField(l.p, telemetry.HasCourse, l.p.CourseCdeg))
	}
	return c
}

func optionalField(p *telemetry.Position, bit telemetry.Field, v int32) *int32 {
	if p.Has&bit == 0 {
		return nil
	}
	return &v
}

func deadLetterColumns(dls []cloud.DeadLetter, received time.Time) []any {
	var (
		topic, reason []string
		vehicle       []*string
		stream        []*int64
		payload       [][]byte
		at            []time.Time
	)
	for _, d := range dls {
		topic = append(topic, text(d.Topic))
		reason = append(reason, text(d.Reason))
		var v *string
		if d.VehicleID != "" {
			s := text(d.VehicleID)
			v = &s
		}
		vehicle = append(vehicle, v)
		var s *int64
		if d.StreamID != 0 {
			x := int64(d.StreamID)
			s = &x
		}
		stream = append(stream, s)
		p := d.Payload
		if p == nil {
			p = []byte{}
		}
		payload = append(payload, p)
		t := d.ReceivedAt
		if t.IsZero() {
			t = received
		}
		at = append(at, t)
	}
	return []any{topic, vehicle, stream, payload, reason, at}
}

// text makes s storable in a text column: valid UTF-8 without NUL bytes.
func text(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
