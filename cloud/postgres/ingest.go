package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// table is one of the record tables Commit writes, with its staging table:
// a temporary table per connection, made when the pool opens the connection
// and emptied at every commit. Its columns are selected from the real table,
// so their types follow the migrations.
type table struct {
	name, stage string
	cols        []string // in COPY order, without received_at
	direct      []string // cols and received_at: a COPY straight into the table
	move        string   // INSERT … SELECT from the staging table; $1 is received_at
}

func newTable(name string, cols ...string) table {
	c := strings.Join(cols, ", ")
	stage := "stage_" + name
	return table{name: name, stage: stage, cols: cols, direct: append(slices.Clip(cols), "received_at"),
		move: fmt.Sprintf("INSERT INTO %s (%s, received_at) SELECT %s, $1::timestamptz FROM %s ON CONFLICT DO NOTHING", name, c, c, stage)}
}

var (
	positionsTable = newTable("positions", "vehicle_id", "stream_id", "seq", "time", "lat_e7", "lon_e7",
		"alt_cm", "geoid_sep_cm", "speed_mmps", "course_cdeg", "mode", "quality", "sats_used", "sats_in_view",
		"hdop_c", "vdop_c", "pdop_c", "err_lat_cm", "err_lon_cm", "err_alt_cm")
	obdTable    = newTable("obd_samples", "vehicle_id", "stream_id", "seq", "time", "pid", "value")
	eventsTable = newTable("events", "vehicle_id", "stream_id", "seq", "time", "type", "code", "detail", "value")
	tables      = []table{positionsTable, obdTable, eventsTable}
)

// createStages makes the staging tables on a new connection (the pool's
// AfterConnect hook).
func createStages(ctx context.Context, c *pgx.Conn) error {
	for _, t := range tables {
		q := fmt.Sprintf("CREATE TEMPORARY TABLE %s ON COMMIT DELETE ROWS AS SELECT %s FROM %s WITH NO DATA",
			t.stage, strings.Join(t.cols, ", "), t.name)
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("create staging table %s: %w", t.stage, err)
		}
	}
	return nil
}

// upsertVehicles records that the vehicles of $1 were heard from, first at
// the times of $2 and last at those of $3 (see seenVehicles).
const upsertVehicles = `INSERT INTO vehicles (id, first_seen, last_seen)
SELECT id, first, last FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(id, first, last)
ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(vehicles.last_seen, excluded.last_seen)`

// updateLatest moves a vehicle's latest fix forward only: a fix older than (or
// as old as) the stored one changes nothing, unless the stored one is
// stamped after the commit's clock limit ($9; NULL: none), which no sane fix
// is: a clock that was far ahead never pins a vehicle's position.
const updateLatest = `UPDATE vehicles v SET pos_stream_id = u.stream_id, pos_seq = u.seq, pos_time = u.time,
	pos_lat_e7 = u.lat_e7, pos_lon_e7 = u.lon_e7, pos_speed_mmps = u.speed_mmps, pos_course_cdeg = u.course_cdeg
FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int4[], $6::int4[], $7::int4[], $8::int4[])
	AS u(id, stream_id, seq, time, lat_e7, lon_e7, speed_mmps, course_cdeg)
WHERE v.id = u.id AND (v.pos_time IS NULL OR u.time > v.pos_time OR v.pos_time > $9::timestamptz)`

const insertDeadLetters = `INSERT INTO dead_letters (topic, vehicle_id, stream_id, payload, reason, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bytea[], $5::text[], $6::timestamptz[])`

