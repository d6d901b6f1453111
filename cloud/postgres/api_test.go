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

func TestTokens(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	secret := cloud.NewTokenSecret()
	tok := &cloud.Token{Name: "ops", Role: cloud.RoleOperator, Hash: cloud.HashToken(secret), ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateToken(ctx, tok); err != nil || tok.ID == 0 {
		t.Fatalf("CreateToken: %v (id %d)", err, tok.ID)
	}
	again := &cloud.Token{Name: "ops", Role: cloud.RoleViewer, Hash: cloud.HashToken(cloud.NewTokenSecret())}
	if err := db.CreateToken(ctx, again); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("a second token named ops: %v, want ECONFLICT", err)
	}
	if err := db.CreateToken(ctx, &cloud.Token{Name: "bad name", Role: cloud.RoleViewer}); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("a bad name: %v, want EINVALID", err)
	}
	got, err := db.FindTokenByHash(ctx, cloud.HashToken(secret))
	if err != nil || got.Name != "ops" || got.Role != cloud.RoleOperator || !got.ExpiresAt.Equal(now.Add(time.Hour)) || !got.LastUsed.IsZero() {
		t.Fatalf("FindTokenByHash = %+v, %v", got, err)
	}
	if _, err := db.FindTokenByHash(ctx, cloud.HashToken(cloud.NewTokenSecret())); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("an unknown secret: %v", err)
	}
	for _, at := range []time.Time{now, now.Add(30 * time.Second), now.Add(2 * time.Minute)} {
		if err := db.TouchToken(ctx, tok.ID, at); err != nil {
			t.Fatal(err)
		}
	}
	// Uses less than a minute apart are recorded once.
	if got, _ := db.FindTokenByHash(ctx, cloud.HashToken(secret)); !got.LastUsed.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("last used %v, want %v", got.LastUsed, now.Add(2*time.Minute))
	}
	if err := db.RevokeToken(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindTokenByHash(ctx, cloud.HashToken(secret)); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("a revoked token is found: %v", err)
	}
	if err := db.RevokeToken(ctx, "ops"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("revoking twice: %v", err)
	}
	// The name is free again once revoked.
	if err := db.CreateToken(ctx, again); err != nil {
		t.Fatal(err)
	}
	if ts, err := db.FindTokens(ctx); err != nil || len(ts) != 1 || ts[0].Name != "ops" || ts[0].Role != cloud.RoleViewer {
		t.Errorf("FindTokens = %v, %v", ts, err)
	}
}

