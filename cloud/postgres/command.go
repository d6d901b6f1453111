package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.CommandService = (*DB)(nil)

// CreateCommand stores c for a known vehicle; ENOTFOUND for another. A key
// the vehicle already has a command for returns that command instead; see
// cloud.CommandService.
func (db *DB) CreateCommand(ctx context.Context, c *cloud.Command) (*cloud.Command, bool, error) {
	pids := make([]int32, len(c.PIDs))
	for i, p := range c.PIDs {
		pids[i] = int32(p)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO commands (id, vehicle_id, type, interval_ms, pids, created_at, expires_at,
	idempotency_key, request_hash, token_name)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM vehicles WHERE id = $2)
ON CONFLICT (vehicle_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
		c.ID, c.VehicleID, string(c.Type), c.IntervalMs, pids, c.CreatedAt, c.ExpiresAt,
		optText(c.IdempotencyKey), optText(c.RequestHash), optText(c.Token))
	if err != nil {
		return nil, false, classify("create command", err)
	}
	if tag.RowsAffected() == 1 {
		return c, true, nil
	}
	if c.IdempotencyKey != "" {
		rows, err := db.pool.Query(ctx, selectCommand+" WHERE vehicle_id = $1 AND idempotency_key = $2", c.VehicleID, c.IdempotencyKey)
		if err != nil {
			return nil, false, classify("create command", err)
		}
		prev, err := pgx.CollectExactlyOneRow(rows, scanCommand)
		if err == nil {
			return prev, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, false, classify("create command", err)
		}
	}
	return nil, false, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", c.VehicleID)
}

// MarkSent records when the broker took the command (not for one cancelled
// meanwhile).
func (db *DB) MarkSent(ctx context.Context, vehicleID, id string, at time.Time) error {
	if _, err := db.pool.Exec(ctx, "UPDATE commands SET sent_at = $3 WHERE vehicle_id = $1 AND id = $2 AND cancelled_at IS NULL AND sent_at IS NULL",
		vehicleID, id, at); err != nil {
		return classify("mark command sent", err)
	}
	return nil
}

const commandCols = `id, vehicle_id, type, interval_ms, pids, created_at, expires_at, sent_at, cancelled_at,
	idempotency_key, request_hash, token_name, result_ok, result_error, result_dtcs, result_time, result_received_at`

const selectCommand = "SELECT " + commandCols + " FROM commands"

// FindCommand returns a vehicle's command with its result, or ENOTFOUND.
func (db *DB) FindCommand(ctx context.Context, vehicleID, id string) (*cloud.Command, error) {
	rows, err := db.pool.Query(ctx, selectCommand+" WHERE vehicle_id = $1 AND id = $2", vehicleID, id)
	if err != nil {
		return nil, classify("find command", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCommand)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q has no command %q", vehicleID, id)
	}
	if err != nil {
		return nil, classify("find command", err)
	}
	return c, nil
}

// FindCommands returns one page of a vehicle's commands, newest first; see
// cloud.CommandService.
func (db *DB) FindCommands(ctx context.Context, f cloud.CommandFilter) ([]*cloud.Command, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, after: f.After, limit: f.Limit, keys: keyset{cols: []string{"created_at", "id"}, desc: true,
		args: func(c *cloud.Cursor) []any { return []any{c.Time, c.Key} }}}
	sql, args := p.query(commandCols, "commands")
	return findPage(ctx, db, p, "find commands", sql, args, scanCommand, (*cloud.Command).Cursor)
}

