package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var _ cloud.EventService = (*DB)(nil)

// FindEvents returns one page of a vehicle's events; see cloud.EventService.
func (db *DB) FindEvents(ctx context.Context, f cloud.EventFilter) ([]*cloud.Event, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, from: f.From, to: f.To, after: f.After, limit: f.Limit}
	if len(f.Types) > 0 {
		types := make([]int32, len(f.Types))
		for i, t := range f.Types {
			types[i] = int32(t)
		}
		p.where, p.args = []string{"type = ANY($%d)"}, []any{types}
	}
	sql, args := p.query("stream_id, seq, time, type, code, detail, value", "events")
	scan := func(row pgx.CollectableRow) (*cloud.Event, error) {
		e := cloud.Event{VehicleID: f.VehicleID}
		var stream, seq int64
		var typ int32
		if err := row.Scan(&stream, &seq, &e.Time, &typ, &e.Code, &e.Detail, &e.Value); err != nil {
			return nil, err
		}
		e.StreamID, e.Seq, e.Time, e.Type = uint64(stream), uint64(seq), e.Time.UTC(), telemetry.EventType(typ)
		return &e, nil
	}
	return findPage(ctx, db, p, "find events", sql, args, scan, (*cloud.Event).Cursor)
}

// currentCodes selects, for the vehicles from $1 to $2 (by id), each
// trouble code whose latest set or cleared event (in record order) set it.
const currentCodes = `SELECT vehicle_id, code, time FROM (
	SELECT DISTINCT ON (vehicle_id, code) vehicle_id, code, time, type FROM events
	WHERE vehicle_id BETWEEN $1 AND $2 AND type IN (4, 5)
	ORDER BY vehicle_id, code, time DESC, stream_id DESC, seq DESC) latest
WHERE type = 4 ORDER BY vehicle_id, code`

// FindTroubleCodes returns a vehicle's current trouble codes; see
// cloud.EventService.
func (db *DB) FindTroubleCodes(ctx context.Context, vehicleID string) ([]cloud.TroubleCode, error) {
	v, err := db.FindVehicleByID(ctx, vehicleID)
	if err != nil {
		return nil, err
	}
	return v.TroubleCodes, nil
}
