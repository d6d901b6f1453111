package firmwaresim_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

var start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newVehicle(t *testing.T, seed uint64, stop time.Duration) *firmwaresim.Vehicle {
	t.Helper()
	r, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	cfg := firmwaresim.Config{Route: r, Seed: seed, Start: start}
	if stop > 0 {
		cfg.Stop = start.Add(stop)
	}
	v, err := firmwaresim.NewVehicle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The state at a time must not depend on how the caller sliced time: the GPS
// side and the OBD side each own a copy and advance it at their own pace.
func TestSameSeedSameStateHoweverTimeIsSliced(t *testing.T) {
	fine := newVehicle(t, 42, 0)
	coarse := newVehicle(t, 42, 0)
	for tick := time.Duration(0); tick <= 10*time.Minute; tick += 10 * time.Millisecond {
		fine.AdvanceTo(start.Add(tick))
		if tick%(7*time.Second+30*time.Millisecond) != 0 {
			continue
		}
		want := fine.State()
		got := coarse.AdvanceTo(start.Add(tick))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("at +%v states differ (-fine +coarse):\n%s", tick, diff)
		}
	}
}

func TestSeedsDiffer(t *testing.T) {
	a := newVehicle(t, 1, 0).AdvanceTo(start.Add(time.Minute))
	b := newVehicle(t, 2, 0).AdvanceTo(start.Add(time.Minute))
	if a.Lat == b.Lat && a.Lon == b.Lon {
		t.Errorf("seeds 1 and 2 put both vehicles at %.6f,%.6f", a.Lat, a.Lon)
	}
	if firmwaresim.VehicleSeed(1, 0) == firmwaresim.VehicleSeed(1, 1) {
		t.Error("VehicleSeed gives two vehicles of a fleet the same seed")
	}
}

func TestAdvanceToDoesNotGoBack(t *testing.T) {
	v := newVehicle(t, 3, 0)
	later := v.AdvanceTo(start.Add(time.Minute))
	if got := v.AdvanceTo(start.Add(time.Second)); !got.Time.Equal(later.Time) {
		t.Errorf("AdvanceTo(earlier) went to %v, want to stay at %v", got.Time, later.Time)
	}
}

// The physics of a 15-minute drive, sampled each second, for several seeds.
func TestPhysics(t *testing.T) {
	const drive = 15 * time.Minute
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		v := newVehicle(t, seed, drive)
		prev := v.State()
		first := prev
		var moved, waited, stoppedAfterMoving bool
		maxSpeed := 0.0
		for sec := 1; sec <= int(drive/time.Second)+60; sec++ {
			s := v.AdvanceTo(start.Add(time.Duration(sec) * time.Second))
			at := s.Time.Sub(start)
			d := haversineM(prev.Lat, prev.Lon, s.Lat, s.Lon)
			// No teleports: along the road the vehicle covers at most its
			// speed over the second (its speeds at both ends plus what accelerating
			// then braking within the second can add); the straight line is shorter.
			if limit := math.Max(prev.SpeedMps, s.SpeedMps)*1 + 1.0; d > limit {
				t.Errorf("seed %d +%v: moved %.2f m in 1 s at speeds %.2f→%.2f m/s", seed, at, d, prev.SpeedMps, s.SpeedMps)
			}
			if dv := s.SpeedMps - prev.SpeedMps; dv > 3.0 || dv < -4.1 {
				t.Errorf("seed %d +%v: speed changed by %.2f m/s in 1 s", seed, at, dv)
			}
			if s.FuelPct > prev.FuelPct {
				t.Errorf("seed %d +%v: fuel rose from %.4f to %.4f %%", seed, at, prev.FuelPct, s.FuelPct)
			}
			if s.EngineOn {
				if s.SpeedMps > 0 {
					moved = true
				}
				if moved && s.SpeedMps == 0 {
					stoppedAfterMoving = true
				}
				if s.Waiting {
					waited = true
				}
				if s.RunTime > 2*time.Second {
					if s.RPM < 700 || s.RPM > 5000 {
						t.Errorf("seed %d +%v: rpm %.0f with the engine running", seed, at, s.RPM)
					}
					if s.BatteryV < 13.5 || s.BatteryV > 14.8 {
						t.Errorf("seed %d +%v: battery %.2f V with the alternator charging", seed, at, s.BatteryV)
					}
				}
				if s.Gear >= 2 {
					// rpm follows speed through the gearbox (within the
					// engine's short lag).
					wheel := s.SpeedMps / (2 * math.Pi * 0.31) * 60
					want := wheel * []float64{3.73, 2.05, 1.39, 1.03, 0.82}[s.Gear-1] * 4.06
					if math.Abs(s.RPM-want) > 0.2*want {
						t.Errorf("seed %d +%v: %.0f rpm in gear %d at %.1f m/s, want about %.0f", seed, at, s.RPM, s.Gear, s.SpeedMps, want)
					}
				}
				if s.CoolantC < prev.CoolantC-0.2 {
					t.Errorf("seed %d +%v: coolant fell from %.1f to %.1f °C while running", seed, at, prev.CoolantC, s.CoolantC)
				}
			} else {
				if at < drive {
					t.Errorf("seed %d +%v: engine off before the stop time", seed, at)
				}
				if prev.EngineOn && prev.SpeedMps != 0 {
					t.Errorf("seed %d +%v: engine switched off at %.2f m/s; the driver pulls over first", seed, at, prev.SpeedMps)
				}
				if !prev.EngineOn && (s.SpeedMps != 0 || s.RPM != 0 || s.Lat != prev.Lat || s.Lon != prev.Lon || s.FuelPct != prev.FuelPct) {
					t.Errorf("seed %d +%v: parked vehicle moves or burns fuel: %.2f m/s, %.0f rpm", seed, at, s.SpeedMps, s.RPM)
				}
			}
			maxSpeed = math.Max(maxSpeed, s.SpeedMps)
			prev = s
		}
		if !moved || !waited || !stoppedAfterMoving {
			t.Errorf("seed %d: moved %v, waited %v, stopped after moving %v", seed, moved, waited, stoppedAfterMoving)
		}
		if maxSpeed > 50/3.6+0.01 {
			t.Errorf("seed %d: top speed %.1f km/h over the 50 km/h limit", seed, maxSpeed*3.6)
		}
		if prev.EngineOn {
			t.Errorf("seed %d: engine still on after the stop time", seed)
		}
		if prev.CoolantC < first.CoolantC+30 {
			t.Errorf("seed %d: coolant %.1f → %.1f °C; a 15-minute drive warms it", seed, first.CoolantC, prev.CoolantC)
		}
		if prev.FuelPct >= first.FuelPct {
			t.Errorf("seed %d: no fuel used in 15 minutes", seed)
		}
	}
}
