package scenario_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
)

func TestBuiltinsParse(t *testing.T) {
	list, err := scenario.Builtins()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 4 {
		t.Errorf("%d built-in scenarios", len(list))
	}
	for _, b := range list {
		s, err := scenario.Builtin(b[0])
		if err != nil {
			t.Errorf("%s: %v", b[0], err)
			continue
		}
		if s.Name != b[0] || s.Description == "" || s.Duration == 0 || len(s.Vehicles) == 0 {
			t.Errorf("%s: name %q, description %q, duration %v, %d vehicles", b[0], s.Name, s.Description, s.Duration, len(s.Vehicles))
		}
	}
	if _, err := scenario.Load("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "firmware-sim scenarios") {
		t.Errorf("unknown built-in: %v", err)
	}
}

const full = `# every field
name: full
description: every field there is
seed: 42
start: 2026-11-27T10:00:00Z
duration: 1h
speed: 20
uplink:
  upstream: tcp://127.0.0.1:1883
defaults:
  transport: tcp
  gps:
    noise: true
vehicles:
  - id: car-1
    route: route.gpx
    vin: WP0ZZZ99ZTS390000
    gps:
      rate: 5
      talker: GN
      sentences: [RMC, GGA, GSV]
      baud: 38400
      cold_start: 30s
      transport: pty
    obd:
      listen: 127.0.0.1:0
    stops:
      - {at: 10m, for: 2m, engine: idle}
      - {at: 20m, for: 5m, engine: off}
  - id_prefix: van-
    count: 2
    route: monaco-harbour
faults:
  - {at: 30m, kind: uplink_down, duration: 10m}
  - {at: 5m, kind: unplug, device: obd, vehicle: car-1, duration: 10s}
  - {at: 6m, kind: garbage, device: gps, bytes: 100}
  - {at: 7m, kind: clock_jump, offset: -90m}
  - {at: 8m, kind: can_error, count: 3}
  - {at: 9m, kind: dtc, code: P0301, duration: 5m}
`

func TestParseFull(t *testing.T) {
	dir := t.TempDir()
	gpx, err := os.ReadFile("../testdata/portier.gpx")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "route.gpx"), gpx, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "full.yaml")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "full" || s.Seed != 42 || s.Start != "2026-11-27T10:00:00Z" || s.Duration != time.Hour || s.Speed != 20 || s.Uplink != "tcp://127.0.0.1:1883" {
		t.Errorf("scenario %+v", s)
	}
	if len(s.Vehicles) != 3 || s.Vehicles[1].ID != "van-001" || s.Vehicles[2].ID != "van-002" {
		t.Fatalf("vehicles %+v", s.Vehicles)
	}
	car := s.Vehicles[0]
	want := scenario.GPS{Port: scenario.Port{Transport: "pty"}, Rate: 5, Format: gps.Format{Talker: "GN", Sentences: []string{"RMC", "GGA", "GSV"}},
		Baud: 38400, Noise: true, ColdStart: 30 * time.Second}
	if diff := cmp.Diff(want, car.GPS); diff != "" {
		t.Errorf("car-1 gps (-want +got):\n%s", diff)
	}
	if car.Route.Name != "portier-tunnel" || car.VIN != "WP0ZZZ99ZTS390000" || car.OBD != (scenario.Port{Transport: "tcp", Listen: "127.0.0.1:0"}) {
		t.Errorf("car-1: route %s, vin %s, obd %+v", car.Route.Name, car.VIN, car.OBD)
	}
	if diff := cmp.Diff([]scenario.Stop{{At: 10 * time.Minute, For: 2 * time.Minute}, {At: 20 * time.Minute, For: 5 * time.Minute, EngineOff: true}}, car.Stops); diff != "" {
		t.Errorf("stops (-want +got):\n%s", diff)
	}
	van := s.Vehicles[1]
	if van.Route.Name != "monaco-harbour" || van.GPS.Transport != "tcp" || !van.GPS.Noise || van.GPS.Rate != 1 || van.GPS.Baud != 9600 {
		t.Errorf("van-001 did not get the defaults: %+v", van)
	}
	var kinds []string
	for _, f := range s.Faults {
		kinds = append(kinds, string(f.Kind)+"@"+f.At.String())
	}
	if got := strings.Join(kinds, " "); got != "unplug@5m0s garbage@6m0s clock_jump@7m0s can_error@8m0s dtc@9m0s uplink_down@30m0s" {
		t.Errorf("faults in time order: %s", got)
	}
	if f := s.Faults[2]; f.Offset != -90*time.Minute || f.Device != firmwaresim.DeviceGPS || f.Vehicle != "" {
		t.Errorf("clock_jump %+v", f)
	}
	if got := s.VehicleFaults("van-001"); len(got) != 5 || got[0].Vehicle != "van-001" {
		t.Errorf("van-001 gets %d faults (want all but car-1's unplug): %+v", len(got), got)
	}
}

