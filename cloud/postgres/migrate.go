package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fleetgate/fleetgate/cloud"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the database named in url if it does not exist (connecting
// to the "postgres" database of the same server to do so), then applies every
// embedded migration not yet applied. Running it again changes nothing.
// Concurrent callers (several replicas starting) are serialised by the
// migration library's advisory lock. It returns an error with code
// EUNAVAILABLE when the server cannot be reached.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "parse DATABASE_URL: %w", err)
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return err
	}
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	if err := sqlDB.PingContext(ctx); err != nil {
		return classify("connect to database "+cfg.Database, err)
	}
	driver, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	if err != nil {
		return classify("prepare migrations", err)
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return cloud.Errorf(cloud.EINTERNAL, "read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		return cloud.Errorf(cloud.EINTERNAL, "prepare migrations: %w", err)
	}
	defer m.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return classify("apply migrations", err)
	}
	return ctx.Err()
}

// createDatabase creates cfg's database unless it exists.
func createDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return c.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: no such database
		return classify(fmt.Sprintf("connect to database %s", cfg.Database), err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	ac, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return classify("connect to database postgres to create "+cfg.Database, err)
	}
	defer ac.Close(ctx)
	_, err = ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another replica won the race
		return nil
	}
	if err != nil {
		return classify("create database "+cfg.Database, err)
	}
	return nil
}

// Reachable returns nil when the PostgreSQL server of url accepts a
// connection, even if url's database does not exist yet (Migrate creates it),
// and an error with code EUNAVAILABLE otherwise.
func Reachable(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "parse DATABASE_URL: %w", err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		return nil
	}
	if err != nil {
		return classify("connect", err)
	}
	return c.Close(ctx)
}
