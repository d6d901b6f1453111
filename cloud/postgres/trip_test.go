package postgres_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// vehicleDay returns a seeded vehicle's records from start for hours, as
// the agent would batch them live: one batch a minute, positions at 1 Hz,
// ignition events, fuel rate samples every 10 s while the engine runs.
// Trips with the ignition, parks with the agent reporting and with it off.
func vehicleDay(vehicle string, seed uint64, start time.Time, hours int) []*telemetry.Batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	var (
		all     telemetry.Batch
		seq     uint64
		t       = start
		lat     = 43.7384166
		lon     = 7.4246333
		heading = 0.0
		engine  bool
	)
	fixAt := func(speed float64) {
		seq++
		all.Positions = append(all.Positions, telemetry.Position{Seq: seq, UnixMs: t.UnixMilli(),
			LatE7: int32(math.Round(lat * 1e7)), LonE7: int32(math.Round(lon * 1e7)),
			Has: telemetry.HasSpeed | telemetry.HasHDOP, SpeedMmps: int32(speed * 1000), HDOPc: 90})
		if engine && t.Second()%10 == 0 {
			seq++
			all.OBD = append(all.OBD, telemetry.OBDSample{Seq: seq, UnixMs: t.UnixMilli(), PID: cloud.PIDFuelRate, Value: 1 + speed/5})
		}
	}
	ignition := func(on bool) {
		engine = on
		seq++
		typ := telemetry.EventIgnitionOff
		if on {
			typ = telemetry.EventIgnitionOn
		}
		all.Events = append(all.Events, telemetry.Event{Seq: seq, UnixMs: t.UnixMilli(), Type: typ, Code: "obd"})
	}
	step := func(speed float64) {
		t = t.Add(time.Second)
		heading += (rng.Float64() - 0.5) * 0.2
		d := speed / 111320
		lat += d * math.Cos(heading)
		lon += d * math.Sin(heading) / math.Cos(lat*math.Pi/180)
		fixAt(speed)
	}
	stand := func(d time.Duration) {
		for range int(d / time.Second) {
			step(0)
		}
	}
	fixAt(0)
	for t.Before(start.Add(time.Duration(hours) * time.Hour)) {
		ignition(true)
		stand(time.Duration(3+rng.IntN(8)) * time.Second)
		for range 1 + rng.IntN(3) {
			speed := 5 + 20*rng.Float64()
			for range 60 + rng.IntN(600) {
				step(speed)
			}
			if rng.IntN(3) == 0 {
				stand(time.Duration(10+rng.IntN(50)) * time.Second) // traffic lights
			}
		}
		stand(2 * time.Second)
		ignition(false)
		if rng.IntN(2) == 0 {
			stand(time.Duration(6+rng.IntN(40)) * time.Minute)
		} else { // the agent off while parked
			stand(5 * time.Second)
			t = t.Add(time.Duration(10+rng.IntN(60)) * time.Minute)
			fixAt(0)
		}
	}
	// One batch per minute of records.
	byMinute := map[int64]*telemetry.Batch{}
	var batches []*telemetry.Batch
	of := func(ms int64) *telemetry.Batch {
		m := ms / 60000
		if byMinute[m] == nil {
			byMinute[m] = &telemetry.Batch{VehicleID: vehicle, StreamID: seed + 1}
			batches = append(batches, byMinute[m])
		}
		return byMinute[m]
	}
	for _, p := range all.Positions {
		b := of(p.UnixMs)
		b.Positions = append(b.Positions, p)
	}
	for _, e := range all.Events {
		b := of(e.UnixMs)
		b.Events = append(b.Events, e)
	}
	for _, o := range all.OBD {
		b := of(o.UnixMs)
		b.OBD = append(b.OBD, o)
	}
	slices.SortFunc(batches, func(a, b *telemetry.Batch) int { return cmpFirst(a) - cmpFirst(b) })
	return batches
}

// cmpFirst returns the minute of a batch's first position (or event).
func cmpFirst(b *telemetry.Batch) int {
	if len(b.Positions) > 0 {
		return int(b.Positions[0].UnixMs / 60000)
	}
	return int(b.Events[0].UnixMs / 60000)
}

