package obd_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge/obd"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		cmd       string
		lines     []string
		searching bool
		code      string // AdapterError code; "" for success
	}{
		{"OK", "OK\r\r", "ATE0", []string{"OK"}, false, ""},
		{"echo stripped", "ATE0\rOK\r\r", "ATE0", []string{"OK"}, false, ""},
		{"echo with spaces and case", "at sp 0\rOK\r\r", "ATSP0", []string{"OK"}, false, ""},
		{"linefeeds", "\r\n410C1AF8\r\n\r\n", "010C", []string{"410C1AF8"}, false, ""},
		{"searching then data", "SEARCHING...\r41 0C 1A F8 \r\r", "010C", []string{"41 0C 1A F8"}, true, ""},
		{"NUL bytes dropped", "\x00410D32\x00\r\r", "010D", []string{"410D32"}, false, ""},
		{"two ECUs", "410C1AF8\r410C1AF9\r\r", "010C", []string{"410C1AF8", "410C1AF9"}, false, ""},
		{"NO DATA", "NO DATA\r\r", "010C", nil, false, "no_data"},
		{"unknown command", "?\r\r", "010C", nil, false, "unknown_command"},
		{"CAN ERROR", "CAN ERROR\r\r", "010C", nil, false, "can_error"},
		{"searching fails", "SEARCHING...\rUNABLE TO CONNECT\r\r", "010C", nil, true, "unable_to_connect"},
		{"bus init", "BUS INIT: ...ERROR\r\r", "010C", nil, false, "bus_init"},
		{"bus busy", "BUS BUSY\r\r", "010C", nil, false, "bus_busy"},
		{"FB ERROR", "FB ERROR\r\r", "010C", nil, false, "fb_error"},
		{"<DATA ERROR alone", "410C1AF8 <DATA ERROR\r\r", "010C", nil, false, "data_error"},
		{"<DATA ERROR beside a good line", "7E803410D32\r7E903410D31 <DATA ERROR\r\r", "010D", []string{"7E803410D32"}, false, ""},
		{"clone decoration", "**CAN ERROR**\r\r", "010C", nil, false, "can_error"},
		{"bus init progress", "SEARCHING...\rBUS INIT: ...OK\r41 0C 1A F8\r\r", "010C", []string{"41 0C 1A F8"}, true, ""},
		{"ERROR for ?", "\r\nERROR\r\n", "ATH1", nil, false, "unknown_command"},
		{"LP ALERT", "LP ALERT\r\r", "010C", nil, false, "lp_alert"},
		{"ERR93", "ERR93\r\r", "010C", nil, false, "err"},
		{"DATA ERROR", "DATA ERROR\r\r", "010C", nil, false, "data_error"},
		{"<RX ERROR", "<RX ERROR\r\r", "010C", nil, false, "rx_error"},
		{"STOPPED", "STOPPED\r\r", "010C", nil, false, "stopped"},
		{"BUFFER FULL", "BUFFER FULL\r\r", "010C", nil, false, "buffer_full"},
		{"LV RESET", "LV RESET\r\r", "010C", nil, false, "lv_reset"},
		{"ACT ALERT", "ACT ALERT\r\r", "010C", nil, false, "act_alert"},
		{"ERR94", "ERR94\r\r", "010C", nil, false, "err94"},
		{"error after data", "410C1AF8\rCAN ERROR\r\r", "010C", nil, false, "can_error"},
		{"only searching", "SEARCHING...\r\r", "010C", nil, true, "searching"},
		{"garbage bytes around data", "\x7f\x7f\x00410D32\xff\r\r", "010D", []string{"410D32"}, false, ""},
		{"nothing", "\r\r", "010C", nil, false, "empty"},
		{"only echo", "010C\r\r", "010C", nil, false, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := obd.ParseReply([]byte(tt.raw), tt.cmd)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("ParseReply(%q) error %v", tt.raw, err)
				}
				if diff := cmp.Diff(tt.lines, r.Lines); diff != "" {
					t.Errorf("lines (-want +got):\n%s", diff)
				}
			} else {
				var ae *obd.AdapterError
				if !errors.As(err, &ae) || ae.Code != tt.code || !errors.Is(err, obd.ErrAdapter) {
					t.Fatalf("ParseReply(%q) = %v, %v; want code %s", tt.raw, r, err, tt.code)
				}
				if len(r.Lines) != 0 {
					t.Errorf("error reply kept lines %q", r.Lines)
				}
			}
			if r.Searching != tt.searching {
				t.Errorf("Searching = %v, want %v", r.Searching, tt.searching)
			}
		})
	}
}

// Every reply the adapter can give has its documented handling (README.md,
// "OBD replies").
func TestActionFor(t *testing.T) {
	tests := []struct {
		raw  string
		want obd.Action
	}{
		{"NO DATA", obd.Count}, {"?", obd.Count}, {"7F 01 12", obd.Count},
		{"CAN ERROR", obd.BackOff}, {"BUS INIT: ...ERROR", obd.BackOff}, {"FB ERROR", obd.BackOff},
		{"BUS ERROR", obd.BackOff}, {"UNABLE TO CONNECT", obd.BackOff},
		{"BUS BUSY", obd.Retry}, {"DATA ERROR", obd.Retry}, {"41 0C <DATA ERROR", obd.Retry},
		{"STOPPED", obd.Retry}, {"BUFFER FULL", obd.Retry}, {"<RX ERROR", obd.Retry}, {"SEARCHING...", obd.Retry},
		{"LV RESET", obd.Reinit}, {"ERR94", obd.Reinit}, {"ERR93", obd.Reinit}, {"ACT ALERT", obd.Reinit}, {"LP ALERT", obd.Reinit},
	}
	for _, tt := range tests {
		_, err := obd.ParseReply([]byte(tt.raw+"\r\r"), "010C")
		if tt.raw == "7F 01 12" {
			err = &obd.AdapterError{Code: "negative_response", Text: tt.raw}
		}
		if got := obd.ActionFor(err); got != tt.want {
			t.Errorf("%q (%v): action %v, want %v", tt.raw, err, got, tt.want)
		}
	}
	if got := obd.ActionFor(fmt.Errorf("010C: %w", obd.ErrTimeout)); got != obd.Resync {
		t.Errorf("timeout: action %v, want resync", got)
	}
}
