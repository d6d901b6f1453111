package httpapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// The appenders write what json.Marshal writes for the same structs.
func TestAppendVehicleIsJSONMarshal(t *testing.T) {
	at := Time(time.Date(2026, 11, 27, 10, 0, 0, 123_000_000, time.FixedZone("x", 3600)))
	f := func(v float64) *float64 { return &v }
	since := Time(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	dev := &deviceJSON{Online: true, Time: at, OnlineSince: &since, AgentVersion: `1.2.3 "beta" <x>&é`, StreamID: "fedcba9876543210",
		NextSeq: 1 << 62, OutboxDepth: 5, OutboxBytes: 1234, OldestUnsentAgeS: 0.000001, Dropped: 7, FixMode: 3, NoFixSince: &since,
		RTTMs: 40, UptimeS: 1e21, Counters: map[string]uint64{"z": 1, "a.b": 2, "\u2028": 3}, Received: at,
		ClockSource: "gnss", ClockOffsetMs: new(int64(-1500)), OutboxTrouble: "filesystem_full", OBDState: "bus_fault: CAN <ERROR>"}
	for _, v := range []vehicleJSON{
		{ID: "veh-001", FirstSeen: at, LastSeen: at, TroubleCodes: []troubleCodeJSON{}},
		{ID: "veh-002", FirstSeen: at, LastSeen: at, Online: true, Position: &latestJSON{Time: at, Lat: 43.7384166, Lon: -7.4246333, SpeedMPS: f(13.891), CourseDeg: f(0)},
			Device: dev, TroubleCodes: []troubleCodeJSON{{Code: "P0301", Since: at}, {Code: "C0035", Since: since}}, DistanceM: f(1.5e-7)},
		{ID: "v", Position: &latestJSON{Lat: 90, Lon: 1e-320}, Device: &deviceJSON{UptimeS: 123456789.125, OldestUnsentAgeS: math.SmallestNonzeroFloat64}},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendVehicle(nil, &v); string(got) != string(want) {
			t.Errorf("appendVehicle\n got %s\nwant %s", got, want)
		}
	}
}

// FuzzAppendString: any string is written as json.Marshal writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"veh-001", `a"b`, "<&>", "é", "\x00", "\u2028", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// FuzzAppendFloat: any finite float is written as json.Marshal writes it.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1.5, 1e-7, 1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want, _ := json.Marshal(v)
		if got := appendFloat64(nil, v); string(got) != string(want) {
			t.Fatalf("appendFloat64(%v) = %s, want %s", v, got, want)
		}
	})
}

// FuzzAppendTime: any time is written as json.Marshal writes a Time.
func FuzzAppendTime(f *testing.F) {
	for _, v := range []int64{0, 1764237600123456789, math.MinInt64, math.MaxInt64, -1} {
		f.Add(v, int32(0))
	}
	f.Add(int64(1764237600123456789), int32(3600))
	f.Fuzz(func(t *testing.T, ns int64, offset int32) {
		at := Time(time.Unix(0, ns).In(time.FixedZone("x", int(offset%86400))))
		want, err := json.Marshal(at)
		if err != nil {
			return
		}
		if got := appendTime(nil, at); string(got) != string(want) {
			t.Fatalf("appendTime(%v) = %s, want %s", time.Time(at), got, want)
		}
	})
}

// Times beyond the years 0 to 9999 are written as time.AppendFormat writes them.
func TestAppendTimeFarYears(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)} {
		want, _ := json.Marshal(Time(at))
		if got := appendTime(nil, Time(at)); string(got) != string(want) {
			t.Errorf("appendTime(%v) = %s, want %s", at, got, want)
		}
	}
}