// commitEach commits the batches one transaction each.
func commitEach(t *testing.T, db *postgres.DB, batches []*telemetry.Batch) {
	t.Helper()
	for _, b := range batches {
		if _, err := db.Commit(context.Background(), &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
}

// drainTrips recomputes until no vehicle is dirty.
func drainTrips(t *testing.T, db *postgres.DB) postgres.TripRecompute {
	t.Helper()
	var all postgres.TripRecompute
	for {
		res, err := db.RecomputeTrips(context.Background(), cloud.TripConfig{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if res.Vehicles == 0 {
			return all
		}
		all.Vehicles += res.Vehicles
		all.Changes = append(all.Changes, res.Changes...)
	}
}

// storedTrips pages through all the vehicle's trips from the API side.
func storedTrips(t *testing.T, db *postgres.DB, vehicle string) []*cloud.Trip {
	t.Helper()
	var out []*cloud.Trip
	f := cloud.TripFilter{VehicleID: vehicle, From: now.Add(-30 * 24 * time.Hour), To: now.Add(30 * 24 * time.Hour), Limit: 7}
	for {
		page, next, err := db.FindTrips(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == nil {
			return out
		}
		f.After = next
	}
}

// fullPass detects the vehicle's trips over everything stored.
func fullPass(t *testing.T, db *postgres.DB, u, vehicle string) []*cloud.Trip {
	t.Helper()
	ctx := context.Background()
	in := &cloud.TripInput{VehicleID: vehicle}
	var err error
	if in.Positions, err = db.TripTrack(ctx, vehicle, now.Add(-365*24*time.Hour), now.Add(365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := sql(t, u)
	rows, err := c.Query(ctx, "SELECT time, type FROM events WHERE vehicle_id = $1 AND type IN (2, 3)", vehicle)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var at time.Time
		var typ int
		if err := rows.Scan(&at, &typ); err != nil {
			t.Fatal(err)
		}
		in.Ignition = append(in.Ignition, cloud.IgnitionEvent{Time: at.UTC(), On: typ == 2})
	}
	rows, err = c.Query(ctx, "SELECT stream_id, seq, time, pid, value FROM obd_samples WHERE vehicle_id = $1", vehicle)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		s := &cloud.OBDSample{VehicleID: vehicle}
		var stream, seq int64
		var pid int32
		if err := rows.Scan(&stream, &seq, &s.Time, &pid, &s.Value); err != nil {
			t.Fatal(err)
		}
		s.StreamID, s.Seq, s.PID, s.Time = uint64(stream), uint64(seq), uint16(pid), s.Time.UTC()
		in.OBD = append(in.OBD, s)
	}
	return cloud.DetectTrips(in, cloud.TripConfig{}).Trips
}

func tripList(ts []*cloud.Trip) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %v\n", t)
	}
	return b.String()
}

func sameTrips(t *testing.T, what string, got, want []*cloud.Trip) {
	t.Helper()
	if !slices.EqualFunc(got, want, (*cloud.Trip).SameExtent) {
		t.Fatalf("%s:\n%swant\n%s", what, tripList(got), tripList(want))
	}
}

func TestDirtyRangesFromIngest(t *testing.T) {
	db, u := openDB(t)
	c := sql(t, u)
	ctx := context.Background()
	dirty := func() []string {
		rows, err := c.Query(ctx, "SELECT vehicle_id, from_time, to_time FROM trip_dirty ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var v string
			var a, b time.Time
			if err := rows.Scan(&v, &a, &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %s", v, a.UTC().Format(time.TimeOnly), b.UTC().Format(time.TimeOnly)))
		}
		c.Exec(ctx, "DELETE FROM trip_dirty")
		return out
	}
	at := func(s int) int64 { return now.Add(time.Duration(s) * time.Second).UnixMilli() }
	b := &telemetry.Batch{VehicleID: "veh-a", StreamID: 9,
		Positions: []telemetry.Position{{Seq: 1, UnixMs: at(-100), LatE7: 1}, {Seq: 2, UnixMs: at(-40), LatE7: 1}},
		OBD: []telemetry.OBDSample{{Seq: 3, UnixMs: at(-200), PID: 0x010C, Value: 800},
			{Seq: 4, UnixMs: at(-300), PID: cloud.PIDMAF, Value: 3}},
		Events: []telemetry.Event{{Seq: 5, UnixMs: at(-500), Type: telemetry.EventIgnitionOn, Code: "obd"},
			{Seq: 6, UnixMs: at(-900), Type: telemetry.EventDTCSet, Code: "P0301"}}}
	other := &telemetry.Batch{VehicleID: "veh-b", StreamID: 9, Positions: []telemetry.Position{{Seq: 1, UnixMs: at(-10), LatE7: 1}}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b, other}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	got := dirty()
	slices.Sort(got)
	want := []string{"veh-a 11:51:40 11:51:40", "veh-a 11:55:00 11:55:00", "veh-a 11:58:20 11:59:20", "veh-b 11:59:50 11:59:50"}
	if !slices.Equal(got, want) {
		t.Errorf("dirty ranges after a commit:\n%s\nwant (positions, the ignition event, the air flow sample; not rpm or a DTC)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A replay inserts nothing and marks nothing.
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if got := dirty(); len(got) != 0 {
		t.Errorf("a replay marked %v", got)
	}
	// A replay with one new record marks that record only.
	b.Positions = append(b.Positions, telemetry.Position{Seq: 7, UnixMs: at(-5), LatE7: 1})
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if got := dirty(); !slices.Equal(got, []string{"veh-a 11:59:55 11:59:55"}) {
		t.Errorf("a replay with one new fix marked %v", got)
	}
}

// TestTripsOfADay: a day of live batches gives, after the trip job, the
// trips of a full pass over the stored records; the API pages them.
func TestTripsOfADay(t *testing.T) {
	db, u := openDB(t)
	batches := vehicleDay("veh-day", 1, now.Add(-26*time.Hour), 24)
	commitEach(t, db, batches)
	res := drainTrips(t, db)
	stored := storedTrips(t, db, "veh-day")
	full := fullPass(t, db, u, "veh-day")
	if len(full) < 10 {
		t.Fatalf("only %d trips in a day", len(full))
	}
	sameTrips(t, "stored trips", stored, full)
	for _, tr := range stored {
		if tr.FuelSource != cloud.FuelFromRate || tr.FuelL == nil || *tr.FuelL <= 0 {
			t.Errorf("%v: fuel %v from %q", tr, tr.FuelL, tr.FuelSource)
		}
	}
	created := 0
	for _, c := range res.Changes {
		if c.Kind == cloud.TripCreated {
			created++
		}
	}
	if created != len(full) {
		t.Errorf("%d trips created, want %d", created, len(full))
	}
	// Nothing dirty: the job does nothing; the same range dirty again
	// changes nothing.
	if res := drainTrips(t, db); res.Vehicles != 0 || len(res.Changes) != 0 {
		t.Errorf("a second run: %+v", res)
	}
	if _, err := sql(t, u).Exec(context.Background(), "INSERT INTO trip_dirty (vehicle_id, from_time, to_time) VALUES ('veh-day', $1, $2)",
		now.Add(-26*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if res := drainTrips(t, db); res.Vehicles != 1 || len(res.Changes) != 0 {
		t.Errorf("recomputing the whole day again: %d vehicles, %d changes", res.Vehicles, len(res.Changes))
	}
	if got := storedTrips(t, db, "veh-day"); !slices.EqualFunc(got, stored, func(a, b *cloud.Trip) bool { return a.ID == b.ID && a.SameExtent(b) }) {
		t.Errorf("ids or trips changed by a recompute that changed nothing")
	}
}

// TestBacklogGivesTheLiveTrips: the same day, once live (batch by batch,
// the job running every ten minutes of data) and once with a six-hour
// outage in it, after which the agent sends the newest batches first and
// then the backlog newest to oldest while the job runs: both give the
// trips of a full pass.
func TestBacklogGivesTheLiveTrips(t *testing.T) {
	batches := vehicleDay("veh-bl", 2, now.Add(-26*time.Hour), 24)

	live, u := openDB(t)
	for i, b := range batches {
		commitEach(t, live, []*telemetry.Batch{b})
		if i%10 == 9 {
			drainTrips(t, live)
		}
	}
	drainTrips(t, live)
	want := fullPass(t, live, u, "veh-bl")
	sameTrips(t, "live", storedTrips(t, live, "veh-bl"), want)

	db, _ := openDB(t)
	outage := len(batches) / 3
	back := outage + 360
	for i, b := range batches[:outage] {
		commitEach(t, db, []*telemetry.Batch{b})
		if i%10 == 9 {
			drainTrips(t, db)
		}
	}
	drainTrips(t, db)
	// Back online: live first, then the backlog newest first.
	commitEach(t, db, batches[back:back+5])
	drainTrips(t, db)
	for i := back - 1; i >= outage; i-- {
		commitEach(t, db, batches[i:i+1])
		if i%25 == 0 {
			drainTrips(t, db)
		}
	}
	commitEach(t, db, batches[back+5:])
	drainTrips(t, db)
	sameTrips(t, "after the backlog", storedTrips(t, db, "veh-bl"), want)
}

// TestTripJobAcrossReplicasAndCrashes: two replicas run the job while the
// data arrives, and transactions die at random points (cancelled
// contexts): no trip is stored twice (the exclusion constraint would fail
// the commit) or lost, and the result is the full pass.
func TestTripJobAcrossReplicasAndCrashes(t *testing.T) {
	a, u := openDB(t)
	b := postgres.NewDB(u)
	b.Now = a.Now
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vehicles := []string{"veh-r1", "veh-r2", "veh-r3"}
	var all [][]*telemetry.Batch
	for i, v := range vehicles {
		all = append(all, vehicleDay(v, uint64(10+i), now.Add(-8*time.Hour), 6))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var crashes, runs sync.Map
	var changed atomic.Int64
	for r, db := range []*postgres.DB{a, b} {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 5))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Two runs in three die at a random point; the third runs to
				// its end.
				limit := time.Duration(1+rng.IntN(60)) * time.Millisecond
				if n%3 == 2 {
					limit = time.Minute
				}
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				res, err := db.RecomputeTrips(ctx, cloud.TripConfig{}, 2)
				cancel()
				if len(res.Changes) > 0 {
					changed.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
				if err != nil && ctx.Err() == nil {
					t.Errorf("replica %d: %v", r, err)
					return
				}
				if err != nil {
					crashes.Store(fmt.Sprint(r, n), true)
				}
				runs.Store(fmt.Sprint(r, n), true)
			}
		})
	}
	for i := 0; ; i++ {
		more := false
		var round []*telemetry.Batch
		for _, bs := range all {
			if i < len(bs) {
				round = append(round, bs[i])
				more = true
			}
		}
		if !more {
			break
		}
		if _, err := a.Commit(context.Background(), &cloud.Commit{Batches: round, ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	nCrash := 0
	crashes.Range(func(any, any) bool { nCrash++; return true })
	if nCrash == 0 {
		t.Errorf("no run was cut short; the test did not test crashes")
	}
	drainTrips(t, b)
	for _, v := range vehicles {
		sameTrips(t, v, storedTrips(t, a, v), fullPass(t, a, u, v))
	}
	if changed.Load() == 0 {
		t.Errorf("no run changed any trip while the data arrived")
	}
	t.Logf("%d runs cut short, %d changed trips", nCrash, changed.Load())
}

func TestMatchLeaseAndRevision(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	commitEach(t, db, vehicleDay("veh-m", 3, now.Add(-5*time.Hour), 3))
	drainTrips(t, db)
	stored := storedTrips(t, db, "veh-m")
	closed := slices.DeleteFunc(slices.Clone(stored), func(t *cloud.Trip) bool { return t.Open })
	if len(closed) < 3 {
		t.Fatalf("%d closed trips", len(closed))
	}
	got, err := db.ClaimTripsToMatch(ctx, now, 2, time.Minute)
	if err != nil || len(got) != 2 || got[0].ID != closed[0].ID || got[0].Match.Attempts != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	// Leased: another claim skips them.
	again, err := db.ClaimTripsToMatch(ctx, now, 10, time.Minute)
	if err != nil || slices.ContainsFunc(again, func(x *cloud.Trip) bool { return x.ID == got[0].ID || x.ID == got[1].ID }) {
		t.Fatalf("claimed again while leased: %v %v", again, err)
	}
	if len(again) != len(closed)-2 {
		t.Errorf("second claim: %d trips, want %d (open trips are never matched)", len(again), len(closed)-2)
	}
	// A lease that ran out makes them due again.
	late, err := db.ClaimTripsToMatch(ctx, now.Add(2*time.Minute), 10, time.Minute)
	if err != nil || len(late) != len(closed) {
		t.Errorf("after the leases ran out: %d trips, %v", len(late), err)
	}
	geom := [][][2]float64{{{7.42, 43.73}, {7.43, 43.74}}}
	m := cloud.TripMatch{Status: cloud.MatchMatched, DistanceM: 1234.5, Confidence: 0.9, Geometry: geom}
	if err := db.SaveMatch(ctx, late[0], m, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tr, err := db.FindTrip(ctx, "veh-m", late[0].ID)
	if err != nil || tr.Match.Status != cloud.MatchMatched || tr.Match.DistanceM != 1234.5 || tr.Match.Confidence != 0.9 ||
		fmt.Sprint(tr.Match.Geometry) != fmt.Sprint(geom) {
		t.Errorf("matched trip: %+v %v", tr, err)
	}
	// A result for an older revision is not stored.
	if _, err := sql(t, u).Exec(ctx, "UPDATE trips SET revision = revision + 1 WHERE id = $1", late[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveMatch(ctx, late[1], m, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if tr, _ := db.FindTrip(ctx, "veh-m", late[1].ID); tr.Match.Status != cloud.MatchPending {
		t.Errorf("a stale result was stored: %s", tr.Match.Status)
	}
	if _, err := db.FindTrip(ctx, "veh-m", 999999); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("unknown trip: %v", err)
	}
	if _, _, err := db.FindTrips(ctx, cloud.TripFilter{VehicleID: "nobody", From: now.Add(-time.Hour), To: now, Limit: 10}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("unknown vehicle: %v", err)
	}
}
