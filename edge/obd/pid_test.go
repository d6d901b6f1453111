package obd_test

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// Decode vectors worked out by hand from the SAE J1979 formulas (A, B, C, D
// are the data bytes in order). They share nothing with the simulator's
// encoder.
func TestDecode(t *testing.T) {
	tests := []struct {
		pid  byte
		data string
		want []obd.Value
	}{
		// 01: A7 = MIL, A6..A0 = confirmed DTC count; B, C, D readiness.
		{0x01, "83 07 65 00", []obd.Value{{"mil", "", 1}, {"dtc_count", "count", 3}}},                        // 0x83 = 1000 0011
		{0x01, "00 07 65 00", []obd.Value{{"mil", "", 0}, {"dtc_count", "count", 0}}},                        //
		{0x01, "7F 00 00 00", []obd.Value{{"mil", "", 0}, {"dtc_count", "count", 127}}},                      // 0111 1111
		{0x04, "FF", []obd.Value{{"engine_load", "%", 100}}},                                                 // 255·100/255
		{0x04, "80", []obd.Value{{"engine_load", "%", 12800.0 / 255}}},                                       // 50.196… %
		{0x05, "7B", []obd.Value{{"coolant_temp", "°C", 83}}},                                                // 123 − 40
		{0x05, "00", []obd.Value{{"coolant_temp", "°C", -40}}},                                               //
		{0x05, "FF", []obd.Value{{"coolant_temp", "°C", 215}}},                                               //
		{0x06, "9A", []obd.Value{{"short_fuel_trim_bank1", "%", 20.3125}}},                                   // (154 − 128)·100/128
		{0x06, "80 60", []obd.Value{{"short_fuel_trim_bank1", "%", 0}, {"short_fuel_trim_bank3", "%", -25}}}, // (96−128)·100/128
		{0x07, "00", []obd.Value{{"long_fuel_trim_bank1", "%", -100}}},                                       // (0 − 128)·100/128
		{0x07, "FF", []obd.Value{{"long_fuel_trim_bank1", "%", 99.21875}}},                                   // 127·100/128
		{0x08, "84", []obd.Value{{"short_fuel_trim_bank2", "%", 3.125}}},                                     // 4·100/128
		{0x09, "7C 88", []obd.Value{{"long_fuel_trim_bank2", "%", -3.125}, {"long_fuel_trim_bank4", "%", 6.25}}},
		{0x0A, "64", []obd.Value{{"fuel_pressure", "kPa", 300}}},       // 3·100
		{0x0A, "FF", []obd.Value{{"fuel_pressure", "kPa", 765}}},       // 3·255
		{0x0B, "65", []obd.Value{{"intake_pressure", "kPa", 101}}},     //
		{0x0C, "1A F8", []obd.Value{{"engine_rpm", "rpm", 1726}}},      // (256·26 + 248)/4 = 6904/4
		{0x0C, "0F A0", []obd.Value{{"engine_rpm", "rpm", 1000}}},      // (256·15 + 160)/4 = 4000/4
		{0x0C, "14 5F", []obd.Value{{"engine_rpm", "rpm", 1303.75}}},   // (5120 + 95)/4 = 5215/4
		{0x0C, "FF FF", []obd.Value{{"engine_rpm", "rpm", 16383.75}}},  // 65535/4
		{0x0D, "32", []obd.Value{{"vehicle_speed", "km/h", 50}}},       //
		{0x0D, "FF", []obd.Value{{"vehicle_speed", "km/h", 255}}},      //
		{0x0E, "80", []obd.Value{{"timing_advance", "°", 0}}},          // 128/2 − 64
		{0x0E, "00", []obd.Value{{"timing_advance", "°", -64}}},        //
		{0x0E, "FF", []obd.Value{{"timing_advance", "°", 63.5}}},       // 255/2 − 64
		{0x0F, "46", []obd.Value{{"intake_temp", "°C", 30}}},           // 70 − 40
		{0x10, "01 F4", []obd.Value{{"maf", "g/s", 5}}},                // 500/100
		{0x10, "FF FF", []obd.Value{{"maf", "g/s", 655.35}}},           //
		{0x11, "FF", []obd.Value{{"throttle_pos", "%", 100}}},          //
		{0x11, "26", []obd.Value{{"throttle_pos", "%", 3800.0 / 255}}}, // 38·100/255
		{0x1F, "01 2C", []obd.Value{{"run_time", "s", 300}}},           // 256 + 44
		{0x1F, "FF FF", []obd.Value{{"run_time", "s", 65535}}},         //
		{0x21, "00 64", []obd.Value{{"distance_w_mil", "km", 100}}},    //
		{0x2F, "80", []obd.Value{{"fuel_level", "%", 12800.0 / 255}}},  //
		{0x31, "01 00", []obd.Value{{"distance_since_dtc_clear", "km", 256}}},
		{0x33, "65", []obd.Value{{"barometric_pressure", "kPa", 101}}},      //
		{0x42, "30 D4", []obd.Value{{"control_module_voltage", "V", 12.5}}}, // (256·48 + 212)/1000 = 12500/1000
		{0x42, "37 78", []obd.Value{{"control_module_voltage", "V", 14.2}}}, // (256·55 + 120)/1000 = 14200/1000
		{0x46, "3C", []obd.Value{{"ambient_temp", "°C", 20}}},               // 60 − 40
		{0x5C, "82", []obd.Value{{"oil_temp", "°C", 90}}},                   // 130 − 40
		{0x5E, "00 64", []obd.Value{{"fuel_rate", "L/h", 5}}},               // 100/20
		{0x5E, "01 2C", []obd.Value{{"fuel_rate", "L/h", 15}}},              // 300/20
		{0xA6, "00 07 5B CD", []obd.Value{{"odometer", "km", 48225.3}}},     // (7·65536 + 91·256 + 205)/10 = 482253/10
		{0xA6, "FF FF FF FF", []obd.Value{{"odometer", "km", 429496729.5}}}, // (2³² − 1)/10
		{0x0D, "32 AA", []obd.Value{{"vehicle_speed", "km/h", 50}}},         // a padding byte is ignored
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	for _, tt := range tests {
		p, ok := obd.Lookup(tt.pid)
		if !ok {
			t.Errorf("PID %02X is not in the table", tt.pid)
			continue
		}
		got, err := p.Values(msg(0, tt.data).Data)
		if err != nil {
			t.Errorf("PID %02X % s: %v", tt.pid, tt.data, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("PID %02X %s (-want +got):\n%s", tt.pid, tt.data, diff)
		}
		if v, _ := p.Decode(msg(0, tt.data).Data); math.Abs(v-tt.want[0].Value) > 1e-9 || p.Name() != tt.want[0].Name || p.Unit() != tt.want[0].Unit {
			t.Errorf("PID %02X primary = %v %s %s, want %v", tt.pid, v, p.Name(), p.Unit(), tt.want[0])
		}
	}
	// Every PID of edge/README.md ("Values") is in the table.
	for _, pid := range []byte{0x01, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11,
		0x1F, 0x21, 0x2F, 0x31, 0x33, 0x42, 0x46, 0x5C, 0x5E, 0xA6} {
		if _, ok := obd.Lookup(pid); !ok {
			t.Errorf("PID %02X missing from the table", pid)
		}
	}
	p, _ := obd.Lookup(0x0C)
	if _, err := p.Decode([]byte{0x1A}); !isCode(err, "short_reply") {
		t.Errorf("one byte for 0C: %v", err)
	}
}

func isCode(err error, code string) bool {
	var ae *obd.AdapterError
	return errors.As(err, &ae) && ae.Code == code
}

func TestMode01(t *testing.T) {
	tests := []struct {
		name string
		msgs []obd.Message
		req  []byte
		want map[byte]string
		code string
	}{
		{"single", []obd.Message{msg(0, "41 0C 1A F8")}, []byte{0x0C}, map[byte]string{0x0C: "1A F8"}, ""},
		{"engine ECU wins", []obd.Message{msg(0x7E9, "41 0D 31"), msg(0x7E8, "41 0D 32")}, []byte{0x0D}, map[byte]string{0x0D: "32"}, ""},
		{"lowest address when no engine ECU", []obd.Message{msg(0x7EA, "41 0D 33"), msg(0x7E9, "41 0D 31")}, []byte{0x0D}, map[byte]string{0x0D: "31"}, ""},
		{"multi-PID split by the table", []obd.Message{msg(0x7E8, "41 0C 1A F8 0D 32 05 7B A6 00 07 5B CD")},
			[]byte{0x0C, 0x0D, 0x05, 0xA6}, map[byte]string{0x0C: "1A F8", 0x0D: "32", 0x05: "7B", 0xA6: "00 07 5B CD"}, ""},
		{"multi-PID in another order, one missing", []obd.Message{msg(0x7E8, "41 05 7B 0C 1A F8")},
			[]byte{0x0C, 0x0D, 0x05}, map[byte]string{0x0C: "1A F8", 0x05: "7B"}, ""},
		{"multi-PID from two ECUs", []obd.Message{msg(0x7E9, "41 0D 31"), msg(0x7E8, "41 0C 1A F8 0D 32")},
			[]byte{0x0C, 0x0D}, map[byte]string{0x0C: "1A F8", 0x0D: "32"}, ""},
		{"multi-PID cut short keeps what is whole", []obd.Message{msg(0x7E8, "41 0C 1A F8 0D")},
			[]byte{0x0C, 0x0D}, map[byte]string{0x0C: "1A F8"}, ""},
		{"stale answer to another PID", []obd.Message{msg(0, "41 0D 32")}, []byte{0x0C}, nil, "mismatch"},
		{"another mode", []obd.Message{msg(0, "42 0C 1A F8")}, []byte{0x0C}, nil, "mismatch"},
		{"negative response", []obd.Message{msg(0x7E8, "7F 01 12")}, []byte{0x0C}, nil, "negative_response"},
		{"stale answer skipped", []obd.Message{msg(0, "41 0D 32"), msg(0, "41 0C 1A F8")}, []byte{0x0C}, map[byte]string{0x0C: "1A F8"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := obd.Mode01(tt.msgs, tt.req)
			if tt.code != "" {
				if !isCode(err, tt.code) {
					t.Fatalf("Mode01 = %v, %v; want %s", got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[byte][]byte{}
			for k, v := range tt.want {
				want[k] = msg(0, v).Data
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Support bitmaps decoded by hand: 41 00 BE 3E B8 11 is
// 1011 1110 | 0011 1110 | 1011 1000 | 0001 0001: PIDs 01 03-07, 0B-0F, 11 13
// 14 15, 1C, and 20 (the next range).
func TestSupported(t *testing.T) {
	got, more, err := obd.Supported([]obd.Message{msg(0x7E8, "41 00 BE 3E B8 11"), msg(0x7E9, "41 00 80 00 00 00")}, 0x00)
	want := []byte{0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x11, 0x13, 0x14, 0x15, 0x1C}
	if err != nil || !more || !cmp.Equal(want, got) {
		t.Errorf("Supported = % X, %v, %v; want % X, true", got, more, err, want)
	}
	// 41 A0 04 00 00 00: 0000 0100 → A6; no next range.
	got, more, err = obd.Supported([]obd.Message{msg(0x7E8, "41 A0 04 00 00 00")}, 0xA0)
	if err != nil || more || !cmp.Equal([]byte{0xA6}, got) {
		t.Errorf("Supported(A0) = % X, %v, %v", got, more, err)
	}
	if _, _, err := obd.Supported([]obd.Message{msg(0, "41 20 80 00 00 00")}, 0x00); !isCode(err, "mismatch") {
		t.Errorf("the answer for 20 taken for 00: %v", err)
	}
}

func TestParsePID(t *testing.T) {
	for _, s := range []string{"0C", "0c", "0D", "05", "42", "A6", "01"} {
		if _, err := obd.ParsePID(s); err != nil {
			t.Errorf("ParsePID(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "C", "00C", "ZZ", "FF", "0x0C", "00", "20"} {
		if p, err := obd.ParsePID(s); err == nil {
			t.Errorf("ParsePID(%q) = %02X, want an error", s, p)
		}
	}
}
