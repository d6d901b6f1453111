package redis_test

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// listen runs s.Listen until the test ends and returns what it received.
func listen(t *testing.T, s *redis.LiveState) func() []cloud.LiveUpdate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []cloud.LiveUpdate
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, func() { close(ready) }, func(u cloud.LiveUpdate) {
			mu.Lock()
			got = append(got, u)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Listen: %v", err)
	}
	return func() []cloud.LiveUpdate {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// Positions, statuses and events reach a listener in order with increasing
// ids, and can be replayed after any of those ids.
func TestLiveFeed(t *testing.T) {
	s, _, _ := open(t)
	ctx := context.Background()
	received := listen(t, s)
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("veh-1", 10, now, 43.7384166, ptr(13.891))}); err != nil {
		t.Fatal(err)
	}
	status := &cloud.DeviceStatus{VehicleID: "veh-1", Online: true, Time: now, OutboxDepth: 3, Counters: map[string]uint64{"gps.bad_checksum": 2}, ReceivedAt: now}
	event := &cloud.Event{VehicleID: "veh-1", StreamID: 9, Seq: 11, Time: now, Type: telemetry.EventDTCSet, Code: "P0301"}
	if err := s.Announce(ctx, []cloud.LiveUpdate{
		{Kind: cloud.LiveStatus, VehicleID: "veh-1", Status: status},
		{Kind: cloud.LiveEvent, VehicleID: "veh-1", Event: event},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(ctx, []cloud.LiveUpdate{{Kind: cloud.LiveEvent, VehicleID: "veh-1"}}); err == nil {
		t.Error("an event update without an event was announced")
	}
	var got []cloud.LiveUpdate
	testenv.Eventually(t, 10*time.Second, "three live updates", func() error {
		got = received()
		return testenv.True(len(got) == 3)
	})
	kinds := []cloud.LiveKind{got[0].Kind, got[1].Kind, got[2].Kind}
	if !slices.Equal(kinds, []cloud.LiveKind{cloud.LivePosition, cloud.LiveStatus, cloud.LiveEvent}) ||
		!sort.SliceIsSorted(got, func(i, j int) bool { return cloud.CompareLiveIDs(got[i].ID, got[j].ID) < 0 }) {
		t.Fatalf("updates %+v", got)
	}
	if p := got[0].Position; p == nil || p.Seq != 10 || *p.SpeedMPS != 13.891 || !p.Time.Equal(now) {
		t.Errorf("position %+v", p)
	}
	if d := got[1].Status; d == nil || d.OutboxDepth != 3 || d.Counters["gps.bad_checksum"] != 2 || !d.Time.Equal(now) {
		t.Errorf("status %+v", d)
	}
	if e := got[2].Event; e == nil || e.Code != "P0301" || e.Type != telemetry.EventDTCSet || e.Seq != 11 {
		t.Errorf("event %+v", e)
	}
	replayed, complete, err := s.Replay(ctx, got[0].ID)
	if err != nil || !complete || len(replayed) != 2 || replayed[0].ID != got[1].ID || replayed[1].Event.Code != "P0301" {
		t.Errorf("Replay after the first = %+v, %v, %v", replayed, complete, err)
	}
	if _, _, err := s.Replay(ctx, "yesterday"); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("Replay of a bad id: %v", err)
	}
}

// Replay after an id the buffer no longer holds says that updates were
// missed.
func TestReplayAfterTheBuffer(t *testing.T) {
	s, _, _ := open(t)
	s.Buffer = 1 // MAXLEN ~ 1 trims whole nodes only: write enough to drop some
	ctx := context.Background()
	for i := range 300 {
		if err := s.UpdateLatest(ctx, []cloud.VehicleState{state("veh-1", uint64(i+1), now.Add(time.Duration(i)*time.Second), 43.7, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, complete, err := s.Replay(ctx, "1-0"); err != nil || complete {
		t.Errorf("Replay after 1-0: complete %v, %v; want incomplete", complete, err)
	}
}

func TestLatestStatesAndGeo(t *testing.T) {
	s, _, _ := open(t)
	ctx := context.Background()
	mk := func(id string, lat, lon float64) cloud.VehicleState {
		st := state(id, 1, now, lat, nil)
		st.Position.Lon = lon
		return st
	}
	if err := s.UpdateLatest(ctx, []cloud.VehicleState{
		mk("monaco", 43.7384166, 7.4246333), mk("nice", 43.7101728, 7.2619532), mk("fiji", -17.8, 179.9), mk("samoa", -13.8, -171.7),
	}); err != nil {
		t.Fatal(err)
	}
	states, err := s.LatestStates(ctx, []string{"monaco", "nobody", "fiji"})
	if err != nil || len(states) != 2 || states["monaco"].Position.Lat != 43.7384166 || states["fiji"].Position.Lon != 179.9 {
		t.Errorf("LatestStates = %v, %v", states, err)
	}
	near, err := s.Nearby(ctx, cloud.Circle{Lat: 43.7384, Lon: 7.4246, RadiusM: 20000})
	if err != nil || len(near) != 2 || near["monaco"] > 50 || near["nice"] < 13000 || near["nice"] > 14000 {
		t.Errorf("Nearby = %v, %v", near, err)
	}
	for _, tt := range []struct {
		b    cloud.BBox
		want []string
	}{
		{cloud.BBox{MinLon: 7.4, MinLat: 43.7, MaxLon: 7.5, MaxLat: 43.8}, []string{"monaco"}},
		{cloud.BBox{MinLon: 7, MinLat: 43, MaxLon: 8, MaxLat: 44}, []string{"monaco", "nice"}},
		{cloud.BBox{MinLon: 179, MinLat: -20, MaxLon: -171, MaxLat: -10}, []string{"fiji", "samoa"}},
		{cloud.BBox{MinLon: 0, MinLat: 0, MaxLon: 1, MaxLat: 1}, nil},
	} {
		got, err := s.InBox(ctx, tt.b)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("InBox(%+v) = %v, %v; want %v", tt.b, got, err, tt.want)
		}
	}
}

func TestLiveSlots(t *testing.T) {
	s, _, _ := open(t)
	s.SlotLease = 500 * time.Millisecond
	ctx := context.Background()
	take := func(id string) bool {
		ok, err := s.AcquireSlot(ctx, "tok", id, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a") || !take("b") || take("c") {
		t.Fatal("want two slots and no third")
	}
	if !take("a") {
		t.Error("renewing a held slot was refused")
	}
	if ok, _ := s.AcquireSlot(ctx, "other", "c", 2); !ok {
		t.Error("another token's slot was refused")
	}
	if err := s.ReleaseSlot(ctx, "tok", "b"); err != nil {
		t.Fatal(err)
	}
	if !take("c") {
		t.Error("a released slot was not free")
	}
	// Slots that are not renewed lapse (a replica that died).
	testenv.Eventually(t, 10*time.Second, "lapsed slots", func() error { return testenv.True(take("d")) })
}
