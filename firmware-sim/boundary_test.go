package firmwaresim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

func TestBoundaries(t *testing.T) {
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name string
		cfg  firmwaresim.Config
		want string
	}{
		{"a drive", firmwaresim.Config{Start: start, Stop: at(120)}, "0 ignition_on, 120 ignition_off"},
		{"no end", firmwaresim.Config{Start: start}, "0 ignition_on"},
		{"halts", firmwaresim.Config{Start: start, Stop: at(120), Halts: []firmwaresim.Halt{
			{At: at(10), For: 2 * time.Minute}, {At: at(30), For: 10 * time.Minute, EngineOff: true}}},
			"0 ignition_on, 10 stop_begin, 12 stop_end, 30 stop_begin off, 30 ignition_off, 40 ignition_on, 40 stop_end off, 120 ignition_off"},
		{"switched off for good", firmwaresim.Config{Start: start, Stop: at(120), Halts: []firmwaresim.Halt{{At: at(30), EngineOff: true}}},
			"0 ignition_on, 30 stop_begin off, 30 ignition_off"},
		{"a halt past the end", firmwaresim.Config{Start: start, Stop: at(120), Halts: []firmwaresim.Halt{{At: at(110), For: time.Hour, EngineOff: true}}},
			"0 ignition_on, 110 stop_begin off, 110 ignition_off"},
		{"an idling halt past the end", firmwaresim.Config{Start: start, Stop: at(120), Halts: []firmwaresim.Halt{{At: at(110), For: time.Hour}}},
			"0 ignition_on, 110 stop_begin, 120 ignition_off"},
		{"ended before it began", firmwaresim.Config{Start: start, Stop: start}, ""},
	}
	for _, tt := range tests {
		var got []string
		for _, b := range tt.cfg.Boundaries() {
			s := fmt.Sprintf("%d %s", int(b.At.Sub(start).Minutes()), b.Kind)
			if b.EngineOff {
				s += " off"
			}
			got = append(got, s)
		}
		if g := strings.Join(got, ", "); g != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, g, tt.want)
		}
	}
}

// TestBoundariesFollowTheModel: the engine state of the model changes at
// the boundaries and nowhere else, and the vehicle stands through a halt.
func TestBoundariesFollowTheModel(t *testing.T) {
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	route, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	cfg := firmwaresim.Config{Route: route, Seed: 3, Start: start, Stop: start.Add(40 * time.Minute), Halts: []firmwaresim.Halt{
		{At: start.Add(10 * time.Minute), For: 3 * time.Minute}, {At: start.Add(20 * time.Minute), For: 7 * time.Minute, EngineOff: true}}}
	v, err := firmwaresim.NewVehicle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bs := cfg.Boundaries()
	engine := false
	for k := range 45 * 60 {
		now := start.Add(time.Duration(k) * time.Second)
		for len(bs) > 0 && !bs[0].At.After(now) {
			switch bs[0].Kind {
			case firmwaresim.IgnitionOn:
				engine = true
			case firmwaresim.IgnitionOff:
				engine = false
			}
			bs = bs[1:]
		}
		s := v.AdvanceTo(now)
		if s.EngineOn != engine {
			t.Fatalf("at +%v the model's engine is %v, the boundaries say %v", now.Sub(start), s.EngineOn, engine)
		}
	}
}
