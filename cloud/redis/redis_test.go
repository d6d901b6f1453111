package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func open(t *testing.T) (*redis.LiveState, *goredis.Client, string) {
	t.Helper()
	u, prefix := testenv.Redis(t)
	s := redis.NewLiveState(u, prefix)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return s, c, prefix
}

func ptr(f float64) *float64 { return &f }

func state(vehicle string, seq uint64, at time.Time, lat float64, speed *float64) cloud.VehicleState {
	return cloud.VehicleState{VehicleID: vehicle, UpdatedAt: now, Position: cloud.Position{
		VehicleID: vehicle, StreamID: 0xfedcba9876543210, Seq: seq, Time: at, Lat: lat, Lon: 7.4246333, SpeedMPS: speed, CourseDeg: ptr(45.2),
	}}
}

func TestLatestMovesForwardOnly(t *testing.T) {
	s, c, prefix := open(t)
	ctx := context.Background()
	sub := c.Subscribe(ctx, s.Channel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}

	steps := []struct {
		name      string
		state     cloud.VehicleState
		wantSeq   uint64
		published bool
	}{
		{"first", state("veh-1", 10, now, 43.7384166, ptr(13.891)), 10, true},
		{"older (late history)", state("veh-1", 5, now.Add(-time.Hour), 43.0, ptr(1)), 10, false},
		{"same time (replay)", state("veh-1", 10, now, 43.7384166, ptr(13.891)), 10, false},
		{"newer, speed unknown", state("veh-1", 11, now.Add(time.Second), 43.7385, nil), 11, true},
	}
	for _, st := range steps {
		if err := s.UpdateLatest(ctx, []cloud.VehicleState{st.state}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.Latest(ctx, "veh-1")
		if err != nil {
			t.Fatalf("%s: Latest: %v", st.name, err)
		}
		if got.Position.Seq != st.wantSeq {
			t.Errorf("%s: latest seq %d, want %d", st.name, got.Position.Seq, st.wantSeq)
		}
		if st.published {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			id, data, _ := strings.Cut(msg.Payload, " ")
			var u redis.Update
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				t.Fatal(err)
			}
			if !cloud.ValidLiveID(id) || u.Kind != cloud.LivePosition || u.VehicleID != "veh-1" || u.Seq != st.wantSeq || u.StreamID != "fedcba9876543210" {
				t.Errorf("%s: published %s", st.name, msg.Payload)
			}
		}
	}
	got, _ := s.Latest(ctx, "veh-1")
	want := state("veh-1", 11, now.Add(time.Second), 43.7385, nil)
	if !got.Position.Time.Equal(want.Position.Time) || got.Position.Lat != 43.7385 || got.Position.Lon != 7.4246333 ||
		got.Position.SpeedMPS != nil || *got.Position.CourseDeg != 45.2 || got.Position.StreamID != 0xfedcba9876543210 || !got.UpdatedAt.Equal(now) {
		t.Errorf("final state %+v (speed %v)", got.Position, got.Position.SpeedMPS)
	}
	// Only the two accepted updates were published: a probe published now is
	// the next message.
	if err := c.Publish(ctx, s.Channel(), "probe").Err(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.ReceiveMessage(ctx); err != nil || msg.Payload != "probe" {
		t.Errorf("after the updates: %v %v, want the probe (a refused update was published?)", msg, err)
	}

	pos, err := c.GeoPos(ctx, s.GeoKey(), "veh-1").Result()
	if err != nil || len(pos) != 1 || pos[0] == nil || pos[0].Latitude < 43.738 || pos[0].Latitude > 43.739 {
		t.Errorf("GEO position %v, %v", pos, err)
	}

	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	slices.Sort(keys)
	if want := []string{prefix + "fleet", prefix + "fleet:filled", prefix + "geo", prefix + "live:buffer", prefix + "vehicle:veh-1"}; !slices.Equal(keys, want) {
		t.Errorf("keys under the prefix %v, want %v", keys, want)
	}
	for _, k := range []string{s.GeoKey(), s.VehicleKey("x"), s.FleetKey(), s.Channel()} {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("%s not under the prefix %s", k, prefix)
		}
	}
}

