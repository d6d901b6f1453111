package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.CommandService = (*DB)(nil)

// CreateCommand stores c for a known vehicle; ENOTFOUND for another.
func (db *DB) CreateCommand(ctx context.Context, c *cloud.Command) error {
	pids := make([]int32, len(c.PIDs))
	for i, p := range c.PIDs {
		pids[i] = int32(p)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO commands (id, vehicle_id, type, interval_ms, pids, created_at, expires_at)
SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM vehicles WHERE id = $2)`,
		c.ID, c.VehicleID, string(c.Type), c.IntervalMs, pids, c.CreatedAt, c.ExpiresAt)
	if err != nil {
		return classify("create command", err)
	}
	if tag.RowsAffected() == 0 {
		return cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", c.VehicleID)
	}
	return nil
}

// MarkSent records when the broker took the command.
func (db *DB) MarkSent(ctx context.Context, vehicleID, id string, at time.Time) error {
	if _, err := db.pool.Exec(ctx, "UPDATE commands SET sent_at = $3 WHERE vehicle_id = $1 AND id = $2", vehicleID, id, at); err != nil {
		return classify("mark command sent", err)
	}
	return nil
}

// FindCommand returns a vehicle's command with its result, or ENOTFOUND.
func (db *DB) FindCommand(ctx context.Context, vehicleID, id string) (*cloud.Command, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, vehicle_id, type, interval_ms, pids, created_at, expires_at, sent_at,
	result_ok, result_error, result_dtcs, result_time, result_received_at
FROM commands WHERE vehicle_id = $1 AND id = $2`, vehicleID, id)
	if err != nil {
		return nil, classify("find command", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*cloud.Command, error) {
		var (
			c          cloud.Command
			typ        string
			interval   *int64
			pids       []int32
			sent       *time.Time
			ok         *bool
			msg        *string
			dtcs       []string
			at, recvAt *time.Time
		)
		if err := row.Scan(&c.ID, &c.VehicleID, &typ, &interval, &pids, &c.CreatedAt, &c.ExpiresAt, &sent,
			&ok, &msg, &dtcs, &at, &recvAt); err != nil {
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
		if sent != nil {
			c.SentAt = sent.UTC()
		}
		if recvAt != nil {
			c.Result = &cloud.CommandResult{OK: ok != nil && *ok, DTCs: dtcs, ReceivedAt: recvAt.UTC()}
			if msg != nil {
				c.Result.Error = *msg
			}
			if at != nil {
				c.Result.Time = at.UTC()
			}
		}
		return &c, nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q has no command %q", vehicleID, id)
	}
	if err != nil {
		return nil, classify("find command", err)
	}
	return c, nil
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