// A vehicle that has only sent statuses is listed and can be sent commands;
// a retained status handed again later does not make it look seen now.
func TestStatusOnlyVehicle(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	st := cloud.DeviceStatus{VehicleID: "quiet", Online: true, Time: now.Add(-time.Hour), ReceivedAt: now}
	res, err := db.Commit(ctx, &cloud.Commit{Statuses: []cloud.DeviceStatus{st}, ReceivedAt: now})
	if err != nil || !slices.Equal(res.AppliedStatuses, []int{0}) {
		t.Fatalf("Commit = %+v, %v", res, err)
	}
	// The same status again (another replica, a restart) changes nothing.
	st.ReceivedAt = now.Add(time.Hour)
	if res, err := db.Commit(ctx, &cloud.Commit{Statuses: []cloud.DeviceStatus{st}, ReceivedAt: now.Add(time.Hour)}); err != nil || len(res.AppliedStatuses) != 0 {
		t.Fatalf("Commit again = %+v, %v", res, err)
	}
	v, err := db.FindVehicleByID(ctx, "quiet")
	if err != nil || v.Device == nil || !v.Device.Online || v.Position != nil || !v.LastSeen.Equal(now.Add(-time.Hour)) {
		t.Fatalf("FindVehicleByID = %+v, %v", v, err)
	}
	if vs, _, err := db.FindVehicles(ctx, cloud.VehicleFilter{Limit: 10}); err != nil || len(vs) != 1 || vs[0].ID != "quiet" {
		t.Errorf("FindVehicles = %v, %v", vs, err)
	}
	c := &cloud.Command{ID: "c1", VehicleID: "quiet", Type: cloud.CommandReportStatus, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, created, err := db.CreateCommand(ctx, c); err != nil || !created {
		t.Errorf("CreateCommand for a status-only vehicle: %v", err)
	}
}

func TestVehicleFilters(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	at := func(id string, latE7, lonE7 int32) *telemetry.Batch {
		return &telemetry.Batch{VehicleID: id, StreamID: 1, Positions: []telemetry.Position{{Seq: 1, UnixMs: now.UnixMilli(), LatE7: latE7, LonE7: lonE7}}}
	}
	batches := []*telemetry.Batch{
		at("monaco", 437384166, 74246333),  // Monte Carlo
		at("nice", 437101728, 72619532),    // about 13.4 km west
		at("fiji", -178000000, 1799000000), // east of the antimeridian
		at("samoa", -138000000, -1717000000),
	}
	statuses := []cloud.DeviceStatus{{VehicleID: "monaco", Online: true, Time: now, ReceivedAt: now}, {VehicleID: "nice", Online: false, Time: now, ReceivedAt: now}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: batches, Statuses: statuses, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	tests := []struct {
		name string
		f    cloud.VehicleFilter
		want []string
	}{
		{"all", cloud.VehicleFilter{}, []string{"fiji", "monaco", "nice", "samoa"}},
		{"after", cloud.VehicleFilter{After: "monaco"}, []string{"nice", "samoa"}},
		{"online", cloud.VehicleFilter{Online: &yes}, []string{"monaco"}},
		{"offline (or no status)", cloud.VehicleFilter{Online: &no}, []string{"fiji", "nice", "samoa"}},
		{"bbox Monaco", cloud.VehicleFilter{BBox: &cloud.BBox{MinLon: 7.4, MinLat: 43.7, MaxLon: 7.5, MaxLat: 43.8}}, []string{"monaco"}},
		{"bbox across the antimeridian", cloud.VehicleFilter{BBox: &cloud.BBox{MinLon: 179, MinLat: -20, MaxLon: -171, MaxLat: -10}}, []string{"fiji", "samoa"}},
		{"near Monaco 5 km", cloud.VehicleFilter{Near: &cloud.Circle{Lat: 43.7384, Lon: 7.4246, RadiusM: 5000}}, []string{"monaco"}},
		{"near Monaco 20 km", cloud.VehicleFilter{Near: &cloud.Circle{Lat: 43.7384, Lon: 7.4246, RadiusM: 20000}}, []string{"monaco", "nice"}},
		{"ids", cloud.VehicleFilter{IDs: []string{"nice", "fiji", "nobody"}}, []string{"fiji", "nice"}},
	}
	for _, tt := range tests {
		tt.f.Limit = 10
		vs, more, err := db.FindVehicles(ctx, tt.f)
		var got []string
		for _, v := range vs {
			got = append(got, v.ID)
		}
		if err != nil || more || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v (more %v), %v; want %v", tt.name, got, more, err, tt.want)
		}
	}
	near := &cloud.Circle{Lat: 43.7384, Lon: 7.4246, RadiusM: 20000}
	vs, more, err := db.FindVehicles(ctx, cloud.VehicleFilter{Limit: 1, Near: near})
	if err != nil || !more || len(vs) != 1 || vs[0].ID != "monaco" {
		t.Fatalf("a page of 1 near Monaco: %+v, more %v, %v", vs, more, err)
	}
	vs, more, err = db.FindVehicles(ctx, cloud.VehicleFilter{Limit: 1, Near: near, After: "monaco"})
	if err != nil || more || len(vs) != 1 || vs[0].DistanceM == nil || *vs[0].DistanceM < 13000 || *vs[0].DistanceM > 14000 {
		t.Errorf("the next page: %+v, more %v, %v; want nice about 13.4 km away", vs, more, err)
	}
}

func TestEventsAndTroubleCodes(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	ev := func(seq uint64, s int, typ telemetry.EventType, code string) telemetry.Event {
		return telemetry.Event{Seq: seq, UnixMs: now.Add(time.Duration(s) * time.Second).UnixMilli(), Type: typ, Code: code}
	}
	b := &telemetry.Batch{VehicleID: "veh-1", StreamID: 7, Events: []telemetry.Event{
		ev(1, 0, telemetry.EventIgnitionOn, ""),
		ev(2, 1, telemetry.EventDTCSet, "P0301"),
		ev(3, 2, telemetry.EventDTCSet, "P0420"),
		ev(4, 3, telemetry.EventDTCCleared, "P0301"),
		ev(5, 4, telemetry.EventDTCSet, "C0035"),
	}}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	codes, err := db.FindTroubleCodes(ctx, "veh-1")
	want := []cloud.TroubleCode{{Code: "C0035", Since: now.Add(4 * time.Second)}, {Code: "P0420", Since: now.Add(2 * time.Second)}}
	if err != nil || !slices.Equal(codes, want) {
		t.Errorf("FindTroubleCodes = %v, %v; want %v", codes, err, want)
	}
	if _, err := db.FindTroubleCodes(ctx, "nobody"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("trouble codes of nobody: %v", err)
	}
	f := cloud.EventFilter{VehicleID: "veh-1", From: now.Add(-time.Hour), To: now.Add(time.Hour), Limit: 2,
		Types: []telemetry.EventType{telemetry.EventDTCSet, telemetry.EventDTCCleared}}
	var seqs []uint64
	for range 5 {
		es, next, err := db.FindEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if next == nil {
			break
		}
		f.After = next
	}
	if !slices.Equal(seqs, []uint64{2, 3, 4, 5}) {
		t.Errorf("set and cleared events over the pages: %v", seqs)
	}
}

func TestCommandsListCancelIdempotencyRetry(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{sampleBatch("veh-1", 1)}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	mk := func(id string, s int, key string) *cloud.Command {
		return &cloud.Command{ID: id, VehicleID: "veh-1", Type: cloud.CommandReadDTCs, CreatedAt: now.Add(time.Duration(s) * time.Second),
			ExpiresAt: now.Add(time.Hour), IdempotencyKey: key, RequestHash: "h-" + id, Token: "ops"}
	}
	for i, id := range []string{"a", "b", "c"} {
		if _, created, err := db.CreateCommand(ctx, mk(id, i, "key-"+id)); err != nil || !created {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	prev, created, err := db.CreateCommand(ctx, mk("d", 10, "key-b"))
	if err != nil || created || prev.ID != "b" || prev.RequestHash != "h-b" || prev.Token != "ops" {
		t.Fatalf("create with a used key = %+v, %v, %v; want command b", prev, created, err)
	}
	// Newest first, page by page.
	var ids []string
	f := cloud.CommandFilter{VehicleID: "veh-1", Limit: 2}
	for range 3 {
		cs, next, err := db.FindCommands(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		if next == nil {
			break
		}
		f.After = next
	}
	if !slices.Equal(ids, []string{"c", "b", "a"}) {
		t.Errorf("commands over the pages: %v", ids)
	}
	if err := db.MarkSent(ctx, "veh-1", "a", now); err != nil {
		t.Fatal(err)
	}
	if c, err := db.CancelCommand(ctx, "veh-1", "b", now); err != nil || c.Status(now) != "cancelled" {
		t.Errorf("cancel pending b: %+v, %v", c, err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := db.CancelCommand(ctx, "veh-1", id, now); cloud.ErrorCode(err) != cloud.ECONFLICT {
			t.Errorf("cancel %s (sent or cancelled): %v, want ECONFLICT", id, err)
		}
	}
	// A cancelled command is not marked sent by a publish that raced it.
	if err := db.MarkSent(ctx, "veh-1", "b", now); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.FindCommand(ctx, "veh-1", "b"); c.Status(now) != "cancelled" {
		t.Errorf("b after MarkSent: %s", c.Status(now))
	}
	// Only c is pending; a claim takes it once until retryAfter passed.
	claimed, err := db.ClaimPending(ctx, now.Add(time.Minute), now.Add(time.Minute), 10*time.Second, 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "c" {
		t.Fatalf("ClaimPending = %v, %v", claimed, err)
	}
	if again, _ := db.ClaimPending(ctx, now.Add(time.Minute+time.Second), now.Add(time.Minute), 10*time.Second, 10); len(again) != 0 {
		t.Errorf("claimed again at once: %v", again)
	}
	if later, _ := db.ClaimPending(ctx, now.Add(2*time.Minute), now.Add(time.Minute), 10*time.Second, 10); len(later) != 1 {
		t.Errorf("not claimed again after retryAfter: %v", later)
	}
	// Expired pending commands are not retried.
	if late, _ := db.ClaimPending(ctx, now.Add(2*time.Hour), now.Add(2*time.Hour), 10*time.Second, 10); len(late) != 0 {
		t.Errorf("expired commands claimed: %v", late)
	}
}

func TestDeadLetterPages(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	var dls []cloud.DeadLetter
	for i := range 5 {
		dls = append(dls, cloud.DeadLetter{Topic: "fleet/v1/veh-1/up/batch", VehicleID: "veh-1", Payload: make([]byte, i),
			Reason: []string{"decode: bad", "invalid: lat"}[i%2], ReceivedAt: now.Add(time.Duration(i) * time.Second)})
	}
	if _, err := db.Commit(ctx, &cloud.Commit{DeadLetters: dls, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	f := cloud.DeadLetterFilter{Limit: 2, Reason: "decode"}
	for range 5 {
		ds, next, err := db.FindDeadLetters(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			sizes = append(sizes, d.PayloadBytes)
		}
		if next == nil {
			break
		}
		f.After = next
	}
	if !slices.Equal(sizes, []int{4, 2, 0}) {
		t.Errorf("decode dead letters newest first by payload size: %v", sizes)
	}
}

func TestEachPositionAndStatementTimeout(t *testing.T) {
	db, u := openDB(t)
	ctx := context.Background()
	b := sampleBatch("veh-1", 1)
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{b}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	err := db.EachPosition(ctx, cloud.PositionFilter{VehicleID: "veh-1", From: now.Add(-time.Hour), To: now}, func(p *cloud.Position) error {
		seqs = append(seqs, p.Seq)
		return nil
	})
	if err != nil || !slices.Equal(seqs, []uint64{1, 2}) {
		t.Errorf("EachPosition: %v, %v", seqs, err)
	}
	if err := db.EachPosition(ctx, cloud.PositionFilter{VehicleID: "nobody", From: now.Add(-time.Hour), To: now}, nil); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("EachPosition of nobody: %v", err)
	}

	short := postgresNewDB(t, u, 50*time.Millisecond)
	c := sql(t, u)
	// A query of the API that runs longer than the statement timeout is
	// cancelled by the database and said so.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE vehicles IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := short.FindVehicleByID(ctx, "veh-1"); cloud.ErrorCode(err) != cloud.ETIMEOUT {
		t.Errorf("a query stuck behind a lock: %v, want ETIMEOUT", err)
	}
}

// postgresNewDB opens another DB on the migrated database u with the given
// statement timeout.
func postgresNewDB(t *testing.T, u string, timeout time.Duration) *postgres.DB {
	t.Helper()
	db := postgres.NewDB(u)
	db.Now = func() time.Time { return now }
	db.StatementTimeout = timeout
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