// CancelCommand cancels a command not yet sent; see cloud.CommandService.
func (db *DB) CancelCommand(ctx context.Context, vehicleID, id string, at time.Time) (*cloud.Command, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE commands SET cancelled_at = $3 WHERE vehicle_id = $1 AND id = $2
	AND sent_at IS NULL AND cancelled_at IS NULL AND result_received_at IS NULL AND expires_at > $3`, vehicleID, id, at)
	if err != nil {
		return nil, classify("cancel command", err)
	}
	c, err := db.FindCommand(ctx, vehicleID, id)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return nil, cloud.Errorf(cloud.ECONFLICT, "command %s is %s: only a pending command can be cancelled", id, c.Status(at))
	}
	return c, nil
}

// ClaimPending returns commands to publish again and marks them attempted;
// see cloud.CommandService. Replicas claiming at once skip each other's rows.
func (db *DB) ClaimPending(ctx context.Context, now, olderThan time.Time, retryAfter time.Duration, limit int) ([]*cloud.Command, error) {
	rows, err := db.pool.Query(ctx, `WITH due AS (
	SELECT id FROM commands
	WHERE sent_at IS NULL AND cancelled_at IS NULL AND result_received_at IS NULL
		AND expires_at > $1 AND created_at < $2 AND (attempted_at IS NULL OR attempted_at < $1::timestamptz - $3::interval)
	ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED),
claimed AS (UPDATE commands c SET attempted_at = $1 FROM due WHERE c.id = due.id RETURNING c.id)
`+selectCommand+` WHERE id IN (SELECT id FROM claimed) ORDER BY created_at`,
		now, olderThan, retryAfter, limit)
	if err != nil {
		return nil, classify("claim pending commands", err)
	}
	cs, err := pgx.CollectRows(rows, scanCommand)
	if err != nil {
		return nil, classify("claim pending commands", err)
	}
	return cs, nil
}

func scanCommand(row pgx.CollectableRow) (*cloud.Command, error) {
	var (
		c                cloud.Command
		typ              string
		interval         *int64
		pids             []int32
		sent, cancelled  *time.Time
		key, hash, token *string
		ok               *bool
		msg              *string
		dtcs             []string
		at, recvAt       *time.Time
	)
	if err := row.Scan(&c.ID, &c.VehicleID, &typ, &interval, &pids, &c.CreatedAt, &c.ExpiresAt, &sent, &cancelled,
		&key, &hash, &token, &ok, &msg, &dtcs, &at, &recvAt); err != nil {
		return nil, err
	}
	c.Type = cloud.CommandType(typ)
	if interval != nil {
		c.IntervalMs = *interval
	}
	for _, p := range pids {
		c.PIDs = append(c.PIDs, uint16(p))
	}
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	c.SentAt, c.CancelledAt = utc(sent), utc(cancelled)
	c.IdempotencyKey, c.RequestHash, c.Token = deref(key), deref(hash), deref(token)
	if recvAt != nil {
		c.Result = &cloud.CommandResult{OK: ok != nil && *ok, Error: deref(msg), DTCs: dtcs, Time: utc(at), ReceivedAt: recvAt.UTC()}
	}
	return &c, nil
}

// optText returns nil for "" (SQL NULL), else s made storable.
func optText(s string) *string {
	if s == "" {
		return nil
	}
	s = text(s)
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// SaveCommandResult stores the first answer to a command; see
// cloud.CommandService.
func (db *DB) SaveCommandResult(ctx context.Context, vehicleID, id string, r *cloud.CommandResult) error {
	b := &pgx.Batch{}
	var exists bool
	queueAnswer(b, vehicleID, id, r).QueryRow(func(row pgx.Row) error { return row.Scan(&exists) })
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return classify("save command result", err)
	}
	if !exists {
		return cloud.Errorf(cloud.ENOTFOUND, "vehicle %q has no command %q", vehicleID, id)
	}
	return nil
}

// saveAnswer stores the first answer to a command (a repeated one changes
// nothing) and says whether the command exists.
const saveAnswer = `WITH u AS (
	UPDATE commands SET result_ok = $3, result_error = $4, result_dtcs = $5, result_time = $6, result_received_at = $7
	WHERE vehicle_id = $1 AND id = $2 AND result_received_at IS NULL RETURNING 1)
SELECT EXISTS (SELECT 1 FROM commands WHERE vehicle_id = $1 AND id = $2)`

// queueAnswer queues saveAnswer for r on b; its one row says whether the
// command exists.
func queueAnswer(b *pgx.Batch, vehicleID, id string, r *cloud.CommandResult) *pgx.QueuedQuery {
	dtcs := make([]string, len(r.DTCs))
	for i, d := range r.DTCs {
		dtcs[i] = text(d)
	}
	return b.Queue(saveAnswer, vehicleID, id, r.OK, text(r.Error), dtcs, r.Time, r.ReceivedAt)
}
