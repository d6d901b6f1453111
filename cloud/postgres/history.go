package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

// keyset is the order of a paginated list: its columns, its direction, and
// the cursor's values for them.
type keyset struct {
	cols []string
	desc bool
	args func(c *cloud.Cursor) []any
}

// recordKeys orders records (positions, OBD samples, events) as they
// happened: by time, then stream and seq.
var recordKeys = keyset{cols: []string{"time", "stream_id", "seq"},
	args: func(c *cloud.Cursor) []any { return []any{c.Time, int64(c.StreamID), int64(c.Seq)} }}

// page is one page of a list: conditions, a keyset and a limit.
type page struct {
	vehicleID string    // "" when the list is not of one vehicle
	from, to  time.Time // a window on time; zero: none
	where     []string  // more conditions, %d for their argument's number
	args      []any     // one per condition of where
	keys      keyset
	after     *cloud.Cursor
	limit     int
}

// query returns the SQL and arguments selecting cols of table for p,
// ordered by its keyset and fetching one row past the limit to tell
// whether there is a next page.
func (p page) query(cols, table string) (string, []any) {
	var args []any
	var where []string
	arg := func(v any) int { args = append(args, v); return len(args) }
	if p.vehicleID != "" {
		where = append(where, fmt.Sprintf("vehicle_id = $%d", arg(p.vehicleID)))
	}
	if !p.from.IsZero() || !p.to.IsZero() {
		where = append(where, fmt.Sprintf("time >= $%d AND time < $%d", arg(p.from), arg(p.to)))
	}
	for i, w := range p.where {
		where = append(where, fmt.Sprintf(w, arg(p.args[i])))
	}
	keys := p.keys
	if keys.cols == nil {
		keys = recordKeys
	}
	dir, cmp := "", ">"
	if keys.desc {
		dir, cmp = " DESC", "<"
	}
	if p.after != nil {
		var ph []string
		for _, v := range keys.args(p.after) {
			ph = append(ph, fmt.Sprintf("$%d", arg(v)))
		}
		where = append(where, fmt.Sprintf("(%s) %s (%s)", strings.Join(keys.cols, ", "), cmp, strings.Join(ph, ", ")))
	}
	if len(where) == 0 {
		where = []string{"true"}
	}
	n := arg(p.limit + 1)
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $%d",
		cols, table, strings.Join(where, " AND "), strings.Join(keys.cols, dir+", ")+dir, n), args
}