// Commit writes c in one transaction: the records of all its batches (see
// writeRecords), then, pipelined in one round trip, the vehicles (first and
// last seen, latest fix moving forward only; rows locked in id order, so
// that concurrent commits hold them briefly and never deadlock), the
// statuses (queueStatus), the answers to commands (queueAnswer) and the dead
// letters, then COMMIT. Records already stored are skipped, not rewritten,
// and not counted in Inserted. See cloud.IngestStore for the error codes.
func (db *DB) Commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, error) {
	var res cloud.CommitResult
	received := c.ReceivedAt
	if received.IsZero() {
		received = db.Now()
	}
	var limit *time.Time
	if !c.ClockLimit.IsZero() {
		limit = &c.ClockLimit
	}
	var recs []records
	for _, r := range []records{
		{positionsTable, newPositionRows(c.Batches)},
		{obdTable, newOBDRows(c.Batches)},
		{eventsTable, newEventRows(c.Batches)},
	} {
		if r.src.Len() > 0 {
			recs = append(recs, r)
		}
	}
	b := &pgx.Batch{}
	if ids, first, last := seenVehicles(c.Batches, c.Statuses, received); len(ids) > 0 {
		b.Queue(upsertVehicles, ids, first, last)
	}
	if l := latestColumns(cloud.NewestFixes(c.Batches, c.ClockLimit)); len(l.vehicle) > 0 {
		b.Queue(updateLatest, l.vehicle, l.stream, l.seq, l.time, l.lat, l.lon, l.speed, l.course, limit)
	}
	applied := make([]bool, len(c.Statuses))
	for i := range c.Statuses {
		if err := queueStatus(b, &c.Statuses[i], limit, &applied[i]); err != nil {
			return res, err
		}
	}
	answers := make([]*pgx.QueuedQuery, len(c.Answers))
	found := make([]bool, len(c.Answers))
	for i := range c.Answers {
		a := &c.Answers[i]
		answers[i] = queueAnswer(b, a.VehicleID, a.CommandID, &a.Result)
		answers[i].QueryRow(func(row pgx.Row) error { return row.Scan(&found[i]) })
	}
	if len(c.DeadLetters) > 0 {
		b.Queue(insertDeadLetters, deadLetterColumns(c.DeadLetters, received)...)
	}
	if len(recs) == 0 && b.Len() == 0 {
		return res, nil
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		n, err := writeRecords(ctx, tx, recs, received)
		if err != nil {
			return err
		}
		res.Inserted = n
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return cloud.CommitResult{}, classify("commit batch", err)
	}
	for i, ok := range found {
		if !ok {
			res.UnknownCommands = append(res.UnknownCommands, i)
		}
	}
	for i, ok := range applied {
		if ok {
			res.AppliedStatuses = append(res.AppliedStatuses, i)
		}
	}
	return res, nil
}

// records are the rows of one table that a Commit writes.
type records struct {
	table table
	src   copySource
}

// writeRecords writes recs in tx and returns how many rows are new. First the
// fast path, when no record is stored yet: a binary COPY straight into each
// table, inside a savepoint. A unique violation there means a record is
// already stored (a replay) or repeated in recs: back to the savepoint, and
// the general path: a COPY into each staging table, then one INSERT … SELECT …
// ON CONFLICT DO NOTHING per table, which skips the records already stored.
func writeRecords(ctx context.Context, tx pgx.Tx, recs []records, received time.Time) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range recs {
		r.src.Reset(received)
		k, err := sp.CopyFrom(ctx, pgx.Identifier{r.table.name}, r.table.direct, r.src)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return writeStaged(ctx, tx, sp, recs, received)
		}
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, sp.Commit(ctx)
}

// writeStaged rolls back to the savepoint sp and writes recs through the
// staging tables; see writeRecords.
func writeStaged(ctx context.Context, tx, sp pgx.Tx, recs []records, received time.Time) (int64, error) {
	if err := sp.Rollback(ctx); err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, r := range recs {
		r.src.Reset(time.Time{})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{r.table.stage}, r.table.cols, r.src); err != nil {
			return 0, err
		}
		b.Queue(r.table.move, received)
	}
	br := tx.SendBatch(ctx, b)
	var n int64
	for range recs {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return 0, err
		}
		n += tag.RowsAffected()
	}
	return n, br.Close()
}

// copySource is a pgx.CopyFromSource that knows how many rows it yields and
// can yield them again.
type copySource interface {
	pgx.CopyFromSource
	Len() int
	// Reset starts again from the first row; a non-zero received is then
	// added to every row as one more value (received_at).
	Reset(received time.Time)
}

// rows is a copySource over one kind of record in a list of batches.
// It reuses one slice for the values of every row: pgx encodes a row before
// asking for the next one.
type rows[T any] struct {
	batches []*telemetry.Batch
	list    func(*telemetry.Batch) []T
	fill    func(b *telemetry.Batch, r *T, vals []any)
	n       int
	bi, ri  int // the current row is list(batches[bi])[ri-1]
	vals    []any
	width   int // of the row fill makes; vals has one more place, for received_at
}

func newRows[T any](batches []*telemetry.Batch, width int, list func(*telemetry.Batch) []T, fill func(*telemetry.Batch, *T, []any)) *rows[T] {
	r := &rows[T]{batches: batches, list: list, fill: fill, vals: make([]any, width, width+1), width: width}
	for _, b := range batches {
		r.n += len(list(b))
	}
	return r
}

// Len returns how many rows the source yields in all.
func (r *rows[T]) Len() int { return r.n }

// Reset starts again from the first row; see copySource.
func (r *rows[T]) Reset(received time.Time) {
	r.bi, r.ri = 0, 0
	r.vals = r.vals[:r.width]
	if !received.IsZero() {
		r.vals = append(r.vals, received)
	}
}

