package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// A cached list is served for less than its TTL from when its query
// started, never after, never with a TTL of 0, and a clock that steps back
// does not make it young again.
func TestListCacheExpiry(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := t0
	c := &listCache{now: func() time.Time { return clock }}
	l := renderList(nil, false)
	k := listKey{limit: 10000}
	c.put(k, l, t0, time.Second)
	for _, step := range []struct {
		at   time.Duration
		ttl  time.Duration
		want bool
	}{
		{0, time.Second, true},
		{999 * time.Millisecond, time.Second, true},
		{time.Second, time.Second, false},
		{time.Hour, time.Second, false},
		{0, 0, false},
		{-time.Millisecond, time.Second, false},
	} {
		clock = t0.Add(step.at)
		if l, _ := c.get(k, step.ttl); (l != nil) != step.want {
			t.Errorf("at +%s, TTL %s: cached %v, want %v", step.at, step.ttl, l != nil, step.want)
		}
	}
	clock = t0
	if l, _ := c.get(listKey{limit: 50}, time.Second); l != nil {
		t.Error("another list's key was served the list")
	}
	if l, _ := c.get(listKey{online: "true", limit: 10000}, time.Second); l != nil {
		t.Error("another list's key was served the list")
	}
	// A TTL of 0 keeps nothing.
	c0 := &listCache{now: func() time.Time { return clock }}
	c0.put(k, l, t0, 0)
	if l, _ := c0.get(k, time.Hour); l != nil {
		t.Error("a list put with a TTL of 0 was kept")
	}
}

// In the second half of its TTL a list is still served, and one caller a
// TTL is told to read it again; the list read then replaces it, an older
// one does not.
func TestListCacheRefresh(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := t0
	c := &listCache{now: func() time.Time { return clock }}
	first, second := renderList(nil, false), renderList(nil, true)
	k := listKey{limit: 10000}
	c.put(k, first, t0, time.Second)
	for _, step := range []struct {
		at      time.Duration
		want    *renderedList
		refresh bool
	}{
		{400 * time.Millisecond, first, false},
		{500 * time.Millisecond, first, true},
		{600 * time.Millisecond, first, false}, // already asked
		{999 * time.Millisecond, first, false},
		{time.Second, nil, false}, // expired, refreshed or not
	} {
		clock = t0.Add(step.at)
		if l, refresh := c.get(k, time.Second); l != step.want || refresh != step.refresh {
			t.Errorf("at +%s: %p %v, want %p %v", step.at, l, refresh, step.want, step.refresh)
		}
	}
	// The list read again from +500ms serves until +1.5s.
	clock = t0.Add(1100 * time.Millisecond)
	c.put(k, second, t0.Add(500*time.Millisecond), time.Second)
	c.put(k, first, t0.Add(400*time.Millisecond), time.Second) // a slower, older read
	if l, refresh := c.get(k, time.Second); l != second || !refresh {
		t.Errorf("after the refresh: %p %v, want the new list, to be read again", l, refresh)
	}
	clock = t0.Add(1500 * time.Millisecond)
	if l, _ := c.get(k, time.Second); l != nil {
		t.Error("the refreshed list was served past its TTL")
	}
}

// The cache holds at most maxCachedLists lists; expired ones make room.
func TestListCacheBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := t0
	c := &listCache{now: func() time.Time { return clock }}
	l := renderList(nil, false)
	for i := range maxCachedLists + 10 {
		c.put(listKey{after: fmt.Sprint(i), limit: 1}, l, t0, time.Second)
	}
	if n := len(c.lists); n != maxCachedLists {
		t.Errorf("%d lists kept, want %d", n, maxCachedLists)
	}
	clock = t0.Add(2 * time.Second)
	c.put(listKey{after: "new", limit: 1}, l, clock, time.Second)
	if l, _ := c.get(listKey{after: "new", limit: 1}, time.Second); len(c.lists) != 1 || l == nil {
		t.Errorf("after expiry: %d lists kept, want only the new one", len(c.lists))
	}
}

// Lists filtered by the GEO index's ids are not cached; the others are,
// by their filter and page.
func TestCacheKey(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		f    cloud.VehicleFilter
		key  listKey
		want bool
	}{
		{cloud.VehicleFilter{Limit: 10000}, listKey{limit: 10000}, true},
		{cloud.VehicleFilter{Online: &yes, After: "veh-1", Limit: 5}, listKey{online: "true", after: "veh-1", limit: 5}, true},
		{cloud.VehicleFilter{Online: &no, Limit: 5}, listKey{online: "false", limit: 5}, true},
		{cloud.VehicleFilter{IDs: []string{}, Limit: 5}, listKey{}, false},
		{cloud.VehicleFilter{Near: &cloud.Circle{RadiusM: 1}, Limit: 5}, listKey{}, false},
		{cloud.VehicleFilter{BBox: &cloud.BBox{}, Limit: 5}, listKey{}, false},
	} {
		if key, ok := cacheKey(&tc.f); key != tc.key || ok != tc.want {
			t.Errorf("%+v: %+v %v, want %+v %v", tc.f, key, ok, tc.key, tc.want)
		}
	}
}

// A rendered list's parts around a position are what appendVehicle writes.
func TestRenderedListParts(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	speed := 3.5
	vs := []*cloud.Vehicle{
		{ID: "a", FirstSeen: at, LastSeen: at, Position: &cloud.Position{Time: at, Lat: 1, Lon: 2, SpeedMPS: &speed},
			Device: &cloud.DeviceStatus{Online: true, Time: at, ReceivedAt: at}, TroubleCodes: []cloud.TroubleCode{{Code: "P0301", Since: at}}},
		{ID: "b", FirstSeen: at, LastSeen: at},
	}
	l := renderList(vs, true)
	for i, v := range vs {
		j := toVehicleJSON(v)
		head, tail := l.parts(i)
		got := string(head) + string(appendPosition(nil, j.Position)) + string(tail) + "}"
		if want := string(appendVehicle(nil, &j)); got != want {
			t.Errorf("vehicle %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
