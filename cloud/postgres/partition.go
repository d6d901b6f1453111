package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitioned lists the tables partitioned by month on their time column.
var partitioned = []string{"positions", "obd_samples", "device_status_history"}

// partitionLockTimeout bounds how long partition maintenance waits for a
// table lock (ingest's inserts hold one briefly).
const partitionLockTimeout = 5 * time.Second

// partitionLock is the advisory lock key under which partitions are made, so
// that replicas do not race.
const partitionLock = 0x466c6565747061 // "Fleetpa"

// EnsurePartitions makes sure the monthly partitions of positions and OBD
// samples exist from the month before Now through MonthsAhead months after
// it, and gives the rows the DEFAULT partition caught (late history older
// than every partition, e.g. a fix from 2019) partitions of their own
// months, so that retention drops them with their month and the default
// partition stays empty. It is idempotent and safe to run from several
// replicas at once.
func (db *DB) EnsurePartitions(ctx context.Context) error {
	cur := monthStart(db.Now())
	for i := -1; i <= db.MonthsAhead; i++ {
		month := cur.AddDate(0, i, 0)
		for _, table := range partitioned {
			if err := db.ensurePartition(ctx, table, month); err != nil {
				return err
			}
		}
	}
	for _, table := range partitioned {
		rows, err := db.pool.Query(ctx, fmt.Sprintf("SELECT DISTINCT date_trunc('month', time, 'UTC') FROM %s",
			pgx.Identifier{table + "_default"}.Sanitize()))
		if err != nil {
			return classify("read the months of "+table+"_default", err)
		}
		months, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return classify("read the months of "+table+"_default", err)
		}
		for _, m := range months {
			if err := db.ensurePartition(ctx, table, m.UTC()); err != nil {
				return err
			}
		}
	}
	return nil
}

// PartitionName returns the name of table's partition for the month of t,
// e.g. positions_y2026m11.
func PartitionName(table string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s_y%04dm%02d", table, t.Year(), int(t.Month()))
}

// ensurePartition creates table's partition for the month starting at from,
// moving into it any rows the default partition caught for that month first
// (attaching a range the default partition holds rows of would fail).
func (db *DB) ensurePartition(ctx context.Context, table string, from time.Time) error {
	name := PartitionName(table, from)
	to := from.AddDate(0, 1, 0)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		id, parent, def := pgx.Identifier{name}.Sanitize(), pgx.Identifier{table}.Sanitize(), pgx.Identifier{table + "_default"}.Sanitize()
		bounds := fmt.Sprintf("FROM ('%s') TO ('%s')", sprintTime(from), sprintTime(to))
		stmts := []string{
			// No insert may reach the default partition between the move
			// and the attach (which would then fail); waits at most
			// partitionLockTimeout, then the next run tries again.
			fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", partitionLockTimeout.Milliseconds()),
			fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", def),
			fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", id, parent),
			fmt.Sprintf("WITH moved AS (DELETE FROM %s WHERE time >= '%s' AND time < '%s' RETURNING *) INSERT INTO %s SELECT * FROM moved",
				def, sprintTime(from), sprintTime(to), id),
			fmt.Sprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES %s", parent, id, bounds),
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return classify("create partition "+name, err)
	}
	return nil
}

// RunMaintenance keeps the partitions ahead of time: it runs EnsurePartitions
// every interval until ctx is done, logging failures (the default partitions
// keep inserts working meanwhile). It returns nil when ctx is done.
func (db *DB) RunMaintenance(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := db.EnsurePartitions(ctx); err != nil && ctx.Err() == nil {
				db.Logger.Warn("ensure partitions failed", "err", err)
			}
		}
	}
}
