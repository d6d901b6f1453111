// Package postgres stores the fleet in PostgreSQL through pgx v5: the embedded
// migrations (golang-migrate), monthly partitions made ahead, the ingest
// transaction and the queries behind the API. It is the only package that
// imports pgx and the migration library.
package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetgate/fleetgate/cloud"
)

// DB is the fleet database. Create it with NewDB, set its fields, then Open it.
// Its methods are safe for concurrent use once it is open.
type DB struct {
	URL string
	// Now returns the current time; partitions are made around it.
	Now func() time.Time
	// MonthsAhead is how many months of partitions past the current one are
	// kept created (default 3).
	MonthsAhead int
	// StatementTimeout bounds every statement of the pool's connections
	// (PostgreSQL's statement_timeout), unless the URL sets one; 0: none.
	StatementTimeout time.Duration
	Logger           *slog.Logger

	pool *pgxpool.Pool
}

var (
	_ cloud.IngestStore     = (*DB)(nil)
	_ cloud.VehicleService  = (*DB)(nil)
	_ cloud.PositionService = (*DB)(nil)
	_ cloud.OBDService      = (*DB)(nil)
	_ cloud.Pinger          = (*DB)(nil)
)

// DefaultStatementTimeout is DB.StatementTimeout's default: longer than
// any ingest commit or API query takes, short enough that a runaway query
// does not hold a connection for long.
const DefaultStatementTimeout = 15 * time.Second

// NewDB returns a DB for the database at url (postgres://...), not yet open.
func NewDB(url string) *DB {
	return &DB{URL: url, Now: time.Now, MonthsAhead: 3, StatementTimeout: DefaultStatementTimeout, Logger: slog.New(slog.DiscardHandler)}
}

// CheckURL reports whether url is a connection string the pool accepts
// (the checks Open makes before it connects).
func CheckURL(url string) error {
	_, err := pgxpool.ParseConfig(url)
	return err
}

// Open connects to the database and makes sure the partitions around now
// exist. The schema must have been migrated (Migrate): every new connection
// makes Commit's temporary staging tables from it. (Behind a connection
// pooler, use session pooling: temporary tables belong to a session.) It returns an error with
// code EUNAVAILABLE when the server cannot be reached.
func (db *DB) Open(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "parse DATABASE_URL: %w", err)
	}
	cfg.AfterConnect = createStages
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set && db.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(db.StatementTimeout.Milliseconds(), 10)
	}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "open database pool: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.pool.Close()
		db.pool = nil
		return err
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		db.pool.Close()
		db.pool = nil
		return err
	}
	return nil
}

// Close closes the connections. Calls in flight are waited for.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
	}
	return nil
}

// Ping returns nil when the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	if db.pool == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "PostgreSQL: database not open")
	}
	if _, err := db.pool.Exec(ctx, "SELECT 1"); err != nil {
		return classify("ping PostgreSQL", err)
	}
	return nil
}

// classify wraps err from operation op in a *cloud.Error whose code tells the
// caller what to do: EUNAVAILABLE for failures that a retry may cure (server
// down, connection lost, shutdown, deadlock, resources exhausted), EINVALID for
// data the server refused, EINTERNAL for the rest (schema or query bugs).
func classify(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case code == "57014": // query_canceled: the statement timeout
			return cloud.Errorf(cloud.ETIMEOUT, "%s: the query took longer than the database's statement timeout: %w", op, err)
		case len(code) == 5 && (code[:2] == "08" || code[:2] == "53" || code[:2] == "57" || code[:2] == "58"),
			code == "40001", code == "40P01", code == "55P03":
			return cloud.Errorf(cloud.EUNAVAILABLE, "%s: %w", op, err)
		case len(code) == 5 && (code[:2] == "22" || code[:2] == "23"):
			return cloud.Errorf(cloud.EINVALID, "%s: %w", op, err)
		}
		return cloud.Errorf(cloud.EINTERNAL, "%s: %w", op, err)
	}
	// Everything else is the connection: refused, reset, timed out, closed
	// while in use. A retry may cure it; never lose or dead-letter data for it.
	return cloud.Errorf(cloud.EUNAVAILABLE, "%s: %w", op, err)
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func sprintTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z07:00") }
