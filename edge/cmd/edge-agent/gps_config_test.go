package main

import (
	"strings"
	"testing"
)

func TestGPSConfigBauds(t *testing.T) {
	for _, tt := range []struct {
		yaml, err string
	}{
		{"bauds: [9600, 4800, 38400, 115200]", ""},
		{"bauds: []", ""},
		{"bauds: [9600, 0]", "gps.bauds[1]"},
		{"bauds: [9600, 9600]", "gps.bauds[1]"},
		{"bauds: [5000000]", "gps.bauds[0]"},
	} {
		raw := "vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n  " + tt.yaml + "\n"
		_, err := ParseConfig([]byte(raw), func(string) (string, bool) { return "", false })
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.yaml, err)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one naming %s", tt.yaml, err, tt.err)
		}
	}
}
