package obd_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// "1D4GP00R55B123456" is the ELM327 data sheet's example; the bytes are its
// ASCII codes.
func TestVIN(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		f     obd.Format
		want  string
		code  string
	}{
		{"CAN with headers", []string{
			"7E8 10 14 49 02 01 31 44 34", "7E8 21 47 50 30 30 52 35 35", "7E8 22 42 31 32 33 34 35 36",
		}, can11, "1D4GP00R55B123456", ""},
		{"CAN with headers, spaces off", []string{
			"7E81014490201314434", "7E82147503030523535", "7E82242313233343536",
		}, can11, "1D4GP00R55B123456", ""},
		{"CAN, a consecutive frame one digit short", []string{
			"7E81014490201314434", "7E8214750303052353", "7E82242313233343536",
		}, can11, "", "mismatch"}, // read as a headerless line: not a VIN
		{"CAN without headers, frame indices", []string{
			"014", "0: 49 02 01 31 44 34", "1: 47 50 30 30 52 35 35", "2: 42 31 32 33 34 35 36",
		}, can11H0, "1D4GP00R55B123456", ""},
		{"CAN 29-bit, two ECUs, the engine's first", []string{
			"18 DA F1 18 10 14 49 02 01 57 50 30",
			"18 DA F1 10 10 14 49 02 01 31 44 34",
			"18 DA F1 18 21 5A 5A 5A 39 39 5A 54",
			"18 DA F1 10 21 47 50 30 30 52 35 35",
			"18 DA F1 18 22 53 33 39 30 30 30 30",
			"18 DA F1 10 22 42 31 32 33 34 35 36",
		}, can29, "1D4GP00R55B123456", ""},
		{"CAN, number padded with zeros", []string{
			"7E8 10 17 49 02 01 00 00 00", "7E8 21 31 44 34 47 50 30 30", "7E8 22 52 35 35 42 31 32 33", "7E8 23 34 35 36 00 00 00 00",
		}, can11, "1D4GP00R55B123456", ""},
		{"line format (J1850 / ISO 9141), data sheet", []string{
			"49 02 01 00 00 00 31", "49 02 02 44 34 47 50", "49 02 03 30 30 52 35", "49 02 04 35 42 31 32", "49 02 05 33 34 35 36",
		}, isoH0, "1D4GP00R55B123456", ""},
		{"line format out of order, with headers", []string{
			"48 6B 10 49 02 02 44 34 47 50 00", "48 6B 10 49 02 01 00 00 00 31 00", "48 6B 10 49 02 03 30 30 52 35 00",
			"48 6B 10 49 02 05 33 34 35 36 00", "48 6B 10 49 02 04 35 42 31 32 00",
		}, iso, "1D4GP00R55B123456", ""},
		{"line format, a message missing", []string{
			"49 02 01 00 00 00 31", "49 02 02 44 34 47 50", "49 02 04 35 42 31 32", "49 02 05 33 34 35 36",
		}, isoH0, "", "frame"},
		{"a letter O is not in a VIN", []string{
			"7E8 10 14 49 02 01 31 44 34", "7E8 21 47 50 4F 30 52 35 35", "7E8 22 42 31 32 33 34 35 36",
		}, can11, "", "bad_vin"},
		{"sixteen characters", []string{
			"7E8 10 13 49 02 01 31 44 34", "7E8 21 47 50 30 30 52 35 35", "7E8 22 42 31 32 33 34 35 00",
		}, can11, "", "bad_vin"},
		{"an answer to something else", []string{"7E8 03 41 0D 32"}, can11, "", "mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, _, _ := obd.ParseMessages(tt.lines, tt.f)
			got, err := obd.VIN(msgs)
			if tt.code != "" {
				if !isCode(err, tt.code) && !(tt.code == "frame" && isCode(err, "empty")) {
					t.Fatalf("VIN = %q, %v; want %s", got, err, tt.code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("VIN = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
