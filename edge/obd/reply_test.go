package obd_test

import (
	"errors"
	"math"
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
		{"<DATA ERROR", "410C1AF8 <DATA ERROR\r\r", "010C", nil, false, "data_error"}, // see below
		{"DATA ERROR", "DATA ERROR\r\r", "010C", nil, false, "data_error"},
		{"<RX ERROR", "<RX ERROR\r\r", "010C", nil, false, "rx_error"},
		{"STOPPED", "STOPPED\r\r", "010C", nil, false, "stopped"},
		{"BUFFER FULL", "BUFFER FULL\r\r", "010C", nil, false, "buffer_full"},
		{"LV RESET", "LV RESET\r\r", "010C", nil, false, "lv_reset"},
		{"ACT ALERT", "ACT ALERT\r\r", "010C", nil, false, "act_alert"},
		{"ERR94", "ERR94\r\r", "010C", nil, false, "err"},
		{"error after data", "410C1AF8\rCAN ERROR\r\r", "010C", nil, false, "can_error"},
		{"only searching", "SEARCHING...\r\r", "010C", nil, true, "searching"},
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

// Decode vectors worked out by hand from the SAE J1979 formulas (A, B are the
// first and second data bytes).
func TestDecodeMode01(t *testing.T) {
	tests := []struct {
		line string
		pid  byte
		want float64
	}{
		{"410C1AF8", 0x0C, 1726},            // (256·26 + 248)/4 = 6904/4
		{"41 0C 0F A0", 0x0C, 1000},         // (256·15 + 160)/4 = 4000/4
		{"410CFFFF", 0x0C, 16383.75},        // 65535/4
		{"410C0000", 0x0C, 0},               //
		{"410D32", 0x0D, 50},                // A = 0x32 = 50 km/h
		{"410DFF", 0x0D, 255},               //
		{"41057B", 0x05, 83},                // 123 − 40 °C
		{"410500", 0x05, -40},               // 0 − 40
		{"4105FF", 0x05, 215},               // 255 − 40
		{"4104FF", 0x04, 100},               // 255·100/255 %
		{"410480", 0x04, 128.0 * 100 / 255}, // 50.196… %
		{"41069A", 0x06, 20.3125},           // (154 − 128)·100/128 %
		{"410700", 0x07, -100},              // (0 − 128)·100/128
		{"410A64", 0x0A, 300},               // 3·100 kPa
		{"410B65", 0x0B, 101},               // kPa
		{"410E80", 0x0E, 0},                 // 128/2 − 64 °
		{"410F46", 0x0F, 30},                // 70 − 40 °C
		{"411001F4", 0x10, 5},               // (256·1 + 244)/100 = 500/100 g/s
		{"4111FF", 0x11, 100},               // %
		{"411F012C", 0x1F, 300},             // 256·1 + 44 s
		{"41210064", 0x21, 100},             // km
		{"412F80", 0x2F, 128.0 * 100 / 255}, // %
		{"41310100", 0x31, 256},             // km
		{"413365", 0x33, 101},               // kPa
		{"414230D4", 0x42, 12.5},            // (256·48 + 212)/1000 = 12500/1000 V
		{"41463C", 0x46, 20},                // 60 − 40 °C
		{"415C82", 0x5C, 90},                // 130 − 40 °C
		{"410D32AA", 0x0D, 50},              // extra byte (padding) ignored
		{"410D32", 0x0D, 50},                // again, a line on its own
		{"410c1af8", 0x0C, 1726},            // lower case
	}
	for _, tt := range tests {
		got, err := obd.DecodeMode01([]string{tt.line}, tt.pid)
		if err != nil {
			t.Errorf("DecodeMode01(%q, %02X): %v", tt.line, tt.pid, err)
			continue
		}
		if math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("DecodeMode01(%q, %02X) = %v, want %v", tt.line, tt.pid, got, tt.want)
		}
	}
	bad := []struct {
		lines []string
		pid   byte
		code  string
	}{
		{[]string{"410D32"}, 0x0C, "mismatch"},   // answer to another PID
		{[]string{"420C1AF8"}, 0x0C, "mismatch"}, // another mode
		{[]string{"410C1A"}, 0x0C, "short_reply"},
		{[]string{"410C1AF"}, 0x0C, "garbage"}, // odd digits
		{[]string{"41 0D ZZ"}, 0x0D, "garbage"},
		{[]string{"OK"}, 0x0D, "garbage"},
		{nil, 0x0D, "empty"},
	}
	for _, tt := range bad {
		v, err := obd.DecodeMode01(tt.lines, tt.pid)
		var ae *obd.AdapterError
		if !errors.As(err, &ae) || ae.Code != tt.code {
			t.Errorf("DecodeMode01(%q, %02X) = %v, %v; want code %s", tt.lines, tt.pid, v, err, tt.code)
		}
	}
	if v, err := obd.DecodeMode01([]string{"BUS?", "410D32"}, 0x0D); err != nil || v != 50 {
		t.Errorf("a good line after a bad one: %v, %v; want 50", v, err)
	}
	if _, err := obd.DecodeMode01([]string{"41FF00"}, 0xFF); err == nil {
		t.Error("a PID outside the table decoded")
	}
}

func TestParsePID(t *testing.T) {
	for _, s := range []string{"0C", "0c", "0D", "05", "42"} {
		if _, err := obd.ParsePID(s); err != nil {
			t.Errorf("ParsePID(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "C", "00C", "ZZ", "FF", "0x0C"} {
		if p, err := obd.ParsePID(s); err == nil {
			t.Errorf("ParsePID(%q) = %02X, want an error", s, p)
		}
	}
}
