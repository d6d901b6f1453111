package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// partitions lists table's partitions by name.
func partitions(t *testing.T, u, table string) []string {
	t.Helper()
	rows, err := sql(t, u).Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestLateFixFrom2019GetsItsOwnPartition: a fix older than every partition
// lands in the DEFAULT partition at insert, and partition maintenance gives
// it a partition of its month; the default one is left empty, so that
// partitions for its range can still be made, and the fix can be read.
func TestLateFixFrom2019GetsItsOwnPartition(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	c := sql(t, u)
	old := time.Date(2019, 3, 2, 8, 30, 0, 0, time.UTC)
	b := &telemetry.Batch{VehicleID: "veh-2019", StreamID: 4,
		Positions: []telemetry.Position{fix(1, old, 437384166), fix(2, now, 437384166)},
		OBD:       []telemetry.OBDSample{{Seq: 3, UnixMs: old.UnixMilli(), PID: 0x010C, Value: 800}}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, c, "veh-2019", 1); got != "positions_default" {
		t.Fatalf("the 2019 fix is in %s before maintenance", got)
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, c, "veh-2019", 1); got != "positions_y2019m03" {
		t.Errorf("the 2019 fix is in %s, want positions_y2019m03", got)
	}
	for _, table := range []string{"positions_default", "obd_samples_default"} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%s holds %d rows", table, n)
		}
	}
	if !slices.Contains(partitions(t, u, "obd_samples"), "obd_samples_y2019m03") {
		t.Errorf("no OBD partition for March 2019: %v", partitions(t, u, "obd_samples"))
	}
	ps, _, err := db.FindPositions(ctx, cloud.PositionFilter{VehicleID: "veh-2019", From: old.Add(-time.Hour), To: old.Add(time.Hour), Limit: 10})
	if err != nil || len(ps) != 1 || !ps[0].Time.Equal(old) {
		t.Errorf("reading the 2019 fix: %v %v", ps, err)
	}
	// Another late fix of the same month goes straight to its partition.
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{{VehicleID: "veh-2019", StreamID: 4,
		Positions: []telemetry.Position{fix(4, old.Add(time.Hour), 1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, c, "veh-2019", 4); got != "positions_y2019m03" {
		t.Errorf("a second March 2019 fix is in %s", got)
	}
}

// TestRetentionDropsPartitionsOnAClockMovedForward: with the clock at the
// test's now, retention drops only the 2019 partition; moved forward by
// fifteen months it drops every partition whose month ended more than the
// retention ago, and deletes the old rows of the other tables.
func TestRetentionDropsPartitionsOnAClockMovedForward(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	c := sql(t, u)
	old := time.Date(2019, 3, 2, 8, 30, 0, 0, time.UTC)
	b := &telemetry.Batch{VehicleID: "veh-ret", StreamID: 4,
		Positions: []telemetry.Position{fix(1, old, 1), fix(2, now.AddDate(0, -1, 0), 1), fix(3, now, 1)},
		OBD:       []telemetry.OBDSample{{Seq: 4, UnixMs: now.UnixMilli(), PID: 0x010C, Value: 800}},
		Events:    []telemetry.Event{{Seq: 5, UnixMs: now.UnixMilli(), Type: telemetry.EventIgnitionOn, Code: "obd"}}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now,
		DeadLetters: []cloud.DeadLetter{{Topic: "x", Payload: []byte{1}, Reason: "test", ReceivedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveStatus(ctx, &cloud.DeviceStatus{VehicleID: "veh-ret", Online: true, Time: now, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateCommand(ctx, &cloud.Command{ID: "c1", VehicleID: "veh-ret", Type: cloud.CommandReadDTCs, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	r := postgres.DefaultRetention()
	r.Trips = 400 * 24 * time.Hour
	res, err := db.ApplyRetention(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Dropped, []string{"positions_y2019m03"}) {
		t.Errorf("at now, dropped %v, want the 2019 partition only", res.Dropped)
	}
	if n := count(t, c, "SELECT count(*) FROM positions"); n != 2 {
		t.Errorf("%d positions left, want 2", n)
	}

	// Fifteen months later.
	db.Now = func() time.Time { return now.AddDate(1, 3, 0) }
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = db.ApplyRetention(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"positions", "obd_samples"} {
		for _, p := range partitions(t, u, table) {
			if p < table+"_y2027" && p != table+"_default" {
				t.Errorf("%s kept after the clock moved 15 months on (dropped %v)", p, res.Dropped)
			}
		}
	}
	if !slices.Contains(res.Dropped, "positions_y2026m11") || !slices.Contains(res.Dropped, "obd_samples_y2027m02") {
		t.Errorf("dropped %v", res.Dropped)
	}
	for table, want := range map[string]int{"positions": 0, "obd_samples": 0, "events": 0, "dead_letters": 0, "commands": 0, "device_status": 0} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s: %d rows left, want %d", table, n, want)
		}
	}
	if res.Deleted["events"] != 1 || res.Deleted["dead_letters"] != 1 || res.Deleted["commands"] != 1 || res.Deleted["device_status"] != 1 {
		t.Errorf("deleted %v", res.Deleted)
	}
	// 0 keeps for ever: nothing of the new month is touched.
	if res, err := db.ApplyRetention(ctx, postgres.Retention{}); err != nil || len(res.Dropped) != 0 {
		t.Errorf("retention off: %+v %v", res, err)
	}
}

func TestRetentionOneReplicaAtATime(t *testing.T) {
	db, u := openDB(t)
	c := sql(t, u)
	if _, err := c.Exec(context.Background(), "SELECT pg_advisory_lock($1)", int64(0x466c656574726574)); err != nil {
		t.Fatal(err)
	}
	res, err := db.ApplyRetention(context.Background(), postgres.DefaultRetention())
	if err != nil || !res.Skipped {
		t.Errorf("while another replica holds the lock: %+v %v", res, err)
	}
	if _, err := c.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(0x466c656574726574)); err != nil {
		t.Fatal(err)
	}
	if res, err := db.ApplyRetention(context.Background(), postgres.DefaultRetention()); err != nil || res.Skipped {
		t.Errorf("after it let go: %+v %v", res, err)
	}
}