// Each kind of mistake gets an error that names its line and column.
func TestValidationNamesTheLine(t *testing.T) {
	head := "duration: 1h\nvehicles:\n  - id: veh-001\n"
	tests := []struct {
		name, doc, want string
	}{
		{"not yaml", "duration: [1h\n", "x.yaml:1: did not find expected ',' or ']'"},
		{"tabs", "duration: 1h\n\tvehicles: x\n", "x.yaml:2: found a tab character that violates indentation"},
		{"not a mapping", "- a\n- b\n", "x.yaml:1:1: scenario: want a mapping of"},
		{"empty", "", "x.yaml:1: empty scenario"},
		{"unknown top field", head + "sped: 3\n", `x.yaml:4:1: scenario: unknown field "sped" (want defaults, description, duration, faults, name, seed, speed, start, uplink, vehicles)`},
		{"no duration", "vehicles:\n  - id: a\n", "x.yaml:1:1: scenario: no duration"},
		{"no vehicles", "duration: 1h\n", "x.yaml:1:1: scenario: no vehicles"},
		{"bad duration", "duration: ten minutes\nvehicles:\n  - id: a\n", `x.yaml:1:11: duration "ten minutes": want a duration such as 10s, 5m or 1h30m`},
		{"negative duration", "duration: -1h\nvehicles:\n  - id: a\n", "x.yaml:1:11: duration -1h: must not be negative"},
		{"bad start", "start: yesterday\n" + head, `x.yaml:1:8: start "yesterday": want RFC 3339`},
		{"bad seed", "seed: -3\n" + head, `x.yaml:1:7: seed "-3"`},
		{"bad speed", "speed: 0\n" + head, `x.yaml:1:8: speed "0": want a number above 0`},
		{"duplicate key", "duration: 1h\nduration: 2h\nvehicles:\n  - id: a\n", "x.yaml:2:1: scenario: duration given twice"},
		{"bad id", "duration: 1h\nvehicles:\n  - id: veh/1\n", `x.yaml:3:9: vehicles[0].id "veh/1": want [A-Za-z0-9_-]{1,64}`},
		{"no id", "duration: 1h\nvehicles:\n  - route: monaco-loop\n", "x.yaml:3:5: vehicles[0]: no id"},
		{"id twice", "duration: 1h\nvehicles:\n  - id: a\n  - id: a\n", `x.yaml:3:3: vehicles: id "a" given twice`},
		{"id and count", "duration: 1h\nvehicles:\n  - {id: a, count: 2}\n", "x.yaml:3:5: vehicles[0]: give either id, or count with id_prefix"},
		{"unknown route", head + "    route: atlantis\n", `x.yaml:4:12: vehicles[0].route: route "atlantis": unknown route`},
		{"missing route file", head + "    route: nowhere.gpx\n", "x.yaml:4:12: vehicles[0].route: route file: open"},
		{"bad rate", head + "    gps: {rate: 30}\n", `x.yaml:4:17: vehicles[0].gps.rate "30": want a whole number from 1 to 25`},
		{"bad talker", head + "    gps: {talker: XX}\n", `x.yaml:4:19: vehicles[0].gps.talker "XX"`},
		{"bad sentence", head + "    gps: {sentences: [RMC, TXT]}\n", `x.yaml:4:22: vehicles[0].gps: sentence "TXT"`},
		{"bad baud", head + "    gps: {baud: 9601}\n", "x.yaml:4:17: vehicles[0].gps.baud 9601: want one of"},
		{"too slow a line", head + "    gps: {rate: 10}\n", "x.yaml:3:5: vehicle veh-001: 10 Hz of RMC,GGA,GSA (up to 217 bytes an epoch) needs 21700 baud; the receiver's (gps.baud, --baud) is 9600"},
		{"bad transport", head + "    obd: {transport: usb}\n", `x.yaml:4:22: vehicles[0].obd.transport "usb": want pty or tcp`},
		{"bad listen", head + "    obd: {transport: tcp, listen: 4000}\n", `x.yaml:4:35: vehicles[0].obd.listen "4000": want host:port`},
		{"unknown gps field", head + "    gps: {hz: 5}\n", `x.yaml:4:11: vehicles[0].gps: unknown field "hz"`},
		{"bad vin", head + "    vin: ABC\n", `x.yaml:4:10: vehicles[0].vin "ABC"`},
		{"bad stop", head + "    stops:\n      - {at: 5m, for: 1m, engine: asleep}\n", `x.yaml:5:35: vehicles[0].stops[0].engine "asleep": want idle or off`},
		{"stop without for", head + "    stops:\n      - {at: 5m}\n", "x.yaml:5:9: vehicles[0].stops[0]: want at and for"},
		{"unknown kind", head + "faults:\n  - {at: 1m, kind: meteor}\n", `x.yaml:5:20: faults[0].kind "meteor": want one of unplug, garbage,`},
		{"no kind", head + "faults:\n  - {at: 1m}\n", "x.yaml:5:5: faults[0]: no kind"},
		{"no at", head + "faults:\n  - {kind: fix_loss, duration: 1m}\n", "x.yaml:5:5: faults[0]: no at"},
		{"at after the end", head + "faults:\n  - {at: 2h, kind: fix_loss, duration: 1m}\n", "x.yaml:5:10: faults[0].at 2h0m0s: at or after the end of the drive (duration 1h0m0s)"},
		{"param the kind does not take", head + "faults:\n  - {at: 1m, kind: fix_loss, duration: 1m, baud: 4800}\n", "x.yaml:5:50: faults[0]: fix_loss takes no baud (it takes duration)"},
		{"required param missing", head + "faults:\n  - {at: 1m, kind: baud_change}\n", "x.yaml:5:5: faults[0]: baud_change needs baud"},
		{"wrong device", head + "faults:\n  - {at: 1m, kind: can_error, device: gps}\n", `x.yaml:5:39: faults[0].device "gps": can_error hits [obd]`},
		{"count and duration", head + "faults:\n  - {at: 1m, kind: can_error, count: 2, duration: 1m}\n", "x.yaml:5:38: faults[0]: give count or duration, not both"},
		{"unknown vehicle", head + "faults:\n  - {at: 1m, kind: fix_loss, duration: 1m, vehicle: veh-009}\n", `x.yaml:5:53: faults[0].vehicle "veh-009": no such vehicle`},
		{"bad code", head + "faults:\n  - {at: 1m, kind: dtc, code: P9999}\n", `x.yaml:5:31: faults[0].code "P9999"`},
		{"bad reply", head + "faults:\n  - {at: 1m, kind: obd_reply, reply: \"\"}\n", `x.yaml:5:38: faults[0].reply ""`},
		{"zero offset", head + "faults:\n  - {at: 1m, kind: clock_jump, offset: 0s}\n", "x.yaml:5:40: faults[0].offset 0s: must not be zero"},
		{"overlapping unplugs", head + "faults:\n  - {at: 1m, kind: unplug, duration: 1m}\n  - {at: 90s, kind: unplug, duration: 1m}\n",
			"x.yaml:6:5: vehicle veh-001: unplug at +1m30s overlaps unplug at +1m0s"},
		{"ignition off during a stop", head + "    stops:\n      - {at: 10m, for: 5m, engine: idle}\nfaults:\n  - {at: 12m, kind: ignition_off, duration: 1m}\n",
			"x.yaml:7:5: vehicle veh-001: the stop or ignition_off at +12m0s overlaps the one at +10m0s"},
	}
	for _, tt := range tests {
		_, err := scenario.Parse([]byte(tt.doc), "x.yaml", "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error\n  %v\nwant one containing\n  %s", tt.name, err, tt.want)
			continue
		}
		var se *scenario.Error
		if !errors.As(err, &se) || se.Line == 0 {
			t.Errorf("%s: %v is not a *scenario.Error with a line", tt.name, err)
		}
	}
	// Several mistakes: every one is reported, in file order.
	_, err := scenario.Parse([]byte("duration: x\nvehicles:\n  - id: a/b\n    gps: {rate: 0}\n"), "x.yaml", "")
	if err == nil || strings.Count(err.Error(), "x.yaml:") != 3 {
		t.Errorf("three mistakes: %v", err)
	}
}
