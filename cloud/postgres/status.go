package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.StatusService = (*DB)(nil)

// upsertStatus replaces the stored status with a newer one (by agent time),
// or with any one when the stored status is stamped after the clock limit
// ($21; NULL: none): a clock that was far ahead never pins a vehicle's
// status. online_since is when the current connection's first report came:
// kept while the agent stays online (unless it is after the clock limit),
// cleared when it goes offline.
const upsertStatus = `INSERT INTO device_status (vehicle_id, online, time, online_since, agent_version, stream_id,
	next_seq, outbox_depth, outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters,
	uptime_ms, received_at, clock_source, clock_offset_ms, outbox_trouble, obd_state)
VALUES ($1, $2, $3, CASE WHEN $2 THEN $3::timestamptz END, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
	$17, $18, $19, $20)
ON CONFLICT (vehicle_id) DO UPDATE SET online = excluded.online, time = excluded.time,
	online_since = CASE WHEN NOT excluded.online THEN NULL
		WHEN device_status.online AND ($21::timestamptz IS NULL OR coalesce(device_status.online_since, device_status.time) <= $21::timestamptz)
			THEN coalesce(device_status.online_since, excluded.time)
		ELSE excluded.time END,
	agent_version = excluded.agent_version, stream_id = excluded.stream_id, next_seq = excluded.next_seq,
	outbox_depth = excluded.outbox_depth, outbox_bytes = excluded.outbox_bytes,
	oldest_unsent_age_ms = excluded.oldest_unsent_age_ms, dropped = excluded.dropped, fix_mode = excluded.fix_mode,
	no_fix_since = excluded.no_fix_since, rtt_ms = excluded.rtt_ms, counters = excluded.counters,
	uptime_ms = excluded.uptime_ms, received_at = excluded.received_at, clock_source = excluded.clock_source,
	clock_offset_ms = excluded.clock_offset_ms, outbox_trouble = excluded.outbox_trouble, obd_state = excluded.obd_state
WHERE excluded.time > device_status.time OR device_status.time > $21::timestamptz`

// insertStatusHistory keeps every status reported, once: the same report
// again (a retained status handed to another replica, a restart) is skipped.
const insertStatusHistory = `INSERT INTO device_status_history (vehicle_id, online, time, agent_version, stream_id,
	next_seq, outbox_depth, outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters,
	uptime_ms, received_at, clock_source, clock_offset_ms, outbox_trouble, obd_state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT DO NOTHING`

// applyWill marks the vehicle offline for a last will older than its last
// report but not older than the current connection: the agent died after
// reporting. The newer report's figures are kept.
const applyWill = `UPDATE device_status SET online = false, online_since = NULL, received_at = $3
WHERE vehicle_id = $1 AND online AND $2 >= online_since AND $2 <= time`

// SaveStatus stores s; see cloud.StatusService.
func (db *DB) SaveStatus(ctx context.Context, s *cloud.DeviceStatus) error {
	b := &pgx.Batch{}
	ids, first, last := seenVehicles(nil, []cloud.DeviceStatus{*s}, s.ReceivedAt)
	b.Queue(upsertVehicles, ids, first, last)
	if err := queueStatus(b, s, nil, nil); err != nil {
		return err
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return classify("save device status", err)
	}
	return nil
}

// queueStatus queues the statements that apply s (upsertStatus, and
// applyWill for an offline status) and keep it in the history on b; limit is
// the clock limit (nil: none). Once the batch ran, *applied (when not nil)
// says whether s changed the stored status. It returns an error with code
// EINVALID when s cannot be stored.
func queueStatus(b *pgx.Batch, s *cloud.DeviceStatus, limit *time.Time, applied *bool) error {
	counters, err := json.Marshal(s.Counters)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "status counters: %w", err)
	}
	if s.Counters == nil {
		counters = []byte("{}")
	}
	var noFix *time.Time
	if !s.NoFixSince.IsZero() {
		noFix = &s.NoFixSince
	}
	// Unknown (0 on the wire) is NULL, never a made-up value.
	var clockSource, clockOffset *int64
	if s.ClockSource != cloud.ClockUnknown {
		v := int64(s.ClockSource)
		clockSource = &v
	}
	if s.ClockOffset != 0 {
		v := s.ClockOffset.Milliseconds()
		clockOffset = &v
	}
	args := []any{s.VehicleID, s.Online, s.Time, text(s.AgentVersion), int64(s.StreamID), int64(s.NextSeq),
		int64(s.OutboxDepth), int64(s.OutboxBytes), s.OldestUnsentAge.Milliseconds(), int64(s.Dropped), s.FixMode, noFix,
		s.RTT.Milliseconds(), counters, s.Uptime.Milliseconds(), s.ReceivedAt,
		clockSource, clockOffset, text(s.OutboxTrouble), text(s.OBDState)}
	changed := func(ct pgconn.CommandTag) error {
		if applied != nil && ct.RowsAffected() > 0 {
			*applied = true
		}
		return nil
	}
	b.Queue(upsertStatus, append(args, limit)...).Exec(changed)
	if !s.Online {
		b.Queue(applyWill, s.VehicleID, s.Time, s.ReceivedAt).Exec(changed)
	}
	b.Queue(insertStatusHistory, args...)
	return nil
}

