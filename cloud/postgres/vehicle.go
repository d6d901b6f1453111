package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

// selectVehicles reads vehicles with their status (scanVehicle).
var selectVehicles = `SELECT v.id, v.first_seen, v.last_seen, v.pos_stream_id, v.pos_seq, v.pos_time,
	v.pos_lat_e7, v.pos_lon_e7, v.pos_speed_mmps, v.pos_course_cdeg, ` + prefixed("s.", statusCols) + `
FROM vehicles v LEFT JOIN device_status s ON s.vehicle_id = v.id`

// prefixed puts p before each of the comma-separated cols.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// FindVehicleByID returns the vehicle with its latest fix, status and
// trouble codes, or an error with code ENOTFOUND.
func (db *DB) FindVehicleByID(ctx context.Context, id string) (*cloud.Vehicle, error) {
	rows, err := db.pool.Query(ctx, selectVehicles+" WHERE v.id = $1", id)
	if err != nil {
		return nil, classify("find vehicle", err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanVehicle)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", id)
	}
	if err != nil {
		return nil, classify("find vehicle", err)
	}
	if err := db.addDetails(ctx, []*cloud.Vehicle{v}); err != nil {
		return nil, err
	}
	return v, nil
}

// haversine is cloud.DistanceM in SQL, from the vehicle's latest fix to
// ($%[1]d, $%[2]d).
const haversine = `2 * 6371008.8 * asin(sqrt(least(1,
	power(sin(radians(v.pos_lat_e7 / 1e7 - $%[1]d) / 2), 2) +
	cos(radians($%[1]d)) * cos(radians(v.pos_lat_e7 / 1e7)) * power(sin(radians(v.pos_lon_e7 / 1e7 - $%[2]d) / 2), 2))))`

// FindVehicles returns one page of the vehicles f selects, by id, with
// their latest fix, status and trouble codes; see cloud.VehicleService.
func (db *DB) FindVehicles(ctx context.Context, f cloud.VehicleFilter) ([]*cloud.Vehicle, bool, error) {
	if f.Limit < 1 || f.Limit > cloud.MaxLimit {
		return nil, false, cloud.Errorf(cloud.EINVALID, "limit %d outside 1 to %d", f.Limit, cloud.MaxLimit)
	}
	var (
		args  []any
		where = []string{"true"}
	)
	arg := func(v any) int { args = append(args, v); return len(args) }
	if f.After != "" {
		where = append(where, fmt.Sprintf("v.id > $%d", arg(f.After)))
	}
	if f.IDs != nil {
		where = append(where, fmt.Sprintf("v.id = ANY($%d)", arg(f.IDs)))
	}
	if f.Online != nil {
		where = append(where, fmt.Sprintf("coalesce(s.online, false) = $%d", arg(*f.Online)))
	}
	if b := f.BBox; b != nil {
		lat := fmt.Sprintf("v.pos_lat_e7 BETWEEN $%d AND $%d", arg(e7Ceil(b.MinLat)), arg(e7Floor(b.MaxLat)))
		lon := "v.pos_lon_e7 BETWEEN $%d AND $%d"
		if b.MinLon > b.MaxLon {
			lon = "(v.pos_lon_e7 >= $%d OR v.pos_lon_e7 <= $%d)"
		}
		where = append(where, lat, fmt.Sprintf(lon, arg(e7Ceil(b.MinLon)), arg(e7Floor(b.MaxLon))))
	}
	if c := f.Near; c != nil {
		where = append(where, "v.pos_time IS NOT NULL", fmt.Sprintf(haversine, arg(c.Lat), arg(c.Lon))+fmt.Sprintf(" <= $%d", arg(c.RadiusM)))
	}
	sql := fmt.Sprintf("%s WHERE %s ORDER BY v.id LIMIT $%d", selectVehicles, strings.Join(where, " AND "), arg(f.Limit+1))
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, classify("find vehicles", err)
	}
	vs, err := collectVehicles(rows)
	if err != nil {
		return nil, false, classify("find vehicles", err)
	}
	more := len(vs) > f.Limit
	if more {
		vs = vs[:f.Limit]
	}
	if err := db.addDetails(ctx, vs); err != nil {
		return nil, false, err
	}
	if c := f.Near; c != nil {
		for _, v := range vs {
			if v.Position != nil {
				d := cloud.DistanceM(c.Lat, c.Lon, v.Position.Lat, v.Position.Lon)
				v.DistanceM = &d
			}
		}
	}
	return vs, more, nil
}

// addDetails adds their trouble codes to vs (sorted by id): those of the
// ids from the first to the last, which is quicker than a list of ids.
func (db *DB) addDetails(ctx context.Context, vs []*cloud.Vehicle) error {
	if len(vs) == 0 {
		return nil
	}
	byID := make(map[string]*cloud.Vehicle, len(vs))
	for _, v := range vs {
		byID[v.ID] = v
	}
	rows, err := db.pool.Query(ctx, currentCodes, vs[0].ID, vs[len(vs)-1].ID)
	if err != nil {
		return classify("find trouble codes", err)
	}
	var id string
	var tc cloud.TroubleCode
	_, err = pgx.ForEachRow(rows, []any{&id, &tc.Code, &tc.Since}, func() error {
		if v, ok := byID[id]; ok {
			tc.Since = tc.Since.UTC()
			v.TroubleCodes = append(v.TroubleCodes, tc)
		}
		return nil
	})
	if err != nil {
		return classify("find trouble codes", err)
	}
	return nil
}

func e7Ceil(deg float64) int64  { return int64(math.Ceil(deg * 1e7)) }
func e7Floor(deg float64) int64 { return int64(math.Floor(deg * 1e7)) }

func scanVehicle(row pgx.CollectableRow) (*cloud.Vehicle, error) {
	var (
		v             cloud.Vehicle
		stream, seq   *int64
		t             *time.Time
		lat, lon      *int32
		speed, course *int32
		st            statusRow
	)
	if err := row.Scan(append([]any{&v.ID, &v.FirstSeen, &v.LastSeen, &stream, &seq, &t, &lat, &lon, &speed, &course}, st.targets()...)...); err != nil {
		return nil, err
	}
	v.FirstSeen, v.LastSeen = v.FirstSeen.UTC(), v.LastSeen.UTC()
	if t != nil && stream != nil && seq != nil && lat != nil && lon != nil {
		v.Position = &cloud.Position{
			VehicleID: v.ID, StreamID: uint64(*stream), Seq: uint64(*seq), Time: t.UTC(),
			Lat: e7(*lat), Lon: e7(*lon), SpeedMPS: scaled(speed, 1000), CourseDeg: scaled(course, 100),
		}
	}
	var err error
	v.Device, err = st.status()
	return &v, err
}

// vehicleExists returns ENOTFOUND for an unknown vehicle.
func (db *DB) vehicleExists(ctx context.Context, id string) error {
	var ok bool
	if err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM vehicles WHERE id = $1)", id).Scan(&ok); err != nil {
		return classify("find vehicle", err)
	}
	if !ok {
		return cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", id)
	}
	return nil
}

func e7(v int32) float64 { return float64(v) / 1e7 }

// scaled returns v / per, or nil for an unknown value.
func scaled(v *int32, per float64) *float64 {
	if v == nil {
		return nil
	}
	f := float64(*v) / per
	return &f
}

// integer returns v as an int, or nil for an unknown value.
func integer(v *int16) *int {
	if v == nil {
		return nil
	}
	i := int(*v)
	return &i
}
