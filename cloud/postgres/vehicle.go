package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

const selectVehicles = `SELECT id, first_seen, last_seen, pos_stream_id, pos_seq, pos_time,
	pos_lat_e7, pos_lon_e7, pos_speed_mmps, pos_course_cdeg FROM vehicles`

// FindVehicleByID returns the vehicle with its latest fix, or an error with
// code ENOTFOUND.
func (db *DB) FindVehicleByID(ctx context.Context, id string) (*cloud.Vehicle, error) {
	rows, err := db.pool.Query(ctx, selectVehicles+" WHERE id = $1", id)
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
	return v, nil
}

// FindVehicles returns every vehicle ordered by id.
func (db *DB) FindVehicles(ctx context.Context) ([]*cloud.Vehicle, error) {
	rows, err := db.pool.Query(ctx, selectVehicles+" ORDER BY id")
	if err != nil {
		return nil, classify("find vehicles", err)
	}
	vs, err := pgx.CollectRows(rows, scanVehicle)
	if err != nil {
		return nil, classify("find vehicles", err)
	}
	return vs, nil
}

func scanVehicle(row pgx.CollectableRow) (*cloud.Vehicle, error) {
	var (
		v             cloud.Vehicle
		stream, seq   *int64
		t             *time.Time
		lat, lon      *int32
		speed, course *int32
	)
	if err := row.Scan(&v.ID, &v.FirstSeen, &v.LastSeen, &stream, &seq, &t, &lat, &lon, &speed, &course); err != nil {
		return nil, err
	}
	v.FirstSeen, v.LastSeen = v.FirstSeen.UTC(), v.LastSeen.UTC()
	if t != nil && stream != nil && seq != nil && lat != nil && lon != nil {
		v.Position = &cloud.Position{
			VehicleID: v.ID, StreamID: uint64(*stream), Seq: uint64(*seq), Time: t.UTC(),
			Lat: e7(*lat), Lon: e7(*lon), SpeedMPS: scaled(speed, 1000), CourseDeg: scaled(course, 100),
		}
	}
	return &v, nil
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
