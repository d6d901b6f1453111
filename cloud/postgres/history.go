package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

// page is the part of a history query common to positions and OBD samples.
type page struct {
	vehicleID string
	from, to  time.Time
	after     *cloud.Cursor
	limit     int
}

// query returns the SQL and arguments selecting cols of table for p, plus
// extra conditions (with their arguments numbered after p's), ordered by the
// keyset (time, stream_id, seq) and fetching one row past the limit to tell
// whether there is a next page.
func (p page) query(cols, table string, extra []string, extraArgs ...any) (string, []any) {
	args := []any{p.vehicleID, p.from, p.to}
	where := []string{"vehicle_id = $1", "time >= $2", "time < $3"}
	for _, e := range extra {
		args = append(args, extraArgs[0])
		extraArgs = extraArgs[1:]
		where = append(where, fmt.Sprintf(e, len(args)))
	}
	if p.after != nil {
		n := len(args)
		args = append(args, p.after.Time, int64(p.after.StreamID), int64(p.after.Seq))
		where = append(where, fmt.Sprintf("(time, stream_id, seq) > ($%d, $%d, $%d)", n+1, n+2, n+3))
	}
	args = append(args, p.limit+1)
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY time, stream_id, seq LIMIT $%d",
		cols, table, strings.Join(where, " AND "), len(args)), args
}

// findPage runs p's query, scans the rows with scan and returns at most
// p.limit of them, the cursor of the next page (nil on the last), and
// ENOTFOUND when the page is empty because the vehicle is unknown.
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
		if err := db.vehicleExists(ctx, p.vehicleID); err != nil {
			return nil, nil, err
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

// FindPositions returns one page of a vehicle's positions; see
// cloud.PositionService.
func (db *DB) FindPositions(ctx context.Context, f cloud.PositionFilter) ([]*cloud.Position, *cloud.Cursor, error) {
	p := page{f.VehicleID, f.From, f.To, f.After, f.Limit}
	sql, args := p.query(selectPositionCols, "positions", nil)
	return findPage(ctx, db, p, "find positions", sql, args, scanPosition(f.VehicleID), (*cloud.Position).Cursor)
}

// scanPosition returns a scanner of selectPositionCols into a position of
// vehicle.
func scanPosition(vehicle string) pgx.RowToFunc[*cloud.Position] {
	return func(row pgx.CollectableRow) (*cloud.Position, error) {
		var (
			pos                                      = cloud.Position{VehicleID: vehicle}
			stream, seq                              int64
			lat, lon                                 int32
			alt, geoid, speed, course                *int32
			mode, quality, used, inView              *int16
			hdop, vdop, pdop, errLat, errLon, errAlt *int32
		)
		if err := row.Scan(&stream, &seq, &pos.Time, &lat, &lon, &alt, &geoid, &speed, &course,
			&mode, &quality, &used, &inView, &hdop, &vdop, &pdop, &errLat, &errLon, &errAlt); err != nil {
			return nil, err
		}
		pos.StreamID, pos.Seq, pos.Time = uint64(stream), uint64(seq), pos.Time.UTC()
		pos.Lat, pos.Lon = e7(lat), e7(lon)
		pos.AltM, pos.GeoidSepM, pos.SpeedMPS, pos.CourseDeg = scaled(alt, 100), scaled(geoid, 100), scaled(speed, 1000), scaled(course, 100)
		pos.Mode, pos.Quality, pos.SatsUsed, pos.SatsInView = integer(mode), integer(quality), integer(used), integer(inView)
		pos.HDOP, pos.VDOP, pos.PDOP = scaled(hdop, 100), scaled(vdop, 100), scaled(pdop, 100)
		pos.ErrLatM, pos.ErrLonM, pos.ErrAltM = scaled(errLat, 100), scaled(errLon, 100), scaled(errAlt, 100)
		return &pos, nil
	}
}

// FindOBDSamples returns one page of a vehicle's OBD samples; see
// cloud.OBDService.
func (db *DB) FindOBDSamples(ctx context.Context, f cloud.OBDFilter) ([]*cloud.OBDSample, *cloud.Cursor, error) {
	p := page{f.VehicleID, f.From, f.To, f.After, f.Limit}
	var sql string
	var args []any
	if f.PID != 0 {
		sql, args = p.query("stream_id, seq, time, pid, value", "obd_samples", []string{"pid = $%d"}, int32(f.PID))
	} else {
		sql, args = p.query("stream_id, seq, time, pid, value", "obd_samples", nil)
	}
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