func TestManyVehiclesAndPolarFix(t *testing.T) {
	s, c, _ := open(t)
	ctx := context.Background()
	states := []cloud.VehicleState{
		state("a", 1, now, 10, nil), state("b", 1, now, -20, nil), state("polar", 1, now, 89.9, nil),
	}
	if err := s.UpdateLatest(ctx, states); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "polar"} {
		if _, err := s.Latest(ctx, id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	n, err := c.ZCard(ctx, s.GeoKey()).Result()
	if err != nil || n != 2 {
		t.Errorf("GEO index has %d members (%v), want 2: a polar fix cannot be indexed", n, err)
	}
	if _, err := s.Latest(ctx, "nobody"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("Latest of an unknown vehicle: %v", err)
	}
}

// privateRedis starts a throwaway redis-server on a free port (its script
// cache is flushed below, which must not touch the shared server's).
func privateRedis(t *testing.T) string {
	t.Helper()
	port := testenv.FreePort(t)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer c.Close()
	testenv.Eventually(t, 30*time.Second, "the private redis-server answering", func() error {
		return c.Ping(context.Background()).Err()
	})
	return u
}

func TestScriptReloadedAfterFlush(t *testing.T) {
	u := privateRedis(t)
	s := redis.NewLiveState(u, "p:")
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt, _ := goredis.ParseURL(u)
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("v", 1, now, 1, nil)}); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("v", 2, now.Add(time.Second), 1, nil)}); err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}
	if got, err := s.Latest(ctx, "v"); err != nil || got.Position.Seq != 2 {
		t.Errorf("Latest = %+v, %v", got, err)
	}
}

func TestUnreachable(t *testing.T) {
	s := redis.NewLiveState("redis://127.0.0.1:1/0", "x:")
	if err := s.Open(context.Background()); cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
		t.Errorf("Open: %v", err)
	}
	if err := redis.NewLiveState("http://nope", "x:").Open(context.Background()); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("Open with a bad URL: %v", err)
	}
}

// TestClockLimitUnpinsAFutureState: a stored state stamped after a new
// state's clock limit gives way to it although it is "newer".
func TestClockLimitUnpinsAFutureState(t *testing.T) {
	s, _, _ := open(t)
	ctx := context.Background()
	future := state("veh-1", 1, now.Add(20*time.Hour), 43.7, nil)
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{future}); err != nil {
		t.Fatal(err)
	}
	sane := state("veh-1", 2, now, 43.8, nil)
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{sane}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Latest(ctx, "veh-1"); st.Position.Seq != 1 {
		t.Fatalf("without a limit the newer time wins: seq %d", st.Position.Seq)
	}
	sane.ClockLimit = now.Add(5 * time.Minute)
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{sane}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Latest(ctx, "veh-1"); st.Position.Seq != 2 {
		t.Errorf("with the limit: seq %d, want 2", st.Position.Seq)
	}
	older := state("veh-1", 3, now.Add(-time.Minute), 43.9, nil)
	older.ClockLimit = now.Add(5 * time.Minute)
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{older}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Latest(ctx, "veh-1"); st.Position.Seq != 2 {
		t.Errorf("an older sane state moved the vehicle back: seq %d", st.Position.Seq)
	}
}

