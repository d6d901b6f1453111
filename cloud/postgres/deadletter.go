package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

var _ cloud.DeadLetterService = (*DB)(nil)

// FindDeadLetters returns one page of dead letters, newest first; see
// cloud.DeadLetterService.
func (db *DB) FindDeadLetters(ctx context.Context, f cloud.DeadLetterFilter) ([]*cloud.StoredDeadLetter, *cloud.Cursor, error) {
	p := page{after: f.After, limit: f.Limit, keys: keyset{cols: []string{"received_at", "id"}, desc: true,
		args: func(c *cloud.Cursor) []any { return []any{c.Time, int64(c.Seq)} }}}
	if f.VehicleID != "" {
		p.where, p.args = append(p.where, "vehicle_id = $%d"), append(p.args, f.VehicleID)
	}
	if f.Reason != "" {
		p.where, p.args = append(p.where, "starts_with(reason, $%d)"), append(p.args, f.Reason)
	}
	sql, args := p.query("id, topic, coalesce(vehicle_id, ''), coalesce(stream_id, 0), reason, length(payload), received_at", "dead_letters")
	scan := func(row pgx.CollectableRow) (*cloud.StoredDeadLetter, error) {
		var d cloud.StoredDeadLetter
		var stream int64
		if err := row.Scan(&d.ID, &d.Topic, &d.VehicleID, &stream, &d.Reason, &d.PayloadBytes, &d.ReceivedAt); err != nil {
			return nil, err
		}
		d.StreamID, d.ReceivedAt = uint64(stream), d.ReceivedAt.UTC()
		return &d, nil
	}
	return findPage(ctx, db, p, "find dead letters", sql, args, scan, (*cloud.StoredDeadLetter).Cursor)
}
