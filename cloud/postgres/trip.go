package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
)

var (
	_ cloud.TripService = (*DB)(nil)
	_ cloud.MatchStore  = (*DB)(nil)
)

// tripLockClass is the first key of the per-vehicle advisory locks under
// which one replica at a time recomputes a vehicle's trips (the second is
// the hash of the vehicle id).
const tripLockClass = 0x74726970 // "trip"

// DirtyMergeGap is how close two dirty ranges of a vehicle must be to be
// recomputed as one.
const DirtyMergeGap = time.Hour

// TripRecompute is what one RecomputeTrips call did.
type TripRecompute struct {
	Vehicles int                // vehicles recomputed
	Ranges   int                // dirty ranges they had (after merging)
	Changes  []cloud.TripChange // trips created, updated, deleted
}

// RecomputeTrips recomputes the trips of up to maxVehicles vehicles whose
// records changed (trip_dirty), each in its own transaction: it claims the
// vehicle's dirty rows under a per-vehicle advisory lock (a vehicle another
// replica holds is skipped), recomputes its trips over the merged ranges
// (cloud.RecomputeTrips), replaces the stored ones and deletes the rows it
// claimed, then commits. A replica that dies before the commit leaves the
// rows for the next one; rows that arrive meanwhile wait for the next
// call. It returns what changed so far and the first error.
func (db *DB) RecomputeTrips(ctx context.Context, cfg cloud.TripConfig, maxVehicles int) (TripRecompute, error) {
	var res TripRecompute
	skipped := []string{} // not nil: <> ALL(NULL) is never true
	for res.Vehicles < maxVehicles {
		var done bool
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var vehicle string
			err := tx.QueryRow(ctx, `SELECT vehicle_id FROM trip_dirty WHERE vehicle_id <> ALL($1)
ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, skipped).Scan(&vehicle)
			if errors.Is(err, pgx.ErrNoRows) {
				done = true
				return nil
			}
			if err != nil {
				return err
			}
			var locked bool
			if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", int32(tripLockClass), vehicle).Scan(&locked); err != nil {
				return err
			}
			if !locked { // another replica is on it
				skipped = append(skipped, vehicle)
				return nil
			}
			n, changes, err := db.recomputeVehicle(ctx, tx, cfg, vehicle)
			if err != nil {
				return fmt.Errorf("vehicle %s: %w", vehicle, err)
			}
			res.Vehicles++
			res.Ranges += n
			res.Changes = append(res.Changes, changes...)
			return nil
		})
		if err != nil {
			return res, classify("recompute trips", err)
		}
		if done {
			return res, nil
		}
	}
	return res, nil
}

type timeRange struct{ from, to time.Time }

// recomputeVehicle claims the vehicle's dirty rows, recomputes and
// replaces its trips over them and deletes the rows, in tx.
func (db *DB) recomputeVehicle(ctx context.Context, tx pgx.Tx, cfg cloud.TripConfig, vehicle string) (int, []cloud.TripChange, error) {
	rows, err := tx.Query(ctx, "SELECT id, from_time, to_time FROM trip_dirty WHERE vehicle_id = $1 FOR UPDATE SKIP LOCKED", vehicle)
	if err != nil {
		return 0, nil, err
	}
	var ids []int64
	var ranges []timeRange
	var id int64
	var r timeRange
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.from, &r.to}, func() error {
		ids, ranges = append(ids, id), append(ranges, r)
		return nil
	}); err != nil {
		return 0, nil, err
	}
	ranges = mergeRanges(ranges, DirtyMergeGap)
	src := &tripSource{tx: tx}
	var changes []cloud.TripChange
	for _, r := range ranges {
		w, err := cloud.RecomputeTrips(ctx, src, cfg, vehicle, r.from, r.to)
		if err != nil {
			return 0, nil, err
		}
		stored, err := src.StoredTrips(ctx, vehicle, w.From, w.To)
		if err != nil {
			return 0, nil, err
		}
		ch := cloud.DiffTrips(stored, w.Trips)
		if err := db.applyTripChanges(ctx, tx, stored, ch); err != nil {
			return 0, nil, err
		}
		changes = append(changes, ch...)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM trip_dirty WHERE id = ANY($1)", ids); err != nil {
		return 0, nil, err
	}
	return len(ranges), changes, nil
}

// mergeRanges sorts rs and joins those less than gap apart.
func mergeRanges(rs []timeRange, gap time.Duration) []timeRange {
	slices.SortFunc(rs, func(a, b timeRange) int { return cmp.Or(a.from.Compare(b.from), a.to.Compare(b.to)) })
	var out []timeRange
	for _, r := range rs {
		if n := len(out); n > 0 && !r.from.After(out[n-1].to.Add(gap)) {
			if r.to.After(out[n-1].to) {
				out[n-1].to = r.to
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

const tripCols = `id, revision, vehicle_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon, open, distance_m,
	driving_us, idle_us, stopped_us, max_speed_mps, avg_speed_mps, fixes, fuel_l, fuel_source,
	match_status, match_distance_m, match_confidence, match_error, match_attempts`

func scanTrip(row pgx.CollectableRow) (*cloud.Trip, error) { return scanTripWith(row) }

// scanTripWith scans tripCols and then extra columns into extra.
func scanTripWith(row pgx.CollectableRow, extra ...any) (*cloud.Trip, error) {
	var (
		t                      cloud.Trip
		sLat, sLon, eLat, eLon *float64
		driving, idle, stopped int64
		source, status         string
		mDist, mConf           *float64
	)
	dest := append([]any{&t.ID, &t.Revision, &t.VehicleID, &t.Start, &t.End, &sLat, &sLon, &eLat, &eLon, &t.Open, &t.DistanceM,
		&driving, &idle, &stopped, &t.MaxSpeed, &t.AvgSpeed, &t.Fixes, &t.FuelL, &source,
		&status, &mDist, &mConf, &t.Match.Error, &t.Match.Attempts}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	t.Start, t.End = t.Start.UTC(), t.End.UTC()
	if sLat != nil && sLon != nil {
		t.StartPlace = &cloud.Place{Lat: *sLat, Lon: *sLon}
	}
	if eLat != nil && eLon != nil {
		t.EndPlace = &cloud.Place{Lat: *eLat, Lon: *eLon}
	}
	t.Driving, t.Idle, t.Stopped = time.Duration(driving)*time.Microsecond, time.Duration(idle)*time.Microsecond, time.Duration(stopped)*time.Microsecond
	t.FuelSource, t.Match.Status = cloud.FuelSource(source), cloud.MatchStatus(status)
	if mDist != nil {
		t.Match.DistanceM = *mDist
	}
	if mConf != nil {
		t.Match.Confidence = *mConf
	}
	return &t, nil
}

// tripArgs returns the detection columns of t in the order of insertTrip's
// $1 to $17.
func tripArgs(t *cloud.Trip) []any {
	var sLat, sLon, eLat, eLon *float64
	if t.StartPlace != nil {
		sLat, sLon = &t.StartPlace.Lat, &t.StartPlace.Lon
	}
	if t.EndPlace != nil {
		eLat, eLon = &t.EndPlace.Lat, &t.EndPlace.Lon
	}
	return []any{t.VehicleID, t.Start, t.End, sLat, sLon, eLat, eLon, t.Open, t.DistanceM,
		t.Driving.Microseconds(), t.Idle.Microseconds(), t.Stopped.Microseconds(), t.MaxSpeed, t.AvgSpeed, t.Fixes,
		t.FuelL, string(t.FuelSource)}
}

const insertTrip = `INSERT INTO trips (vehicle_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon, open, distance_m,
	driving_us, idle_us, stopped_us, max_speed_mps, avg_speed_mps, fixes, fuel_l, fuel_source, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id, revision`

// updateTrip rewrites a trip's figures; $19 true resets its match (the
// track changed: other start, end or fixes).
const updateTrip = `UPDATE trips SET vehicle_id = $1, start_time = $2, end_time = $3, start_lat = $4, start_lon = $5,
	end_lat = $6, end_lon = $7, open = $8, distance_m = $9, driving_us = $10, idle_us = $11, stopped_us = $12,
	max_speed_mps = $13, avg_speed_mps = $14, fixes = $15, fuel_l = $16, fuel_source = $17, updated_at = $18,
	revision = revision + 1,
	match_status = CASE WHEN $19 THEN 'pending' ELSE match_status END,
	match_distance_m = CASE WHEN $19 THEN NULL ELSE match_distance_m END,
	match_confidence = CASE WHEN $19 THEN NULL ELSE match_confidence END,
	match_geometry = CASE WHEN $19 THEN NULL ELSE match_geometry END,
	match_error = CASE WHEN $19 THEN '' ELSE match_error END,
	match_attempts = CASE WHEN $19 THEN 0 ELSE match_attempts END,
	match_next_at = CASE WHEN $19 THEN NULL ELSE match_next_at END
WHERE id = $20 RETURNING revision`

// applyTripChanges writes changes (from cloud.DiffTrips over stored) in
// tx: deletions first, then updates, then insertions, which set the ids
// and revisions of the trips they carry.
func (db *DB) applyTripChanges(ctx context.Context, tx pgx.Tx, stored []*cloud.Trip, changes []cloud.TripChange) error {
	now := db.Now()
	var deleted []int64
	for _, c := range changes {
		if c.Kind == cloud.TripDeleted {
			deleted = append(deleted, c.Trip.ID)
		}
	}
	if len(deleted) > 0 {
		if _, err := tx.Exec(ctx, "DELETE FROM trips WHERE id = ANY($1)", deleted); err != nil {
			return err
		}
	}
	old := map[int64]*cloud.Trip{}
	for _, t := range stored {
		old[t.ID] = t
	}
	for _, c := range changes {
		t := c.Trip
		switch c.Kind {
		case cloud.TripUpdated:
			o := old[t.ID]
			reset := o == nil || !o.Start.Equal(t.Start) || !o.End.Equal(t.End) || o.Fixes != t.Fixes
			if !reset {
				t.Match = o.Match
			}
			args := append(tripArgs(t), now, reset, t.ID)
			if err := tx.QueryRow(ctx, updateTrip, args...).Scan(&t.Revision); err != nil {
				return err
			}
		case cloud.TripCreated:
			args := append(tripArgs(t), now)
			if err := tx.QueryRow(ctx, insertTrip, args...).Scan(&t.ID, &t.Revision); err != nil {
				return err
			}
		}
	}
	return nil
}

// tripSource serves cloud.RecomputeTrips from one transaction.
type tripSource struct{ tx pgx.Tx }

const ignitionTypes = "(2, 3)" // EVENT_TYPE_IGNITION_ON, _OFF

// TripInput reads the vehicle's positions, ignition events and fuel
// samples from from to to, with the context cloud.TripInput asks for.
func (s *tripSource) TripInput(ctx context.Context, vehicle string, from, to time.Time) (*cloud.TripInput, error) {
	in := &cloud.TripInput{VehicleID: vehicle}
	b := &pgx.Batch{}
	scan := scanPosition(vehicle)
	positions := func(rows pgx.Rows) error {
		ps, err := pgx.CollectRows(rows, scan)
		in.Positions = append(in.Positions, ps...)
		return err
	}
	b.Queue("SELECT "+selectPositionCols+` FROM positions WHERE vehicle_id = $1 AND time >= $2 AND time < $3
ORDER BY time, stream_id, seq`, vehicle, from, to).Query(positions)
	b.Queue("SELECT "+selectPositionCols+` FROM positions WHERE vehicle_id = $1 AND time < $2
ORDER BY time DESC, stream_id DESC, seq DESC LIMIT 1`, vehicle, from).Query(positions)
	b.Queue("SELECT "+selectPositionCols+` FROM positions WHERE vehicle_id = $1 AND time >= $2
ORDER BY time, stream_id, seq LIMIT 1`, vehicle, to).Query(positions)
	ignition := func(rows pgx.Rows) error {
		var t time.Time
		var typ int32
		_, err := pgx.ForEachRow(rows, []any{&t, &typ}, func() error {
			in.Ignition = append(in.Ignition, cloud.IgnitionEvent{Time: t.UTC(), On: typ == 2})
			return nil
		})
		return err
	}
	b.Queue(`SELECT time, type FROM events WHERE vehicle_id = $1 AND type IN `+ignitionTypes+` AND time < $2
ORDER BY time DESC, stream_id DESC, seq DESC LIMIT 1`, vehicle, from).Query(ignition)
	b.Queue(`SELECT time, type FROM events WHERE vehicle_id = $1 AND type IN `+ignitionTypes+` AND time >= $2 AND time < $3
ORDER BY time, stream_id, seq`, vehicle, from, to).Query(ignition)
	pids := make([]int32, len(cloud.FuelPIDs))
	for i, p := range cloud.FuelPIDs {
		pids[i] = int32(p)
	}
	b.Queue(`SELECT stream_id, seq, time, pid, value FROM obd_samples WHERE vehicle_id = $1 AND pid = ANY($4)
AND time >= $2 AND time < $3`, vehicle, from, to, pids).Query(func(rows pgx.Rows) error {
		var stream, seq int64
		var t time.Time
		var pid int32
		var v float64
		_, err := pgx.ForEachRow(rows, []any{&stream, &seq, &t, &pid, &v}, func() error {
			in.OBD = append(in.OBD, &cloud.OBDSample{VehicleID: vehicle, StreamID: uint64(stream), Seq: uint64(seq), Time: t.UTC(), PID: uint16(pid), Value: v})
			return nil
		})
		return err
	})
	if err := s.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return in, nil
}

// StoredTrips returns the vehicle's trips overlapping [from, to] and its
// open one if it starts before to.
func (s *tripSource) StoredTrips(ctx context.Context, vehicle string, from, to time.Time) ([]*cloud.Trip, error) {
	rows, err := s.tx.Query(ctx, "SELECT "+tripCols+` FROM trips WHERE vehicle_id = $1 AND start_time <= $3
AND (end_time >= $2 OR open) ORDER BY start_time, id`, vehicle, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTrip)
}

// FindTrips returns one page of a vehicle's trips overlapping the window;
// see cloud.TripService.
func (db *DB) FindTrips(ctx context.Context, f cloud.TripFilter) ([]*cloud.Trip, *cloud.Cursor, error) {
	p := page{vehicleID: f.VehicleID, from: f.From, to: f.To, limit: f.Limit}
	args := []any{f.VehicleID, f.From, f.To}
	where := "vehicle_id = $1 AND end_time >= $2 AND start_time < $3"
	if f.After != nil {
		args = append(args, f.After.Time, int64(f.After.Seq))
		where += " AND (start_time, id) > ($4, $5)"
	}
	args = append(args, f.Limit+1)
	sql := fmt.Sprintf("SELECT %s FROM trips WHERE %s ORDER BY start_time, id LIMIT $%d", tripCols, where, len(args))
	return findPage(ctx, db, p, "find trips", sql, args, scanTrip, (*cloud.Trip).Cursor)
}

// FindTrip returns one trip of a vehicle with its matched geometry, or
// ENOTFOUND.
func (db *DB) FindTrip(ctx context.Context, vehicle string, id int64) (*cloud.Trip, error) {
	var geometry []byte
	rows, err := db.pool.Query(ctx, "SELECT "+tripCols+", match_geometry FROM trips WHERE vehicle_id = $1 AND id = $2", vehicle, id)
	if err != nil {
		return nil, classify("find trip", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*cloud.Trip, error) { return scanTripWith(row, &geometry) })
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q has no trip %d", vehicle, id)
	}
	if err != nil {
		return nil, classify("find trip", err)
	}
	if geometry != nil {
		if err := json.Unmarshal(geometry, &t.Match.Geometry); err != nil {
			return nil, cloud.Errorf(cloud.EINTERNAL, "trip %d: matched geometry: %w", id, err)
		}
	}
	return t, nil
}

// TripTrack returns the vehicle's positions with from ≤ time ≤ to in
// time order.
func (db *DB) TripTrack(ctx context.Context, vehicle string, from, to time.Time) ([]*cloud.Position, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+selectPositionCols+` FROM positions WHERE vehicle_id = $1 AND time >= $2 AND time <= $3
ORDER BY time, stream_id, seq`, vehicle, from, to)
	if err != nil {
		return nil, classify("read trip track", err)
	}
	ps, err := pgx.CollectRows(rows, scanPosition(vehicle))
	if err != nil {
		return nil, classify("read trip track", err)
	}
	return ps, nil
}

// ClaimTripsToMatch leases up to n ended trips waiting for map matching
// (pending, or unmatched and due again) until now+lease, oldest end
// first, skipping those another replica holds; see cloud.MatchStore.
func (db *DB) ClaimTripsToMatch(ctx context.Context, now time.Time, n int, lease time.Duration) ([]*cloud.Trip, error) {
	rows, err := db.pool.Query(ctx, `UPDATE trips SET match_next_at = $2, match_attempts = match_attempts + 1
WHERE id IN (SELECT id FROM trips WHERE NOT open AND match_status IN ('pending', 'unmatched')
	AND (match_next_at IS NULL OR match_next_at <= $1) ORDER BY match_next_at NULLS FIRST, end_time LIMIT $3
	FOR UPDATE SKIP LOCKED)
RETURNING `+tripCols, now, now.Add(lease), n)
	if err != nil {
		return nil, classify("claim trips to match", err)
	}
	ts, err := pgx.CollectRows(rows, scanTrip)
	if err != nil {
		return nil, classify("claim trips to match", err)
	}
	slices.SortFunc(ts, func(a, b *cloud.Trip) int { return a.End.Compare(b.End) })
	return ts, nil
}

// SaveMatch stores a match result for the trip at the revision it was
// claimed at; a trip recomputed since keeps its new state (the result is
// for a track that no longer is). next is when an unmatched trip is tried
// again.
func (db *DB) SaveMatch(ctx context.Context, t *cloud.Trip, m cloud.TripMatch, next time.Time) error {
	var geometry []byte
	var dist, conf *float64
	if m.Status == cloud.MatchMatched {
		var err error
		if geometry, err = json.Marshal(m.Geometry); err != nil {
			return cloud.Errorf(cloud.EINTERNAL, "encode matched geometry: %w", err)
		}
		dist, conf = &m.DistanceM, &m.Confidence
	}
	var nextAt *time.Time
	if m.Status == cloud.MatchUnmatched {
		nextAt = &next
	}
	_, err := db.pool.Exec(ctx, `UPDATE trips SET match_status = $3, match_distance_m = $4, match_confidence = $5,
	match_geometry = $6, match_error = $7, match_next_at = $8 WHERE id = $1 AND revision = $2`,
		t.ID, t.Revision, string(m.Status), dist, conf, geometry, m.Error, nextAt)
	if err != nil {
		return classify("save match", err)
	}
	return nil
}