// LatestStates reads the states UpdateLatest wrote to the fleet's hash, the
// newest of each vehicle.
func TestLatestStatesFromTheFleetHash(t *testing.T) {
	s, c, _ := open(t)
	ctx := context.Background()
	states := []cloud.VehicleState{state("a", 1, now, 10, ptr(3.5)), state("b", 1, now, -20, nil)}
	if err := s.UpdateLatest(ctx, states); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("a", 2, now.Add(time.Second), 11, nil), state("b", 0, now.Add(-time.Second), 0, nil)}); err != nil {
		t.Fatal(err)
	}
	packed, err := c.HGetAll(ctx, s.FleetKey()).Result()
	if err != nil || len(packed) != 2 || !strings.HasPrefix(packed["a"], strconv.FormatInt(now.Add(time.Second).UnixMilli(), 10)+",fedcba9876543210,2,11,") {
		t.Fatalf("fleet hash %v, %v", packed, err)
	}
	got, err := s.LatestStates(ctx, []string{"a", "b", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := got["a"], got["b"]
	if len(got) != 2 || a == nil || b == nil {
		t.Fatalf("states %v", got)
	}
	if a.Position.Seq != 2 || a.Position.Lat != 11 || a.Position.SpeedMPS != nil || *a.Position.CourseDeg != 45.2 || !a.Position.Time.Equal(now.Add(time.Second)) {
		t.Errorf("a: %+v", a.Position)
	}
	if b.Position.Seq != 1 || b.Position.Lat != -20 || !b.UpdatedAt.Equal(now) || b.Position.StreamID != 0xfedcba9876543210 {
		t.Errorf("b: %+v", b)
	}
	// A field of the fleet's hash that does not unpack is an error, not a
	// made-up state.
	if err := c.HSet(ctx, s.FleetKey(), "a", "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestStates(ctx, []string{"a"}); cloud.ErrorCode(err) != cloud.EINTERNAL {
		t.Errorf("a bad packed state: %v, want EINTERNAL", err)
	}
}

// Open copies into the fleet's hash the states only the vehicles' own
// hashes hold (written before it existed), once; until it could, the lists
// read those hashes, and a state that does not parse is an error.
func TestFleetHashFilledAtOpen(t *testing.T) {
	u, prefix := testenv.Redis(t)
	ctx := context.Background()
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	stored := func(id string, lat string) {
		if err := c.HSet(ctx, prefix+"vehicle:"+id, "time_ms", now.UnixMilli(), "time", "2026-11-27T12:00:00.000Z", "stream_id", "00000000000000ff",
			"seq", 7, "lat", lat, "lon", "2.5", "updated_at", "2026-11-27T12:00:00.000Z").Err(); err != nil {
			t.Fatal(err)
		}
	}
	stored("old", "1.5")
	stored("bad", "north")
	open := func() *redis.LiveState {
		s := redis.NewLiveState(u, prefix)
		if err := s.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	if _, err := s.LatestStates(ctx, []string{"old", "bad"}); cloud.ErrorCode(err) != cloud.EINTERNAL {
		t.Errorf("a state that does not parse: %v, want EINTERNAL", err)
	}
	if n, _ := c.Exists(ctx, prefix+"fleet:filled").Result(); n != 0 {
		t.Error("the fleet's hash is marked filled without bad's state")
	}
	if err := c.Del(ctx, prefix+"vehicle:bad").Err(); err != nil {
		t.Fatal(err)
	}
	s = open()
	packed, _ := c.HGet(ctx, s.FleetKey(), "old").Result()
	if n, _ := c.Exists(ctx, prefix+"fleet:filled").Result(); n != 1 || !strings.HasPrefix(packed, strconv.FormatInt(now.UnixMilli(), 10)+",ff,7,1.5,2.5,") {
		t.Errorf("after a good Open: filled %d, old packed %q", n, packed)
	}
	got, err := s.LatestStates(ctx, []string{"old", "nobody"})
	if old := got["old"]; err != nil || len(got) != 1 || old.Position.Seq != 7 || old.Position.Lat != 1.5 || old.Position.StreamID != 0xff {
		t.Errorf("LatestStates = %v, %v", got, err)
	}
	// A newer state the script wrote is not replaced by a later fill.
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("old", 8, now.Add(time.Second), 3, nil)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, prefix+"fleet:filled").Err(); err != nil {
		t.Fatal(err)
	}
	s = open()
	if got, err := s.LatestStates(ctx, []string{"old"}); err != nil || got["old"].Position.Seq != 8 {
		t.Errorf("after another fill: %v, %v", got, err)
	}
}
