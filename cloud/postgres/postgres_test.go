package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// openDB migrates a fresh database and opens it with the clock at now.
func openDB(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	u := testenv.Postgres(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	db := postgres.NewDB(u)
	db.Now = func() time.Time { return now }
	if err := db.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
}

// sql connects to the test database directly, to look behind the API.
func sql(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func count(t *testing.T, c *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func fix(seq uint64, at time.Time, latE7 int32) telemetry.Position {
	return telemetry.Position{
		Seq: seq, UnixMs: at.UnixMilli(), LatE7: latE7, LonE7: 74246333,
		Has:       telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasSatsUsed | telemetry.HasHDOP,
		SpeedMmps: 13891, CourseCdeg: 4520, SatsUsed: 9, HDOPc: 90,
	}
}

func sampleBatch(vehicle string, stream uint64) *telemetry.Batch {
	return &telemetry.Batch{
		VehicleID: vehicle, StreamID: stream,
		Positions: []telemetry.Position{fix(1, now.Add(-2*time.Second), 437384166), fix(2, now.Add(-time.Second), 437384200)},
		OBD:       []telemetry.OBDSample{{Seq: 3, UnixMs: now.UnixMilli(), PID: 0x010C, Value: 1303.75}},
		Events:    []telemetry.Event{{Seq: 4, UnixMs: now.UnixMilli(), Type: telemetry.EventIgnitionOn, Code: "x", Detail: "y"}},
	}
}

func TestMigrateFreshAndIdempotent(t *testing.T) {
	u := testenv.Postgres(t)
	ctx := context.Background()
	for i := range 2 {
		if err := postgres.Migrate(ctx, u); err != nil {
			t.Fatalf("Migrate run %d: %v", i+1, err)
		}
	}
	c := sql(t, u)
	for _, table := range []string{"vehicles", "positions", "positions_default", "obd_samples", "obd_samples_default", "events", "dead_letters", "device_status"} {
		if n := count(t, c, "SELECT count(*) FROM pg_class WHERE relname = $1", table); n != 1 {
			t.Errorf("table %s: %d found", table, n)
		}
	}
	var version int
	var dirty bool
	if err := c.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil {
		t.Fatal(err)
	}
	// The latest migration: the highest NNNN_*.up.sql.
	files, err := filepath.Glob("migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	latest, _ := strconv.Atoi(strings.SplitN(filepath.Base(files[len(files)-1]), "_", 2)[0])
	if version != latest || dirty {
		t.Errorf("schema_migrations: version %d dirty %v, want %d", version, dirty, latest)
	}
}

func TestMigrateCreatesMissingDatabase(t *testing.T) {
	base, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	name := base.Path[1:] + "_created"
	base.Path = "/" + name
	t.Cleanup(func() {
		admin, err := pgx.Connect(context.Background(), testenv.PostgresAdmin)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	if err := postgres.Migrate(context.Background(), base.String()); err != nil {
		t.Fatalf("Migrate into a missing database: %v", err)
	}
	c := sql(t, base.String())
	if n := count(t, c, "SELECT count(*) FROM pg_class WHERE relname = 'positions'"); n != 1 {
		t.Errorf("positions table not created in the new database")
	}
}

func TestUnreachable(t *testing.T) {
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", testenv.FreePort(t))
	ctx := context.Background()
	if err := postgres.Migrate(ctx, u); cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
		t.Errorf("Migrate: code %q (%v), want EUNAVAILABLE", cloud.ErrorCode(err), err)
	}
	if err := postgres.NewDB(u).Open(ctx); cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
		t.Errorf("Open: code %q (%v), want EUNAVAILABLE", cloud.ErrorCode(err), err)
	}
}

func TestCommitTwiceStoresOnce(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	b := sampleBatch("veh-001", 0xfedcba9876543210) // high bit set: stored as a negative bigint
	res, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 4 {
		t.Errorf("first commit inserted %d, want 4", res.Inserted)
	}
	res, err = db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b, b}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 {
		t.Errorf("replay inserted %d, want 0", res.Inserted)
	}
	c := sql(t, u)
	for table, want := range map[string]int{"positions": 2, "obd_samples": 1, "events": 1, "vehicles": 1} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	ps, _, err := db.FindPositions(ctx, cloud.PositionFilter{VehicleID: "veh-001", From: now.Add(-time.Hour), To: now.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].StreamID != 0xfedcba9876543210 || ps[0].Seq != 1 || ps[0].Lat != 43.7384166 ||
		*ps[0].SpeedMPS != 13.891 || *ps[0].CourseDeg != 45.2 || *ps[0].SatsUsed != 9 || *ps[0].HDOP != 0.9 ||
		ps[0].AltM != nil || ps[0].Mode != nil || !ps[0].Time.Equal(now.Add(-2*time.Second)) {
		t.Errorf("positions read back: %+v", ps)
	}
	obd, _, err := db.FindOBDSamples(ctx, cloud.OBDFilter{VehicleID: "veh-001", From: now.Add(-time.Hour), To: now.Add(time.Hour), PID: 0x010C, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(obd) != 1 || obd[0].Value != 1303.75 || obd[0].PID != 0x010C || obd[0].Seq != 3 {
		t.Errorf("OBD read back: %+v", obd)
	}
}

func TestPartitionsAhead(t *testing.T) {
	_, u := openDB(t)
	c := sql(t, u)
	for _, table := range []string{"positions", "obd_samples"} {
		rows, err := c.Query(context.Background(),
			"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass", table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"y2026m10", "y2026m11", "y2026m12", "y2027m01", "y2027m02"} {
			if !slices.Contains(got, table+"_"+m) {
				t.Errorf("%s: no partition %s_%s among %v", table, table, m, got)
			}
		}
	}
}

// partitionOf returns the partition holding the position of vehicle with seq.
func partitionOf(t *testing.T, c *pgx.Conn, vehicle string, seq int) string {
	t.Helper()
	var p string
	if err := c.QueryRow(context.Background(), "SELECT tableoid::regclass::text FROM positions WHERE vehicle_id = $1 AND seq = $2", vehicle, seq).Scan(&p); err != nil {
		t.Fatalf("find position %s/%d: %v", vehicle, seq, err)
	}
	return p
}

func TestDefaultPartitionCatchesFarPastAndMovesOut(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	c := sql(t, u)
	farPast := time.Date(2001, 3, 4, 5, 6, 7, 0, time.UTC)
	beforeWindow := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC) // no partition yet for June 2026
	b := &telemetry.Batch{VehicleID: "veh-old", StreamID: 9, Positions: []telemetry.Position{
		fix(1, farPast, 1), fix(2, beforeWindow, 2), fix(3, now, 3),
	}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}}); err != nil {
		t.Fatal(err)
	}
	for seq, want := range map[int]string{1: "positions_default", 2: "positions_default", 3: "positions_y2026m11"} {
		if got := partitionOf(t, c, "veh-old", seq); got != want {
			t.Errorf("seq %d in %s, want %s", seq, got, want)
		}
	}
	// The clock goes back to July 2026 (a restored server, or a longer window):
	// the June partition is made and the June row moves out of the default one.
	db.Now = func() time.Time { return beforeWindow.AddDate(0, 1, 0) }
	if err := db.EnsurePartitions(ctx); err != nil {
		t.Fatalf("EnsurePartitions with rows in the default partition: %v", err)
	}
	if got := partitionOf(t, c, "veh-old", 2); got != "positions_y2026m06" {
		t.Errorf("June row in %s after the June partition was made", got)
	}
	// Late data older than every partition gets a partition of its own.
	if got := partitionOf(t, c, "veh-old", 1); got != "positions_y2001m03" {
		t.Errorf("2001 row in %s, want positions_y2001m03", got)
	}
	if n := count(t, c, "SELECT count(*) FROM positions WHERE vehicle_id = 'veh-old'"); n != 3 {
		t.Errorf("%d rows after moving, want 3", n)
	}
	// Still deduplicated across the move.
	if res, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}}); err != nil || res.Inserted != 0 {
		t.Errorf("replay after the move: inserted %d, err %v", res.Inserted, err)
	}
}

