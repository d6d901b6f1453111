package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention says how long each table keeps its rows; 0 keeps them for
// ever. Positions and OBD samples go a whole monthly partition at a time,
// dropped once its month ended Retention ago (so a row lives up to a month
// longer); the other tables lose their older rows.
type Retention struct {
	Positions    time.Duration // by record time, whole partitions
	OBD          time.Duration // by record time, whole partitions
	Events       time.Duration // by record time
	DeadLetters  time.Duration // by arrival
	Commands     time.Duration // by creation
	DeviceStatus time.Duration // by arrival of the vehicle's latest status; its history by report time, whole partitions
	Trips        time.Duration // by end
}

const day = 24 * time.Hour

// DefaultRetention returns the retention periods a new deployment gets.
func DefaultRetention() Retention {
	return Retention{Positions: 365 * day, OBD: 90 * day, Events: 365 * day, DeadLetters: 30 * day,
		Commands: 90 * day, DeviceStatus: 90 * day}
}

// retentionLock is the advisory lock key under which one replica at a time
// applies retention.
const retentionLock = 0x466c656574726574 // "Fleetret"

// deleteBatch is how many rows one DELETE removes, so that no transaction
// holds many locks or runs long.
const deleteBatch = 5000

// RetentionResult is what ApplyRetention removed.
type RetentionResult struct {
	// Skipped: another replica holds the retention lock; nothing was done.
	Skipped bool
	// Dropped names the partitions dropped.
	Dropped []string
	// Deleted counts the rows deleted per table.
	Deleted map[string]int64
}

var partitionName = regexp.MustCompile(`^(.+)_y(\d{4})m(\d{2})$`)

// ApplyRetention drops the partitions and deletes the rows that r says are
// too old at Now, unless another replica is doing so (Skipped). Partitions
// it did not create (other names) are left alone. Deletions go in batches
// of deleteBatch rows, each its own transaction. It returns what it
// removed until the first error.
func (db *DB) ApplyRetention(ctx context.Context, r Retention) (RetentionResult, error) {
	res := RetentionResult{Deleted: map[string]int64{}}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return res, classify("apply retention", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(retentionLock)).Scan(&locked); err != nil {
		return res, classify("apply retention", err)
	}
	if !locked {
		res.Skipped = true
		return res, nil
	}
	defer func() {
		// On a broken connection the session, and its lock, is gone anyway.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(retentionLock))
	}()
	now := db.Now()
	for _, p := range []struct {
		table string
		keep  time.Duration
	}{{"positions", r.Positions}, {"obd_samples", r.OBD}, {"device_status_history", r.DeviceStatus}} {
		if p.keep <= 0 {
			continue
		}
		dropped, err := db.dropPartitions(ctx, conn.Conn(), p.table, now.Add(-p.keep))
		res.Dropped = append(res.Dropped, dropped...)
		if err != nil {
			return res, err
		}
	}
	for _, d := range []struct {
		table, column string
		keep          time.Duration
	}{
		{"events", "time", r.Events}, {"dead_letters", "received_at", r.DeadLetters},
		{"commands", "created_at", r.Commands}, {"device_status", "received_at", r.DeviceStatus},
		{"trips", "end_time", r.Trips},
	} {
		if d.keep <= 0 {
			continue
		}
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE ctid IN (SELECT ctid FROM %[1]s WHERE %[2]s < $1 LIMIT %[3]d)",
			pgx.Identifier{d.table}.Sanitize(), pgx.Identifier{d.column}.Sanitize(), deleteBatch)
		cutoff := now.Add(-d.keep)
		for {
			tag, err := conn.Exec(ctx, q, cutoff)
			if err != nil {
				return res, classify("delete old rows of "+d.table, err)
			}
			res.Deleted[d.table] += tag.RowsAffected()
			if tag.RowsAffected() < deleteBatch {
				break
			}
		}
	}
	return res, nil
}

// dropPartitions drops table's monthly partitions whose month ended at or
// before cutoff, oldest first.
func (db *DB) dropPartitions(ctx context.Context, c *pgx.Conn, table string, cutoff time.Time) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass ORDER BY c.relname`, table)
	if err != nil {
		return nil, classify("list partitions of "+table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify("list partitions of "+table, err)
	}
	var dropped []string
	for _, name := range names {
		m := partitionName.FindStringSubmatch(name)
		if m == nil || m[1] != table {
			continue
		}
		year, _ := strconv.Atoi(m[2])
		month, _ := strconv.Atoi(m[3])
		end := time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		if end.After(cutoff) {
			continue
		}
		// DROP of a partition locks the parent briefly; ingest may hold it:
		// wait at most partitionLockTimeout, then the next run tries again.
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", partitionLockTimeout.Milliseconds())); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{name}.Sanitize())
			return err
		})
		if err != nil {
			return dropped, classify("drop partition "+name, err)
		}
		db.Logger.Info("retention dropped a partition", "partition", name, "month_ended", end.Format(time.DateOnly))
		dropped = append(dropped, name)
	}
	return dropped, nil
}