// findPage runs p's query (from page.query), scans the rows with scan and
// returns at most p.limit of them, the cursor of the next page (nil on the
// last), and ENOTFOUND when the page of a vehicle is empty because the
// vehicle is unknown.
func findPage[T any](ctx context.Context, db *DB, p page, op, sql string, args []any, scan pgx.RowToFunc[*T], cursor func(*T) cloud.Cursor) ([]*T, *cloud.Cursor, error) {
	if p.limit < 1 || p.limit > cloud.MaxLimit {
		return nil, nil, cloud.Errorf(cloud.EINVALID, "limit %d outside 1 to %d", p.limit, cloud.MaxLimit)
	}
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, classify(op, err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, nil, classify(op, err)
	}
	if len(out) == 0 {
		if p.vehicleID != "" {
			if err := db.vehicleExists(ctx, p.vehicleID); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	if len(out) <= p.limit {
		return out, nil, nil
	}
	out = out[:p.limit]
	next := cursor(out[len(out)-1])
	return out, &next, nil
}

const selectPositionCols = `stream_id, seq, time, lat_e7, lon_e7, alt_cm, geoid_sep_cm, speed_mmps, course_cdeg,
	mode, quality, sats_used, sats_in_view, hdop_c, vdop_c, pdop_c, err_lat_cm, err_lon_cm, err_alt_cm`

// positionScanner scans rows of selectPositionCols into one Position it
// reuses.
type positionScanner struct {
	pos                                      cloud.Position
	stream, seq                              int64
	lat, lon                                 int32
	alt, geoid, speed, course                *int32
	mode, quality, used, inView              *int16
	hdop, vdop, pdop, errLat, errLon, errAlt *int32
}

func (s *positionScanner) scan(row pgx.Row) (*cloud.Position, error) {
	pos := &s.pos
	if err := row.Scan(&s.stream, &s.seq, &pos.Time, &s.lat, &s.lon, &s.alt, &s.geoid, &s.speed, &s.course,
		&s.mode, &s.quality, &s.used, &s.inView, &s.hdop, &s.vdop, &s.pdop, &s.errLat, &s.errLon, &s.errAlt); err != nil {
		return nil, err
	}
	pos.StreamID, pos.Seq, pos.Time = uint64(s.stream), uint64(s.seq), pos.Time.UTC()
	pos.Lat, pos.Lon = e7(s.lat), e7(s.lon)
	pos.AltM, pos.GeoidSepM, pos.SpeedMPS, pos.CourseDeg = scaled(s.alt, 100), scaled(s.geoid, 100), scaled(s.speed, 1000), scaled(s.course, 100)
	pos.Mode, pos.Quality, pos.SatsUsed, pos.SatsInView = integer(s.mode), integer(s.quality), integer(s.used), integer(s.inView)
	pos.HDOP, pos.VDOP, pos.PDOP = scaled(s.hdop, 100), scaled(s.vdop, 100), scaled(s.pdop, 100)
	pos.ErrLatM, pos.ErrLonM, pos.ErrAltM = scaled(s.errLat, 100), scaled(s.errLon, 100), scaled(s.errAlt, 100)
	return pos, nil
}

// scanPosition returns a scanner of selectPositionCols into a new position
// of vehicle for each row.
func scanPosition(vehicle string) pgx.RowToFunc[*cloud.Position] {
	return func(row pgx.CollectableRow) (*cloud.Position, error) {
		s := positionScanner{pos: cloud.Position{VehicleID: vehicle}}
		return s.scan(row)
	}
}

// FindPositions returns one page of a vehicle's positions; see
// cloud.PositionService.
func (db *DB) FindPositions(ctx context.Context, f cloud.PositionFilter) ([]*cloud.Position, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, from: f.From, to: f.To, after: f.After, limit: f.Limit}
	sql, args := p.query(selectPositionCols, "positions")
	return findPage(ctx, db, p, "find positions", sql, args, scanPosition(f.VehicleID), (*cloud.Position).Cursor)
}

// EachPosition calls fn with every position of f's window, in order, as the
// rows arrive; see cloud.PositionService.
func (db *DB) EachPosition(ctx context.Context, f cloud.PositionFilter, fn func(*cloud.Position) error) error {
	if err := db.vehicleExists(ctx, f.VehicleID); err != nil {
		return err
	}
	rows, err := db.pool.Query(ctx, "SELECT "+selectPositionCols+` FROM positions
WHERE vehicle_id = $1 AND time >= $2 AND time < $3 ORDER BY time, stream_id, seq`, f.VehicleID, f.From, f.To)
	if err != nil {
		return classify("read positions", err)
	}
	defer rows.Close()
	s := positionScanner{pos: cloud.Position{VehicleID: f.VehicleID}}
	for rows.Next() {
		p, err := s.scan(rows)
		if err != nil {
			return classify("read positions", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return classify("read positions", err)
	}
	return nil
}

// FindOBDSamples returns one page of a vehicle's OBD samples; see
// cloud.OBDService.
func (db *DB) FindOBDSamples(ctx context.Context, f cloud.OBDFilter) ([]*cloud.OBDSample, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, from: f.From, to: f.To, after: f.After, limit: f.Limit}
	if f.PID != 0 {
		p.where, p.args = []string{"pid = $%d"}, []any{int32(f.PID)}
	}
	sql, args := p.query("stream_id, seq, time, pid, value", "obd_samples")
	scan := func(row pgx.CollectableRow) (*cloud.OBDSample, error) {
		s := cloud.OBDSample{VehicleID: f.VehicleID}
		var stream, seq int64
		var pid int32
		if err := row.Scan(&stream, &seq, &s.Time, &pid, &s.Value); err != nil {
			return nil, err
		}
		s.StreamID, s.Seq, s.Time, s.PID = uint64(stream), uint64(seq), s.Time.UTC(), uint16(pid)
		return &s, nil
	}
	return findPage(ctx, db, p, "find OBD samples", sql, args, scan, (*cloud.OBDSample).Cursor)
}