func (r *rows[T]) Next() bool {
	for r.bi < len(r.batches) {
		if r.ri < len(r.list(r.batches[r.bi])) {
			r.ri++
			return true
		}
		r.bi, r.ri = r.bi+1, 0
	}
	return false
}

func (r *rows[T]) Values() ([]any, error) {
	b := r.batches[r.bi]
	r.fill(b, &r.list(b)[r.ri-1], r.vals)
	return r.vals, nil
}

func (r *rows[T]) Err() error { return nil }

// optional lists the optional Position fields in positionsTable's order.
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

func newPositionRows(batches []*telemetry.Batch) *rows[telemetry.Position] {
	return newRows(batches, len(positionsTable.cols), func(b *telemetry.Batch) []telemetry.Position { return b.Positions },
		func(b *telemetry.Batch, p *telemetry.Position, v []any) {
			v[0], v[1], v[2], v[3] = b.VehicleID, int64(b.StreamID), int64(p.Seq), time.UnixMilli(p.UnixMs).UTC()
			v[4], v[5] = p.LatE7, p.LonE7
			for j, f := range optional {
				if p.Has&f.bit != 0 {
					v[6+j] = f.get(p)
				} else {
					v[6+j] = nil
				}
			}
		})
}

func newOBDRows(batches []*telemetry.Batch) *rows[telemetry.OBDSample] {
	return newRows(batches, len(obdTable.cols), func(b *telemetry.Batch) []telemetry.OBDSample { return b.OBD },
		func(b *telemetry.Batch, s *telemetry.OBDSample, v []any) {
			v[0], v[1], v[2], v[3] = b.VehicleID, int64(b.StreamID), int64(s.Seq), time.UnixMilli(s.UnixMs).UTC()
			v[4], v[5] = int32(s.PID), s.Value
		})
}

func newEventRows(batches []*telemetry.Batch) *rows[telemetry.Event] {
	return newRows(batches, len(eventsTable.cols), func(b *telemetry.Batch) []telemetry.Event { return b.Events },
		func(b *telemetry.Batch, e *telemetry.Event, v []any) {
			v[0], v[1], v[2], v[3] = b.VehicleID, int64(b.StreamID), int64(e.Seq), time.UnixMilli(e.UnixMs).UTC()
			v[4], v[5], v[6], v[7] = int32(e.Type), e.Code, e.Detail, e.Value
		})
}

// seenVehicles returns the vehicles heard from, sorted by id so that
// concurrent transactions lock vehicle rows in the same order, with when
// first and last: received for the vehicles of batches with records, the
// report's time (at most received) for those of statuses, so that a
// retained status the broker hands again does not make a vehicle gone for
// long look alive.
func seenVehicles(batches []*telemetry.Batch, statuses []cloud.DeviceStatus, received time.Time) (ids []string, first, last []time.Time) {
	seen := map[string][2]time.Time{}
	note := func(id string, t time.Time) {
		cur, ok := seen[id]
		if !ok {
			seen[id] = [2]time.Time{t, t}
			return
		}
		if t.Before(cur[0]) {
			cur[0] = t
		}
		if t.After(cur[1]) {
			cur[1] = t
		}
		seen[id] = cur
	}
	for _, b := range batches {
		if b.Len() > 0 {
			note(b.VehicleID, received)
		}
	}
	for i := range statuses {
		s := &statuses[i]
		t := s.Time
		if t.After(received) || t.IsZero() {
			t = received
		}
		note(s.VehicleID, t)
	}
	ids = slices.Sorted(maps.Keys(seen))
	first, last = make([]time.Time, len(ids)), make([]time.Time, len(ids))
	for i, id := range ids {
		first[i], last[i] = seen[id][0], seen[id][1]
	}
	return ids, first, last
}

type latestCols struct {
	vehicle       []string
	stream, seq   []int64
	time          []time.Time
	lat, lon      []int32
	speed, course []*int32
}

// latestColumns returns the columns of updateLatest for fixes.
func latestColumns(fixes []cloud.Fix) *latestCols {
	c := &latestCols{}
	for _, f := range fixes {
		c.vehicle = append(c.vehicle, f.VehicleID)
		c.stream = append(c.stream, int64(f.StreamID))
		c.seq = append(c.seq, int64(f.Seq))
		c.time = append(c.time, f.Time())
		c.lat = append(c.lat, f.LatE7)
		c.lon = append(c.lon, f.LonE7)
		c.speed = append(c.speed, optionalField(f.Position, telemetry.HasSpeed, f.SpeedMmps))
		c.course = append(c.course, optionalField(f.Position, telemetry.HasCourse, f.CourseCdeg))
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