func TestPaginationReturnsEveryRowOnce(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	// Two streams with interleaved and equal times, so the order needs all of
	// (time, stream_id, seq).
	var batches []*telemetry.Batch
	var want []string
	for _, stream := range []uint64{1, 0x8000000000000001} {
		b := &telemetry.Batch{VehicleID: "veh-page", StreamID: stream}
		for i := range 103 {
			at := now.Add(-time.Hour + time.Duration(i/3)*time.Second)
			b.Positions = append(b.Positions, fix(uint64(i+1), at, int32(i)))
			b.OBD = append(b.OBD, telemetry.OBDSample{Seq: uint64(1000 + i), UnixMs: at.UnixMilli(), PID: 0x010D, Value: float64(i)})
			want = append(want, fmt.Sprintf("%x/%d", stream, i+1))
		}
		batches = append(batches, b)
	}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: batches}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 7, 100, 206, 1000} {
		var got []string
		var after *cloud.Cursor
		var prev *cloud.Position
		pages := 0
		for {
			ps, next, err := db.FindPositions(ctx, cloud.PositionFilter{VehicleID: "veh-page", From: now.Add(-2 * time.Hour), To: now, After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, p := range ps {
				if prev != nil && (p.Time.Before(prev.Time) || p.Time.Equal(prev.Time) && int64(p.StreamID) < int64(prev.StreamID)) {
					t.Fatalf("limit %d: %v after %v: not ordered by time, stream", limit, p.Cursor(), prev.Cursor())
				}
				prev = p
				got = append(got, fmt.Sprintf("%x/%d", p.StreamID, p.Seq))
			}
			if next == nil {
				break
			}
			if len(ps) != limit {
				t.Fatalf("limit %d: a page of %d with a next cursor", limit, len(ps))
			}
			after = next
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("limit %d: %d rows over %d pages, want each of %d exactly once", limit, len(got), pages, len(w))
		}
		if wantPages := (206 + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// OBD pages too, filtered by PID.
	n := 0
	var after *cloud.Cursor
	for {
		ss, next, err := db.FindOBDSamples(ctx, cloud.OBDFilter{VehicleID: "veh-page", From: now.Add(-2 * time.Hour), To: now, PID: 0x010D, After: after, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		n += len(ss)
		if next == nil {
			break
		}
		after = next
	}
	if n != 206 {
		t.Errorf("OBD pages returned %d samples, want 206", n)
	}
}

func TestLatestPositionMovesForwardOnly(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	newer := &telemetry.Batch{VehicleID: "veh-l", StreamID: 1, Positions: []telemetry.Position{fix(10, now, 100)}}
	older := &telemetry.Batch{VehicleID: "veh-l", StreamID: 1, Positions: []telemetry.Position{fix(5, now.Add(-time.Hour), 50)}}
	for _, b := range []*telemetry.Batch{newer, older} {
		if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := db.FindVehicleByID(ctx, "veh-l")
	if err != nil {
		t.Fatal(err)
	}
	if v.Position == nil || v.Position.Seq != 10 || !v.Position.Time.Equal(now) || v.Position.Lat != 100e-7 {
		t.Errorf("latest position %+v, want seq 10", v.Position)
	}
	vs, _, err := db.FindVehicles(ctx, cloud.VehicleFilter{Limit: 10})
	if err != nil || len(vs) != 1 || vs[0].ID != "veh-l" || !vs[0].LastSeen.Equal(now) {
		t.Errorf("FindVehicles = %+v, %v", vs, err)
	}
}

func TestNotFound(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := db.FindVehicleByID(ctx, "nobody"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("FindVehicleByID: %v", err)
	}
	if _, _, err := db.FindPositions(ctx, cloud.PositionFilter{VehicleID: "nobody", From: now.Add(-time.Hour), To: now, Limit: 10}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("FindPositions: %v", err)
	}
	if _, _, err := db.FindOBDSamples(ctx, cloud.OBDFilter{VehicleID: "nobody", From: now.Add(-time.Hour), To: now, Limit: 10}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("FindOBDSamples: %v", err)
	}
}

func TestDeadLetters(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	payload := []byte{0x00, 0xff, 0x10}
	_, err := db.Commit(ctx, &cloud.Commit{DeadLetters: []cloud.DeadLetter{
		{Topic: "t/fleet/v1/veh-1/up/batch", VehicleID: "veh-1", Payload: payload, Reason: "decode: bad\x00 \xff"},
		{Topic: "t/fleet/v1/veh-1/up/batch", VehicleID: "veh-1", StreamID: 42, Payload: nil, Reason: "vehicle id differs"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := sql(t, u)
	var got []byte
	var reason string
	if err := c.QueryRow(ctx, "SELECT payload, reason FROM dead_letters WHERE stream_id IS NULL").Scan(&got, &reason); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(payload) || reason != "decode: bad\uFFFD \uFFFD" {
		t.Errorf("dead letter payload %x reason %q", got, reason)
	}
	if n := count(t, c, "SELECT count(*) FROM dead_letters WHERE stream_id = 42"); n != 1 {
		t.Errorf("%d dead letters with stream 42", n)
	}
}

// TestRefusedCommitLeavesNothingStaged: a commit the database refuses (here
// one with a replay, so it goes through the staging tables, and a row a CHECK
// constraint refuses) stores nothing of any batch in it, says EINVALID, and
// leaves the connection's staging tables empty for the next commit (one
// connection, so the next commit uses the same staging tables).
func TestRefusedCommitLeavesNothingStaged(t *testing.T) {
	u := testenv.Postgres(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	c := sql(t, u)
	if _, err := c.Exec(ctx, "ALTER TABLE positions ADD CONSTRAINT no_lat_one CHECK (lat_e7 <> 1)"); err != nil {
		t.Fatal(err)
	}
	db := postgres.NewDB(u + "&pool_max_conns=1")
	db.Now = func() time.Time { return now }
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	good, good2 := sampleBatch("veh-good", 1), sampleBatch("veh-good2", 1)
	bad := &telemetry.Batch{VehicleID: "veh-bad", StreamID: 2, Positions: []telemetry.Position{fix(1, now, 1)}}
	if res, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{good}}); err != nil || res.Inserted != 4 {
		t.Fatalf("first commit: inserted %d, %v", res.Inserted, err)
	}
	_, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{good, bad, good2}})
	if cloud.ErrorCode(err) != cloud.EINVALID {
		t.Fatalf("commit with a refused row: %v, want EINVALID", err)
	}
	for table, want := range map[string]int{"positions": 2, "obd_samples": 1, "events": 1, "vehicles": 1} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s: %d rows after a refused commit, want %d", table, n, want)
		}
	}
	res, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{good, good2}})
	if err != nil || res.Inserted != 4 {
		t.Fatalf("commit after a refused one: inserted %d, %v; want 4 (rows of the refused commit left in staging?)", res.Inserted, err)
	}
	for table, want := range map[string]int{"positions": 4, "obd_samples": 2, "events": 2} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
}

// TestCommitManyBatchesOneTransaction: the batches of many vehicles go in one
// transaction (one xmin), each record once, replays within it skipped.
func TestCommitManyBatchesOneTransaction(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	var batches []*telemetry.Batch
	for v := range 50 {
		b := sampleBatch(fmt.Sprintf("veh-%02d", v), uint64(v+1))
		batches = append(batches, b, b) // each twice: a replay in the same micro-batch
	}
	res, err := db.Commit(ctx, &cloud.Commit{Batches: batches})
	if err != nil || res.Inserted != 200 {
		t.Fatalf("inserted %d, %v; want 200", res.Inserted, err)
	}
	c := sql(t, u)
	if n := count(t, c, "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM positions UNION ALL SELECT xmin FROM obd_samples UNION ALL SELECT xmin FROM events) x"); n != 1 {
		t.Errorf("rows written by %d transactions, want 1", n)
	}
	for table, want := range map[string]int{"positions": 100, "obd_samples": 50, "events": 50, "vehicles": 50} {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
}
