package redis

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

func TestPackState(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 123e6, time.UTC)
	f := func(v float64) *float64 { return &v }
	for _, st := range []cloud.VehicleState{
		{VehicleID: "veh-1", UpdatedAt: at.Add(time.Second), Position: cloud.Position{VehicleID: "veh-1", StreamID: 0xfedcba9876543210,
			Seq: 10, Time: at, Lat: 43.7384166, Lon: 7.4246333, SpeedMPS: f(13.891), CourseDeg: f(45.2)}},
		{VehicleID: "south-west", UpdatedAt: at, Position: cloud.Position{VehicleID: "south-west", StreamID: 1,
			Seq: 1, Time: at.Add(-time.Hour), Lat: -89.9, Lon: -179.9999999, CourseDeg: f(0)}},
		{VehicleID: "null-island", UpdatedAt: at, Position: cloud.Position{VehicleID: "null-island", Time: at}},
	} {
		packed := packState(&st)
		got, err := unpackState(st.VehicleID, packed)
		if err != nil || !reflect.DeepEqual(*got, st) {
			t.Errorf("%s: %q unpacks to %+v, %v", st.VehicleID, packed, got, err)
		}
	}
	for _, bad := range []string{"", "1,2,3", "1,ff,3,4,5,6,7,8,9", "x,ff,3,4,5,6,,", "1,zz,3,4,5,6,,",
		"1,ff,-3,4,5,6,,", "1,ff,3,north,5,6,,", "1,ff,3,4,5,6,fast,", "1,ff,3,4,5,6,,west"} {
		if st, err := unpackState("v", bad); err == nil || !strings.Contains(err.Error(), "packed state") {
			t.Errorf("%q: %+v, %v; want an error", bad, st, err)
		}
	}
}
