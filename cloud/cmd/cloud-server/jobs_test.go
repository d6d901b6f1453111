package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/osrm/osrmtest"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// drives returns n drives of ten minutes at 10 m/s with the ignition, an
// hour apart from start, and a fix at the end that closes the last.
func drives(vehicle string, start time.Time, n int) *telemetry.Batch {
	b := &telemetry.Batch{VehicleID: vehicle, StreamID: 5}
	seq, lon := uint64(0), int32(74246333)
	next := func() uint64 { seq++; return seq }
	for k := range n {
		t0 := start.Add(time.Duration(k) * time.Hour)
		b.Events = append(b.Events, telemetry.Event{Seq: next(), UnixMs: t0.UnixMilli(), Type: telemetry.EventIgnitionOn, Code: "obd"})
		for i := range 600 {
			lon += 1241 // about 10 m
			b.Positions = append(b.Positions, telemetry.Position{Seq: next(), UnixMs: t0.Add(time.Duration(i+1) * time.Second).UnixMilli(),
				LatE7: 437384166, LonE7: lon, Has: telemetry.HasSpeed | telemetry.HasHDOP, SpeedMmps: 10000, HDOPc: 110})
		}
		b.Events = append(b.Events, telemetry.Event{Seq: next(), UnixMs: t0.Add(601 * time.Second).UnixMilli(), Type: telemetry.EventIgnitionOff, Code: "obd"})
	}
	b.Positions = append(b.Positions, telemetry.Position{Seq: next(), UnixMs: start.Add(time.Duration(n) * time.Hour).UnixMilli(), LatE7: 437384166, LonE7: lon})
	return b
}

// TestTripMatchedThroughOSRMAndRawWhileItIsDown: the jobs as cloud-server
// runs them, against the real PostgreSQL and the OSRM stand-in: trips are
// detected, matched while OSRM answers, left unmatched (raw track) while it
// is down, and matched by a later round once it is back.
func TestTripMatchedThroughOSRMAndRawWhileItIsDown(t *testing.T) {
	ctx := context.Background()
	u := testenv.Postgres(t)
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	db := postgres.NewDB(u)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fake := osrmtest.NewServer()
	defer fake.Close()
	cfg := DefaultConfig()
	cfg.OSRMURL = fake.URL
	j := newJobs(&cfg, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	j.match.RetryMin, j.match.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	j.matcher.BreakerOpen = 100 * time.Millisecond
	var changes []cloud.TripChange
	j.OnTripChanges = func(c []cloud.TripChange) { changes = append(changes, c...) }

	start := time.Now().Add(-6 * time.Hour).Truncate(time.Second)
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{drives("veh-j", start, 1)}, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	j.trips(ctx)
	if len(changes) != 1 || changes[0].Kind != cloud.TripCreated {
		t.Fatalf("changes %v", changes)
	}
	j.matchTrips(ctx)
	first, err := db.FindTrip(ctx, "veh-j", changes[0].Trip.ID)
	if err != nil || first.Match.Status != cloud.MatchMatched || len(first.Match.Geometry) != 1 || first.Match.DistanceM < 5900 {
		t.Fatalf("matched trip: %+v %v", first.Match, err)
	}
	if len(fake.Requests()) != 7 { // 600 fixes in chunks of 100 sharing 10
		t.Errorf("%d requests to OSRM", len(fake.Requests()))
	}

	// OSRM goes down; a second trip comes in.
	fake.Down(true)
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{drives("veh-j", start.Add(2*time.Hour), 1)}, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	changes = nil
	j.trips(ctx)
	if len(changes) != 1 {
		t.Fatalf("changes %v", changes)
	}
	second := changes[0].Trip
	j.matchTrips(ctx)
	got, _ := db.FindTrip(ctx, "veh-j", second.ID)
	if got.Match.Status != cloud.MatchUnmatched || got.Match.Error == "" {
		t.Fatalf("while OSRM is down: %+v", got.Match)
	}
	if track, err := db.TripTrack(ctx, "veh-j", got.Start, got.End); err != nil || len(track) < 600 {
		t.Errorf("raw track: %d fixes, %v", len(track), err)
	}
	for range 3 { // the breaker opens
		time.Sleep(30 * time.Millisecond)
		j.matchTrips(ctx)
	}
	if !j.matcher.Open() {
		t.Error("the circuit did not open")
	}

	fake.Down(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond)
		j.matchTrips(ctx)
		got, _ = db.FindTrip(ctx, "veh-j", second.ID)
		if got.Match.Status == cloud.MatchMatched {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OSRM is back but the trip is still %s (%s)", got.Match.Status, got.Match.Error)
		}
	}
	if got.Match.Attempts < 2 || len(got.Match.Geometry) == 0 {
		t.Errorf("matched after %d attempts, %d lines", got.Match.Attempts, len(got.Match.Geometry))
	}
}
