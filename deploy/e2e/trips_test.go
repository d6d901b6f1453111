package e2e_test

import (
	"context"
	"io"
	"math"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// TestTripRulesAgree: firmware-sim diff derives the truth's trips with the
// cloud's default thresholds (the simulator imports nothing of cloud/).
func TestTripRulesAgree(t *testing.T) {
	c, r := cloud.DefaultTripConfig(), truth.DefaultTripRules()
	if c.StopDuration != r.StopDuration || c.MinDistance != r.MinDistance {
		t.Errorf("cloud %+v, truth %+v", c, r)
	}
}

// jumpClock is a simulated clock that never waits.
type jumpClock struct{ t time.Time }

func (c *jumpClock) Now() time.Time { return c.t }
func (c *jumpClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.t) {
		c.t = t
	}
	return ctx.Err()
}

// simulatedDrive runs a built-in scenario's first vehicle through its
// receiver alone (no ports, no agent, no waiting) and returns the fixes as
// the cloud stores them (the wire's units), the ignition events at their
// true times, and the truth's view of the vehicle (its ignition lines).
func simulatedDrive(t *testing.T, name string) ([]*cloud.Position, []cloud.IgnitionEvent, truth.Vehicle) {
	t.Helper()
	sc, err := scenario.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	spec := sc.Vehicles[0]
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	until := start.Add(sc.Duration)
	faults := sc.VehicleFaults(spec.ID)
	halts, dtcs := firmwaresim.VehicleEvents(faults, start)
	for _, s := range spec.Stops {
		halts = append(halts, firmwaresim.Halt{At: start.Add(s.At), For: s.For, EngineOff: s.EngineOff})
	}
	seed := firmwaresim.VehicleSeed(sc.Seed, 0)
	vc := firmwaresim.Config{Route: spec.Route, Seed: seed, Start: start, Stop: until, Halts: halts, DTCs: dtcs}
	gpsModel, err := firmwaresim.NewVehicle(vc)
	if err != nil {
		t.Fatal(err)
	}
	model, _ := firmwaresim.NewVehicle(vc)
	v := truth.Vehicle{ID: spec.ID, Ended: true, First: start, Last: until}
	var ign []cloud.IgnitionEvent
	for _, b := range vc.Boundaries() {
		if b.Kind != firmwaresim.IgnitionOn && b.Kind != firmwaresim.IgnitionOff {
			continue
		}
		st := model.AdvanceTo(b.At)
		on := b.Kind == firmwaresim.IgnitionOn
		state := map[bool]string{true: "on", false: "off"}[on]
		v.Ignition = append(v.Ignition, truth.Line{Type: "ignition", Vehicle: spec.ID, Time: b.At, State: state, DistanceM: st.DistanceM})
		ign = append(ign, cloud.IgnitionEvent{Time: b.At, On: on})
	}
	g := spec.GPS
	r := &gps.Receiver{Vehicle: gpsModel, Clock: &jumpClock{start}, Rate: g.Rate, Format: g.Format, Noise: g.Noise,
		ColdStart: g.ColdStart, Seed: seed, Faults: faults, Until: until}
	var ps []*cloud.Position
	err = r.Run(context.Background(), io.Discard, func(f gps.Fix) {
		speed := math.Round(f.SpeedMps*1000) / 1000
		hdop := f.HDOP
		ps = append(ps, &cloud.Position{VehicleID: spec.ID, StreamID: 1, Seq: uint64(len(ps) + 1), Time: f.Time,
			Lat: math.Round(f.Lat*1e7) / 1e7, Lon: math.Round(f.Lon*1e7) / 1e7, SpeedMPS: &speed, HDOP: &hdop})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ps, ign, v
}

// asStored turns detected trips into what the API returns of them.
func asStored(ts []*cloud.Trip) []cloudapi.Trip {
	var out []cloudapi.Trip
	for _, tr := range ts {
		var s cloudapi.Trip
		s.Start.Time, s.End.Time, s.Open, s.DistanceM = tr.Start, tr.End, tr.Open, tr.DistanceM
		out = append(out, s)
	}
	return out
}

// TestTripsOfTheSimulatedDrive: the fixes of the built-in two-hour drive
// (GPS noise on, the fix lost in the tunnel every lap) through the cloud's
// trip detection give the truth's trip within the diff's tolerance —
// start and end within a minute, the distance along the noisy fixes and
// across the tunnel gaps within 2% of what the model drove — with the
// ignition events and without them (motion alone).
func TestTripsOfTheSimulatedDrive(t *testing.T) {
	ps, ign, v := simulatedDrive(t, "tunnel-unplug-outage")
	want := truth.Trips(v, truth.DefaultTripRules())
	if len(want) != 1 || want[0].DistanceM < 20000 {
		t.Fatalf("truth trips %v", want)
	}
	for _, withIgnition := range []bool{true, false} {
		in := &cloud.TripInput{VehicleID: v.ID, Positions: ps}
		if withIgnition {
			in.Ignition = ign
		}
		got := cloud.DetectTrips(in, cloud.TripConfig{}).Trips
		d := truth.CompareTrips(want, asStored(got), truth.DefaultTripTolerance())
		if !d.OK() {
			t.Errorf("ignition data %v: %v", withIgnition, d)
		}
		for _, tr := range got {
			t.Logf("ignition data %v: %v: start %+v, end %+v, distance %+.2f%% of %.0f m", withIgnition, tr,
				tr.Start.Sub(want[0].Start), tr.End.Sub(want[0].End), 100*(tr.DistanceM-want[0].DistanceM)/want[0].DistanceM, want[0].DistanceM)
		}
	}
}
