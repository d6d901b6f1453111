package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// The obd section: the simple list of PIDs, the long form with an interval
// per PID, the optional keys, and errors naming the field.
func TestOBDConfig(t *testing.T) {
	base := "vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n"
	cfg, err := ParseConfig([]byte(base+`obd:
  port: /dev/ttyUSB1
  pids: [{pid: "0C", every: 200ms}, "0D", {pid: "05", every: 10s}]
  interval: 2s
  timeout: 500ms
  off_interval: 1m
  dtc_interval: 5m
  vin: false
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var src obd.Source
	if err := cfg.OBD.Apply(&src); err != nil {
		t.Fatal(err)
	}
	type polling struct {
		PIDs                                        []byte
		Polls                                       []obd.Poll
		Interval, Timeout, OffInterval, DTCInterval time.Duration
		NoVIN                                       bool
	}
	want := polling{[]byte{0x0D}, []obd.Poll{{PID: 0x0C, Every: 200 * time.Millisecond}, {PID: 0x05, Every: 10 * time.Second}},
		2 * time.Second, 500 * time.Millisecond, time.Minute, 5 * time.Minute, true}
	got := polling{src.PIDs, src.Polls, src.Interval, src.Timeout, src.OffInterval, src.DTCInterval, src.NoVIN}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("source (-want +got):\n%s", diff)
	}
	// The simple form, defaults for the rest, no trouble codes.
	cfg, err = ParseConfig([]byte(base+"obd:\n  port: /dev/ttyUSB1\n  pids: [\"0C\", \"0D\"]\n  dtcs: false\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	src = obd.Source{}
	if err := cfg.OBD.Apply(&src); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal([]byte{0x0C, 0x0D}, src.PIDs) || src.Polls != nil || src.Interval != time.Second || src.DTCInterval >= 0 || src.NoVIN {
		t.Errorf("simple form: PIDs %X, Polls %v, Interval %v, DTCInterval %v, NoVIN %v", src.PIDs, src.Polls, src.Interval, src.DTCInterval, src.NoVIN)
	}
	for _, tt := range []struct{ yaml, field string }{
		{"  pids: [{pid: \"0C\"}]\n", "without every"},
		{"  pids: [{pid: \"0C\", every: 1s, often: true}]\n", "not often"},
		{"  pids: [{pid: \"ZZ\", every: 1s}]\n", "obd.pids[0]:"},
		{"  pids: [\"0C\", {pid: \"0C\", every: 1s}]\n", "obd.pids[1]: PID 0C listed twice"},
		{"  pids: [\"0C\", \"0c\"]\n", "obd.pids[1]: PID 0c listed twice"}, // found by FuzzParseConfig's check
		{"  pids: [{pid: \"0C\", every: 1ms}]\n", "obd.pids[0].every"},
		{"  pids: [[\"0C\"]]\n", "two hex digits"},
		{"  timeout: 1ms\n", "obd.timeout"},
		{"  dtc_interval: -1s\n", "obd.dtc_interval"},
		{"  off_interval: -1s\n", "obd.off_interval"},
		{"  colour: red\n", "colour"},
	} {
		_, err := ParseConfig([]byte(base+"obd:\n  port: /dev/ttyUSB1\n"+tt.yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%q: %v, want an error naming %s", tt.yaml, err, tt.field)
		}
	}
}
