package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestClockLimit: a fix stamped after the commit's clock limit is stored but
// never becomes the vehicle's position; a position or status stored with a
// time after the limit (from before the rule) gives way to the next sane
// one, and then the vehicle's last will applies again.
func TestClockLimit(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	limit := now.Add(5 * time.Minute)
	c := sql(t, u)

	// A pinned position and status, as an unchecked far-future clock left them.
	pinned := &telemetry.Batch{VehicleID: "veh-1", StreamID: 1, Positions: []telemetry.Position{fix(1, now.Add(20*time.Hour), 1)}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{pinned}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveStatus(ctx, &cloud.DeviceStatus{VehicleID: "veh-1", Online: true, Time: now.Add(20 * time.Hour), ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}

	// A sane fix and a future one in the same commit, with the limit.
	b := &telemetry.Batch{VehicleID: "veh-1", StreamID: 1, Positions: []telemetry.Position{fix(2, now, 2), fix(3, now.Add(time.Hour), 3)}}
	status := cloud.DeviceStatus{VehicleID: "veh-1", Online: true, Time: now, OutboxDepth: 9, ReceivedAt: now}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, Statuses: []cloud.DeviceStatus{status}, ReceivedAt: now, ClockLimit: limit}); err != nil {
		t.Fatal(err)
	}
	v, err := db.FindVehicleByID(ctx, "veh-1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Position == nil || v.Position.Seq != 2 {
		t.Errorf("position %+v, want seq 2 (the pinned one gave way, the future one never came)", v.Position)
	}
	if n := count(t, c, "SELECT count(*) FROM positions WHERE vehicle_id = 'veh-1'"); n != 3 {
		t.Errorf("%d positions stored, want 3 (history keeps the future fix)", n)
	}
	st, err := db.FindStatus(ctx, "veh-1")
	if err != nil || st.OutboxDepth != 9 || !st.Time.Equal(now) {
		t.Fatalf("status %+v, %v: want the sane one", st, err)
	}
	will := cloud.DeviceStatus{VehicleID: "veh-1", Online: false, Time: now, ReceivedAt: now.Add(time.Minute)}
	if _, err := db.Commit(ctx, &cloud.Commit{Statuses: []cloud.DeviceStatus{will}, ReceivedAt: now.Add(time.Minute), ClockLimit: limit}); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.FindStatus(ctx, "veh-1"); st.Online {
		t.Errorf("the last will did not apply: %+v", st)
	}
}

// TestCommitAnswers: an answer to a known command is stored in the commit's
// transaction; one to an unknown command is reported, not stored.
func TestCommitAnswers(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{sampleBatch("veh-1", 1)}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateCommand(ctx, &cloud.Command{ID: "c1", VehicleID: "veh-1", Type: cloud.CommandReadDTCs, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, err := db.Commit(ctx, &cloud.Commit{Answers: []cloud.CommandAnswer{
		{VehicleID: "veh-1", CommandID: "nope", Result: cloud.CommandResult{OK: true, ReceivedAt: now}},
		{VehicleID: "veh-1", CommandID: "c1", Result: cloud.CommandResult{OK: true, DTCs: []string{"P0301"}, ReceivedAt: now}},
		{VehicleID: "veh-2", CommandID: "c1", Result: cloud.CommandResult{OK: true, ReceivedAt: now}},
	}, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.UnknownCommands) != 2 || res.UnknownCommands[0] != 0 || res.UnknownCommands[1] != 2 {
		t.Errorf("unknown commands %v, want [0 2]", res.UnknownCommands)
	}
	cmd, err := db.FindCommand(ctx, "veh-1", "c1")
	if err != nil || cmd.Result == nil || len(cmd.Result.DTCs) != 1 {
		t.Errorf("command %+v, %v", cmd, err)
	}
}
