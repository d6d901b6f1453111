package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// elmServer answers on a TCP port as an ELM327 (Wi-Fi adapters are reached
// so) with the data sheet's replies for a small CAN vehicle: headers off
// (ATH1 refused), spaces on. It returns the tcp:// URL.
func elmServer(t *testing.T, replies map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cmd, err := r.ReadString('\r')
					if err != nil {
						return
					}
					reply, ok := replies[strings.TrimSpace(cmd)]
					if !ok {
						reply = "NO DATA"
						if strings.HasPrefix(cmd, "AT") {
							reply = "OK"
						}
					}
					if _, err := io.WriteString(c, reply+"\r\r>"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

var latencyField = regexp.MustCompile(`"latency_ms":\d+`)

var smallCar = map[string]string{
	"ATZ": "\r\rELM327 v1.5", "ATH1": "?", "ATI": "ELM327 v1.5", "ATRV": "13.1V",
	// 0D 0C 05 2F: 0000 1000 | 0001 1000 | 0 | 0000 0000; 2F in the next range.
	"0100": "SEARCHING...\r41 00 08 18 00 01 ", "ATDPN": "A6", "ATDP": "AUTO, ISO 15765-4 (CAN 11/500)",
	"0120": "41 20 00 02 00 00 ",
	"0902": "014\r0: 49 02 01 57 50 30 \r1: 5A 5A 5A 39 39 5A 54 \r2: 53 33 39 30 30 30 30 ",
	"03":   "43 01 03 01 ",
	"0105": "41 05 7B ", "010C": "41 0C 14 5F ", "010D": "41 0D 32 ",
}

func TestOBDProbe(t *testing.T) {
	url := elmServer(t, smallCar)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"obd-probe", "--port", url, "--samples", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := `{"adapter":"ELM327 v1.5","latency_ms":0,"protocol":"ISO 15765-4 (CAN 11/500)","voltage_v":13.1,"vehicle":"answered",` +
		`"vin":"WP0ZZZ99ZTS390000","supported_pids":["05","0C","0D","2F"],"dtcs":["P0301"],"samples":[` +
		`{"pid":"05","name":"coolant_temp","value":83,"unit":"°C"},{"pid":"0C","name":"engine_rpm","value":1303.75,"unit":"rpm"},` +
		`{"pid":"0D","name":"vehicle_speed","value":50,"unit":"km/h"},{"pid":"2F","error":"NO DATA"}],"errors":[]}` + "\n"
	// The latency is measured: any number of milliseconds.
	if got := latencyField.ReplaceAllString(stdout.String(), `"latency_ms":0`); got != want {
		t.Errorf("stdout\n%s\nwant\n%s", stdout.String(), want)
	}
	var r obd.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || len(r.Samples) != 4 {
		t.Errorf("one JSON document: %v, %+v", err, r)
	}
}

func TestOBDProbeFailures(t *testing.T) {
	off := map[string]string{"ATZ": "\r\rELM327 v1.5", "ATRV": "12.2V", "0100": "SEARCHING...\rUNABLE TO CONNECT"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout bool
		stderr string
	}{
		{"no port", []string{"obd-probe"}, 2, false, "usage"},
		{"bad samples", []string{"obd-probe", "--port", "/dev/null", "--samples", "0"}, 2, false, "usage"},
		{"bad URL", []string{"obd-probe", "--port", "udp://x:1"}, 2, false, "--port"},
		{"ignition off", []string{"obd-probe", "--port", elmServer(t, off)}, 1, true, "no vehicle answered"},
		{"bad PID", []string{"obd-probe", "--port", "/dev/null", "--pids", "0C,XY"}, 2, false, "--pids"},
		{"no device", []string{"obd-probe", "--port", "tcp://127.0.0.1:1"}, 1, true, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || (stdout.Len() > 0) != tt.stdout || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			if tt.stdout {
				var r obd.Report
				err := json.Unmarshal(stdout.Bytes(), &r)
				if err != nil || len(r.Errors) != 1 {
					t.Errorf("report %s: %v", stdout.String(), err)
				}
				if tt.name == "ignition off" && (r.Adapter != "ELM327 v1.5" || r.VoltageV == nil || *r.VoltageV != 12.2 ||
					r.Vehicle != obd.VehicleNone || r.Errors[0].Step != "search") {
					t.Errorf("report %s", stdout.String())
				}
				if tt.name == "no device" && (r.Adapter != "" || r.Vehicle != obd.VehicleUnknown || r.Errors[0].Step != "open") {
					t.Errorf("report %s", stdout.String())
				}
			}
		})
	}
}
