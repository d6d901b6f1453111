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
// km/h in the reply bytes) is the speed the GPS carries — exactly without
// noise; with noise, the GPS speed is within its noise of the noise-free
// model, and the OBD speed is the model's.
func TestGPSAndOBDTellTheSameStory(t *testing.T) {
	for _, noise := range []bool{false, true} {
		start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
		route, err := firmwaresim.RouteByName("monaco-loop")
		if err != nil {
			t.Fatal(err)
		}
		vc := firmwaresim.Config{Route: route, Seed: firmwaresim.VehicleSeed(9, 0), Start: start, Stop: start.Add(10 * time.Minute),
			Halts: []firmwaresim.Halt{{At: start.Add(4 * time.Minute), For: time.Minute, EngineOff: true}}}
		gpsModel, _ := firmwaresim.NewVehicle(vc)
		obdModel, _ := firmwaresim.NewVehicle(vc)
		obdClock := &simtest.Clock{T: start}
		adapter := elm327.NewAdapter(&ecu{v: obdModel, clock: obdClock})
		adapter.Input([]byte("ATE0\r"))

		speedReply := regexp.MustCompile(`41 0D ([0-9A-F]{2}) \r\r>$`)
		moving, engineOff := 0, 0
		r := &gps.Receiver{Vehicle: gpsModel, Clock: &simtest.Clock{T: start}, Rate: 1, Until: vc.Stop, Noise: noise, Seed: 4}
		r.OnEpoch = func(rep gps.Report) {
			if !rep.Fix.Valid {
				return
			}
			obdClock.T = rep.Time
			out, _ := adapter.Input([]byte("010D\r"))
			if !rep.State.EngineOn {
				engineOff++
				if string(out) != "NO DATA\r\r>" {
					t.Errorf("noise %v, at %v with the ignition off: 010D → %q", noise, rep.Time, out)
				}
				return
			}
			m := speedReply.FindSubmatch(out)
			if m == nil {
				t.Fatalf("noise %v, at %v: 010D → %q", noise, rep.Time, out)
			}
			kmh, _ := strconv.ParseUint(string(m[1]), 16, 8)
			if model := rep.State.SpeedMps * 3.6; math.Abs(float64(kmh)-model) > 0.51 {
				t.Errorf("noise %v, at %v: OBD %d km/h, model %.3f km/h", noise, rep.Time, kmh, model)
			}
			gpsKmh := rep.Fix.SpeedMps * 3.6
			tolerance := 0.51 // integer km/h against knots to 0.001
			if noise {
				tolerance += 5 * 0.05 * rep.State.HDOP * 3.6 // five sigma of the receiver's speed noise
			}
			if math.Abs(float64(kmh)-gpsKmh) > tolerance {
				t.Errorf("noise %v, at %v: OBD %d km/h, GPS %.3f km/h", noise, rep.Time, kmh, gpsKmh)
			}
			if kmh > 0 {
				moving++
			}
		}
		if err := r.Run(context.Background(), io.Discard, nil); err != nil {
			t.Fatal(err)
		}
		if moving < 60 || engineOff < 50 {
			t.Errorf("noise %v: moving at %d fixes, ignition off at %d", noise, moving, engineOff)
		}
	}
}
