package firmwaresim_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
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
			d := simtest.HaversineM(prev.Lat, prev.Lon, s.Lat, s.Lon)
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

// Scheduled halts: the driver pulls over, idles or switches the ignition off,
// then cranks the engine again and drives on.
func TestHaltsIdleAndIgnitionOff(t *testing.T) {
	r, err := firmwaresim.RouteByName("monaco-harbour")
	if err != nil {
		t.Fatal(err)
	}
	idle := firmwaresim.Halt{At: start.Add(3 * time.Minute), For: time.Minute}
	off := firmwaresim.Halt{At: start.Add(6 * time.Minute), For: 2 * time.Minute, EngineOff: true}
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Seed: 8, Start: start, Halts: []firmwaresim.Halt{idle, off}})
	if err != nil {
		t.Fatal(err)
	}
	in := func(h firmwaresim.Halt, at time.Time) bool { return !at.Before(h.At) && at.Before(h.At.Add(h.For)) }
	prev := v.State()
	movedAfter := false
	for tick := 100 * time.Millisecond; tick <= 12*time.Minute; tick += 100 * time.Millisecond {
		s := v.AdvanceTo(start.Add(tick))
		switch {
		case in(idle, s.Time):
			if s.SpeedMps != 0 || !s.EngineOn || s.RPM < 700 || s.RPM > 1100 || s.Gear != 0 {
				t.Fatalf("+%v idling: %.2f m/s, engine %v, %.0f rpm, gear %d", tick, s.SpeedMps, s.EngineOn, s.RPM, s.Gear)
			}
		case in(off, s.Time):
			if s.SpeedMps != 0 || s.EngineOn || s.RPM != 0 || s.Lat != prev.Lat || s.Lon != prev.Lon {
				t.Fatalf("+%v ignition off: %.2f m/s, engine %v, %.0f rpm, moved %v", tick, s.SpeedMps, s.EngineOn, s.RPM, s.Lat != prev.Lat)
			}
			if in(off, prev.Time) && s.FuelPct != prev.FuelPct {
				t.Fatalf("+%v ignition off: fuel %.5f → %.5f", tick, prev.FuelPct, s.FuelPct)
			}
			// The surface charge fades within a minute to a resting 12-13 V.
			if rest := s.Time.Sub(off.At) > time.Minute; s.BatteryV < 12.0 || s.BatteryV > 14.3 || rest && s.BatteryV > 12.9 {
				t.Fatalf("+%v ignition off: battery %.2f V", tick, s.BatteryV)
			}
		case s.Time.After(off.At.Add(off.For)) && s.Time.Before(off.At.Add(off.For+time.Second)):
			if !s.EngineOn || s.RunTime > time.Second || s.BatteryV > 11.5 {
				t.Errorf("+%v restart: engine %v, run time %v, battery %.2f V; want cranking", tick, s.EngineOn, s.RunTime, s.BatteryV)
			}
		case s.Time.After(off.At.Add(off.For + 15*time.Second)):
			movedAfter = movedAfter || s.SpeedMps > 1
		}
		if s.Time.Equal(idle.At.Add(-100*time.Millisecond)) || s.Time.Equal(off.At.Add(-100*time.Millisecond)) {
			if s.SpeedMps > 0.5 {
				t.Errorf("+%v: %.1f m/s just before a halt; the driver pulls over first", tick, s.SpeedMps)
			}
		}
		prev = s
	}
	if !movedAfter {
		t.Error("the vehicle did not drive on after the ignition came back on")
	}
	idleStart := fuelAt(t, r, idle.At.Add(5*time.Second))
	idleEnd := fuelAt(t, r, idle.At.Add(55*time.Second))
	if idleEnd >= idleStart {
		t.Errorf("idling for 50 s burnt no fuel: %.5f → %.5f %%", idleStart, idleEnd)
	}
}

