package main

import (
	"context"
	"io"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
)

// The GPS receiver and the ELM327, each with its own copy of the model as
// run wires them, tell the same story: at every fix the OBD speed (integer
// km/h in the reply bytes) is the GPS speed (knots on the wire).
func TestGPSAndOBDTellTheSameStory(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	route, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	vc := firmwaresim.Config{Route: route, Seed: firmwaresim.VehicleSeed(9, 0), Start: start, Stop: start.Add(10 * time.Minute)}
	gpsModel, _ := firmwaresim.NewVehicle(vc)
	obdModel, _ := firmwaresim.NewVehicle(vc)
	obdClock := &simtest.Clock{T: start}
	adapter := elm327.NewAdapter(ecu{v: obdModel, clock: obdClock})
	adapter.Input([]byte("ATE0\r"))

	speedReply := regexp.MustCompile(`41 0D ([0-9A-F]{2}) \r\r>$`)
	moving := 0
	r := &gps.Receiver{Vehicle: gpsModel, Clock: &simtest.Clock{T: start}, Rate: 1, Until: vc.Stop}
	err = r.Run(context.Background(), io.Discard, func(f gps.Fix) {
		obdClock.T = f.Time
		out, _ := adapter.Input([]byte("010D\r"))
		m := speedReply.FindSubmatch(out)
		if m == nil {
			t.Fatalf("at %v: 010D → %q", f.Time, out)
		}
		kmh, _ := strconv.ParseUint(string(m[1]), 16, 8)
		gpsKmh := f.SpeedMps * 3.6
		if math.Abs(float64(kmh)-gpsKmh) > 0.51 {
			t.Errorf("at %v: OBD %d km/h, GPS %.3f km/h", f.Time, kmh, gpsKmh)
		}
		if kmh > 0 {
			moving++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if moving < 60 {
		t.Errorf("the vehicle moved at only %d of 600 fixes", moving)
	}
}
