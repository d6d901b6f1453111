package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.StatusService = (*DB)(nil)

// upsertStatus replaces the stored status with a newer one (by agent time),
// or with any one when the stored status is stamped after the clock limit
// ($17; NULL: none): a clock that was far ahead never pins a vehicle's
// status. online_since is when the current connection's first report came:
// kept while the agent stays online (unless it is after the clock limit),
// cleared when it goes offline.
const upsertStatus = `INSERT INTO device_status (vehicle_id, online, time, online_since, agent_version, stream_id,
	next_seq, outbox_depth, outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters,
	uptime_ms, received_at)
VALUES ($1, $2, $3, CASE WHEN $2 THEN $3::timestamptz END, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (vehicle_id) DO UPDATE SET online = excluded.online, time = excluded.time,
	online_since = CASE WHEN NOT excluded.online THEN NULL
		WHEN device_status.online AND ($17::timestamptz IS NULL OR coalesce(device_status.online_since, device_status.time) <= $17::timestamptz)
			THEN coalesce(device_status.online_since, excluded.time)
		ELSE excluded.time END,
	agent_version = excluded.agent_version, stream_id = excluded.stream_id, next_seq = excluded.next_seq,
	outbox_depth = excluded.outbox_depth, outbox_bytes = excluded.outbox_bytes,
	oldest_unsent_age_ms = excluded.oldest_unsent_age_ms, dropped = excluded.dropped, fix_mode = excluded.fix_mode,
	no_fix_since = excluded.no_fix_since, rtt_ms = excluded.rtt_ms, counters = excluded.counters,
	uptime_ms = excluded.uptime_ms, received_at = excluded.received_at
WHERE excluded.time > device_status.time OR device_status.time > $17::timestamptz`

// applyWill marks the vehicle offline for a last will older than its last
// report but not older than the current connection: the agent died after
// reporting. The newer report's figures are kept.
const applyWill = `UPDATE device_status SET online = false, online_since = NULL, received_at = $3
WHERE vehicle_id = $1 AND online AND $2 >= online_since AND $2 <= time`

// SaveStatus stores s; see cloud.StatusService.
func (db *DB) SaveStatus(ctx context.Context, s *cloud.DeviceStatus) error {
	b := &pgx.Batch{}
	if err := queueStatus(b, s, nil); err != nil {
		return err
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return classify("save device status", err)
	}
	return nil
}

// queueStatus queues the statements that apply s (upsertStatus, and
// applyWill for an offline status) on b; limit is the clock limit (nil:
// none). It returns an error with code EINVALID when s cannot be stored.
func queueStatus(b *pgx.Batch, s *cloud.DeviceStatus, limit *time.Time) error {
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
	b.Queue(upsertStatus, s.VehicleID, s.Online, s.Time, text(s.AgentVersion), int64(s.StreamID), int64(s.NextSeq),
		int64(s.OutboxDepth), int64(s.OutboxBytes), s.OldestUnsentAge.Milliseconds(), int64(s.Dropped), s.FixMode, noFix,
		s.RTT.Milliseconds(), counters, s.Uptime.Milliseconds(), s.ReceivedAt, limit)
	if !s.Online {
		b.Queue(applyWill, s.VehicleID, s.Time, s.ReceivedAt)
	}
	return nil
}

const selectStatus = `SELECT vehicle_id, online, time, online_since, agent_version, stream_id, next_seq, outbox_depth,
	outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters, uptime_ms, received_at
FROM device_status`

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

// FindStatuses returns every vehicle's status.
func (db *DB) FindStatuses(ctx context.Context) (map[string]*cloud.DeviceStatus, error) {
	rows, err := db.pool.Query(ctx, selectStatus)
	if err != nil {
		return nil, classify("find device statuses", err)
	}
	all, err := pgx.CollectRows(rows, scanStatus)
	if err != nil {
		return nil, classify("find device statuses", err)
	}
	out := make(map[string]*cloud.DeviceStatus, len(all))
	for _, s := range all {
		out[s.VehicleID] = s
	}
	return out, nil
}

func scanStatus(row pgx.CollectableRow) (*cloud.DeviceStatus, error) {
	var (
		s                                cloud.DeviceStatus
		since, noFix                     *time.Time
		stream, next, depth, bytes, drop *int64
		age, rtt, uptime                 *int64
		fix                              *int32
		counters                         []byte
	)
	if err := row.Scan(&s.VehicleID, &s.Online, &s.Time, &since, &s.AgentVersion, &stream, &next, &depth, &bytes,
		&age, &drop, &fix, &noFix, &rtt, &counters, &uptime, &s.ReceivedAt); err != nil {
		return nil, err
	}
	u := func(p *int64) uint64 {
		if p == nil {
			return 0
		}
		return uint64(*p)
	}
	ms := func(p *int64) time.Duration { return time.Duration(u(p)) * time.Millisecond }
	s.StreamID, s.NextSeq, s.OutboxDepth, s.OutboxBytes, s.Dropped = u(stream), u(next), u(depth), u(bytes), u(drop)
	s.OldestUnsentAge, s.RTT, s.Uptime = ms(age), ms(rtt), ms(uptime)
	if fix != nil {
		s.FixMode = int(*fix)
	}
	if since != nil {
		s.OnlineSince = since.UTC()
	}
	if noFix != nil {
		s.NoFixSince = noFix.UTC()
	}
	s.Time, s.ReceivedAt = s.Time.UTC(), s.ReceivedAt.UTC()
	if err := json.Unmarshal(counters, &s.Counters); err != nil {
		return nil, err
	}
	return &s, nil
}