// statusCols are device_status's columns as statusRow scans them.
const statusCols = `vehicle_id, online, time, online_since, agent_version, stream_id, next_seq, outbox_depth,
	outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters, uptime_ms, received_at,
	clock_source, clock_offset_ms, outbox_trouble, obd_state`

const selectStatus = "SELECT " + statusCols + " FROM device_status"

// FindStatus returns a vehicle's status, or ENOTFOUND.
func (db *DB) FindStatus(ctx context.Context, vehicleID string) (*cloud.DeviceStatus, error) {
	rows, err := db.pool.Query(ctx, selectStatus+" WHERE vehicle_id = $1", vehicleID)
	if err != nil {
		return nil, classify("find device status", err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "no device status for vehicle %q", vehicleID)
	}
	if err != nil {
		return nil, classify("find device status", err)
	}
	return s, nil
}

const selectStatusHistory = `vehicle_id, online, time, NULL::timestamptz, agent_version, stream_id, next_seq, outbox_depth,
	outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters, uptime_ms, received_at,
	clock_source, clock_offset_ms, outbox_trouble, obd_state`

// FindStatusHistory returns one page of a vehicle's reported statuses; see
// cloud.StatusService.
func (db *DB) FindStatusHistory(ctx context.Context, f cloud.StatusFilter) ([]*cloud.DeviceStatus, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, from: f.From, to: f.To, after: f.After, limit: f.Limit, keys: keyset{
		cols: []string{"time", "online::int"},
		args: func(c *cloud.Cursor) []any { return []any{c.Time, int(c.Seq)} }}}
	sql, args := p.query(selectStatusHistory, "device_status_history")
	return findPage(ctx, db, p, "find device status history", sql, args, scanStatus, (*cloud.DeviceStatus).Cursor)
}

func scanStatus(row pgx.CollectableRow) (*cloud.DeviceStatus, error) {
	var st statusRow
	if err := row.Scan(st.targets()...); err != nil {
		return nil, err
	}
	return st.status()
}

// statusRow holds the columns of selectStatus as scanned, each nullable (a
// LEFT JOIN may have no status).
type statusRow struct {
	vehicle, version                 *string
	online                           *bool
	at, since, noFix, received       *time.Time
	stream, next, depth, bytes, drop *int64
	age, rtt, uptime                 *int64
	fix                              *int32
	counters                         []byte
	clockSource                      *int32
	clockOffset                      *int64
	outboxTrouble, obdState          *string
}

func (r *statusRow) targets() []any {
	return []any{&r.vehicle, &r.online, &r.at, &r.since, &r.version, &r.stream, &r.next, &r.depth, &r.bytes,
		&r.age, &r.drop, &r.fix, &r.noFix, &r.rtt, &r.counters, &r.uptime, &r.received,
		&r.clockSource, &r.clockOffset, &r.outboxTrouble, &r.obdState}
}

// status returns the scanned status, nil when there was none.
func (r *statusRow) status() (*cloud.DeviceStatus, error) {
	if r.vehicle == nil || r.online == nil || r.at == nil || r.received == nil {
		return nil, nil
	}
	u := func(p *int64) uint64 {
		if p == nil {
			return 0
		}
		return uint64(*p)
	}
	ms := func(p *int64) time.Duration { return time.Duration(u(p)) * time.Millisecond }
	s := &cloud.DeviceStatus{VehicleID: *r.vehicle, Online: *r.online, Time: r.at.UTC(), ReceivedAt: r.received.UTC()}
	if r.version != nil {
		s.AgentVersion = *r.version
	}
	s.StreamID, s.NextSeq, s.OutboxDepth, s.OutboxBytes, s.Dropped = u(r.stream), u(r.next), u(r.depth), u(r.bytes), u(r.drop)
	s.OldestUnsentAge, s.RTT, s.Uptime = ms(r.age), ms(r.rtt), ms(r.uptime)
	if r.fix != nil {
		s.FixMode = int(*r.fix)
	}
	if r.clockSource != nil {
		s.ClockSource = cloud.ClockSource(*r.clockSource)
	}
	if r.clockOffset != nil {
		s.ClockOffset = time.Duration(*r.clockOffset) * time.Millisecond
	}
	if r.outboxTrouble != nil {
		s.OutboxTrouble = *r.outboxTrouble
	}
	if r.obdState != nil {
		s.OBDState = *r.obdState
	}
	s.OnlineSince, s.NoFixSince = utc(r.since), utc(r.noFix)
	if len(r.counters) > 0 {
		if err := json.Unmarshal(r.counters, &s.Counters); err != nil {
			return nil, err
		}
	}
	return s, nil
}