func fuelAt(t *testing.T, r *firmwaresim.Route, at time.Time) float64 {
	t.Helper()
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Seed: 8, Start: start, Halts: []firmwaresim.Halt{{At: start.Add(3 * time.Minute), For: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	return v.AdvanceTo(at).FuelPct
}

func TestTroubleCodes(t *testing.T) {
	r, _ := firmwaresim.RouteByName("monaco-loop")
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Seed: 1, Start: start, DTCs: []firmwaresim.DTCEvent{
		{At: start.Add(time.Minute), Code: "P0301"},
		{At: start.Add(2 * time.Minute), Code: "P0420"},
		{At: start.Add(2 * time.Minute), Code: "P0301"}, // already stored: no second copy
		{At: start.Add(3 * time.Minute), Code: "P0301", Clear: true},
		{At: start.Add(4 * time.Minute), Code: "U0100"},
		{At: start.Add(5 * time.Minute), Clear: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Duration
		want []string
	}{
		{59 * time.Second, nil}, {time.Minute, []string{"P0301"}}, {2 * time.Minute, []string{"P0301", "P0420"}},
		{3 * time.Minute, []string{"P0420"}}, {4 * time.Minute, []string{"P0420", "U0100"}}, {5 * time.Minute, nil},
	} {
		s := v.AdvanceTo(start.Add(tt.at))
		if diff := cmp.Diff(tt.want, s.DTCs); diff != "" || s.MIL != (len(tt.want) > 0) {
			t.Errorf("+%v: MIL %v, codes (-want +got):\n%s", tt.at, s.MIL, diff)
		}
		if len(s.DTCs) > 0 {
			s.DTCs[0] = "changed" // the caller's copy
			if v.State().DTCs[0] == "changed" {
				t.Fatal("State shares its trouble code slice with the model")
			}
		}
	}
	v2, _ := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Seed: 1, Start: start, DTCs: []firmwaresim.DTCEvent{{At: start, Code: "C1234"}}})
	if s := v2.State(); len(s.DTCs) != 1 {
		t.Errorf("a code set at the start is not stored: %v", s.DTCs)
	}
	v2.ClearDTCs()
	if s := v2.State(); len(s.DTCs) != 0 || s.MIL {
		t.Errorf("after ClearDTCs: %v, MIL %v", s.DTCs, s.MIL)
	}
	for _, bad := range []string{"P030", "X0301", "P4301", "p0301"} {
		if _, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Start: start, DTCs: []firmwaresim.DTCEvent{{At: start, Code: bad}}}); err == nil {
			t.Errorf("trouble code %q accepted", bad)
		}
	}
}

// The Boulevard Louis II tunnel has no sky: the model says so, with no
// satellites, only there.
func TestTunnelHasNoSky(t *testing.T) {
	v := newVehicle(t, 5, 0)
	inTunnel := 0
	for tick := time.Duration(0); tick <= 20*time.Minute; tick += time.Second {
		s := v.AdvanceTo(start.Add(tick))
		if s.Tunnel != !s.FixValid || s.Tunnel != (s.Sats == 0) {
			t.Fatalf("+%v: tunnel %v, fix %v, %d satellites", tick, s.Tunnel, s.FixValid, s.Sats)
		}
		if s.Tunnel {
			inTunnel++
			// Boulevard Louis II between Portier and the harbour.
			if s.Lat < 43.7378 || s.Lat > 43.7412 || s.Lon < 7.4282 || s.Lon > 7.4305 {
				t.Errorf("+%v: in a tunnel at %.5f,%.5f", tick, s.Lat, s.Lon)
			}
		}
	}
	if inTunnel < 10 {
		t.Errorf("20 minutes round the loop spent %d s in the tunnel", inTunnel)
	}
}

// checkDigit is the VIN check digit of 49 CFR 565.15, written here from the
// regulation's tables.
func checkDigit(vin string) byte {
	translit := map[byte]int{'A': 1, 'B': 2, 'C': 3, 'D': 4, 'E': 5, 'F': 6, 'G': 7, 'H': 8, 'J': 1, 'K': 2, 'L': 3, 'M': 4,
		'N': 5, 'P': 7, 'R': 9, 'S': 2, 'T': 3, 'U': 4, 'V': 5, 'W': 6, 'X': 7, 'Y': 8, 'Z': 9}
	weights := []int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}
	sum := 0
	for i := range 17 {
		v, ok := translit[vin[i]]
		if !ok {
			v = int(vin[i] - '0')
		}
		sum += v * weights[i]
	}
	if sum%11 == 10 {
		return 'X'
	}
	return byte('0' + sum%11)
}

func TestVIN(t *testing.T) {
	if got := checkDigit("1M8GDM9AXKP042788"); got != 'X' { // the regulation's worked example
		t.Fatalf("test check digit of the worked example = %c", got)
	}
	seen := map[string]bool{}
	for seed := range uint64(50) {
		vin := newVehicle(t, seed, 0).State().VIN
		if len(vin) != 17 || strings.ContainsAny(vin, "IOQ") || vin[8] != checkDigit(vin) {
			t.Errorf("seed %d: VIN %q (check digit %c)", seed, vin, checkDigit(vin))
		}
		seen[vin] = true
	}
	if len(seen) < 50 {
		t.Errorf("50 seeds gave %d VINs", len(seen))
	}
	r, _ := firmwaresim.RouteByName("monaco-loop")
	v, _ := firmwaresim.NewVehicle(firmwaresim.Config{Route: r, Start: start, VIN: "WP0ZZZ99ZTS390000"})
	if got := v.State().VIN; got != "WP0ZZZ99ZTS390000" {
		t.Errorf("configured VIN: got %q", got)
	}
}
