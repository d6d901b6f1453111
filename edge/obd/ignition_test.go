package obd_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

func TestIgnition(t *testing.T) {
	rpm := func(v float64) obd.Evidence { return obd.Evidence{Answered: true, HasRPM: true, RPM: v} }
	volts := func(v float64) obd.Evidence { return obd.Evidence{HasVolts: true, Volts: v} }
	silent := obd.Evidence{Silent: true}
	answered := obd.Evidence{Answered: true}
	with := func(e obd.Evidence, v float64) obd.Evidence { e.HasVolts, e.Volts = true, v; return e }
	tests := []struct {
		name  string
		steps []obd.Evidence
		want  []obd.IgnitionState
	}{
		{"engine turning", []obd.Evidence{rpm(800)},
			[]obd.IgnitionState{obd.IgnitionOn}},
		{"charging voltage alone", []obd.Evidence{volts(14.1)},
			[]obd.IgnitionState{obd.IgnitionOn}},
		{"resting battery says nothing alone", []obd.Evidence{volts(12.6), answered},
			[]obd.IgnitionState{obd.IgnitionUnknown, obd.IgnitionUnknown}},
		{"off after three silent rounds", []obd.Evidence{rpm(800), silent, silent, silent},
			[]obd.IgnitionState{obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOff}},
		{"0 rpm (key on, engine off) counts as stopped", []obd.Evidence{rpm(800), rpm(0), with(rpm(0), 12.5), rpm(0)},
			[]obd.IgnitionState{obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOff}},
		{"silent ECU but charging: still on", []obd.Evidence{rpm(800), with(silent, 14.0), with(silent, 14.0), with(silent, 14.0)},
			[]obd.IgnitionState{obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn}},
		{"a value between silences resets the count", []obd.Evidence{rpm(800), silent, silent, rpm(750), silent, silent},
			[]obd.IgnitionState{obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn, obd.IgnitionOn}},
		{"unknown to off", []obd.Evidence{silent, silent, silent},
			[]obd.IgnitionState{obd.IgnitionUnknown, obd.IgnitionUnknown, obd.IgnitionOff}},
		{"back on", []obd.Evidence{silent, silent, silent, rpm(900)},
			[]obd.IgnitionState{obd.IgnitionUnknown, obd.IgnitionUnknown, obd.IgnitionOff, obd.IgnitionOn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g obd.Ignition
			for i, e := range tt.steps {
				before := g.State()
				got, changed := g.Observe(e)
				if got != tt.want[i] || changed != (got != before) {
					t.Errorf("step %d (%v): %v (changed %v), want %v", i, e, got, changed, tt.want[i])
				}
			}
		})
	}
}
