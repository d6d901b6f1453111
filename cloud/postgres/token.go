package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.TokenService = (*DB)(nil)

// CreateToken stores t; see cloud.TokenService.
func (db *DB) CreateToken(ctx context.Context, t *cloud.Token) error {
	if err := cloud.ValidTokenName(t.Name); err != nil {
		return err
	}
	if t.Role < cloud.RoleViewer || t.Role > cloud.RoleAdmin {
		return cloud.Errorf(cloud.EINVALID, "token role %d: want viewer, operator or admin", t.Role)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.Now().UTC()
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO api_tokens (name, role, hash, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5) RETURNING id`, t.Name, t.Role.String(), t.Hash[:], t.CreatedAt, optTime(t.ExpiresAt)).Scan(&t.ID)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "api_tokens_name" {
		return cloud.Errorf(cloud.ECONFLICT, "a token named %q exists; revoke it first or choose another name", t.Name)
	}
	if err != nil {
		return classify("create token", err)
	}
	return nil
}

const selectToken = `SELECT id, name, role, hash, created_at, expires_at, last_used_at FROM api_tokens WHERE revoked_at IS NULL`

// FindTokenByHash returns the token not revoked with that hash, or ENOTFOUND.
func (db *DB) FindTokenByHash(ctx context.Context, hash [sha256.Size]byte) (*cloud.Token, error) {
	rows, err := db.pool.Query(ctx, selectToken+" AND hash = $1", hash[:])
	if err != nil {
		return nil, classify("find token", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "no such token")
	}
	if err != nil {
		return nil, classify("find token", err)
	}
	return t, nil
}

// FindTokens returns the tokens not revoked, by name.
func (db *DB) FindTokens(ctx context.Context) ([]*cloud.Token, error) {
	rows, err := db.pool.Query(ctx, selectToken+" ORDER BY name")
	if err != nil {
		return nil, classify("find tokens", err)
	}
	ts, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return nil, classify("find tokens", err)
	}
	return ts, nil
}

// RevokeToken revokes the token named name; ENOTFOUND when there is none.
func (db *DB) RevokeToken(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL", name, db.Now().UTC())
	if err != nil {
		return classify("revoke token", err)
	}
	if tag.RowsAffected() == 0 {
		return cloud.Errorf(cloud.ENOTFOUND, "no token named %q", name)
	}
	return nil
}

// TouchToken records a use of the token, at most once a minute.
func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	_, err := db.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')`, id, at)
	if err != nil {
		return classify("record token use", err)
	}
	return nil
}

func scanToken(row pgx.CollectableRow) (*cloud.Token, error) {
	var (
		t         cloud.Token
		role      string
		hash      []byte
		exp, used *time.Time
	)
	if err := row.Scan(&t.ID, &t.Name, &role, &hash, &t.CreatedAt, &exp, &used); err != nil {
		return nil, err
	}
	r, err := cloud.ParseRole(role)
	if err != nil {
		return nil, err
	}
	t.Role = r
	copy(t.Hash[:], hash)
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.LastUsed = utc(exp), utc(used)
	return &t, nil
}

// optTime returns nil for the zero time (SQL NULL), else t.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// utc returns *t in UTC, or the zero time for nil.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
