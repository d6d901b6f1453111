package obd_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// SAE J2012: bits 15-14 pick P/C/B/U, 13-12 the first digit, then three hex
// digits. Worked out by hand.
func TestFormatDTC(t *testing.T) {
	tests := []struct {
		hi, lo byte
		want   string
	}{
		{0x01, 0x43, "P0143"}, // 00 00 0001 0100 0011
		{0x03, 0x01, "P0301"},
		{0x11, 0x23, "P1123"}, // 00 01 ...
		{0x2A, 0xBC, "P2ABC"}, // 00 10 1010
		{0x3F, 0xFF, "P3FFF"},
		{0x41, 0x23, "C0123"}, // 01 00
		{0x52, 0x34, "C1234"}, // 01 01 0010
		{0x92, 0x34, "B1234"}, // 10 01 0010
		{0x80, 0x01, "B0001"},
		{0xC1, 0x58, "U0158"}, // 11 00 0001
		{0xF0, 0x00, "U3000"}, // 11 11 0000
	}
	for _, tt := range tests {
		if got := obd.FormatDTC(tt.hi, tt.lo); got != tt.want {
			t.Errorf("FormatDTC(%02X %02X) = %s, want %s", tt.hi, tt.lo, got, tt.want)
		}
	}
}

func TestDTCs(t *testing.T) {
	tests := []struct {
		name   string
		format obd.Format
		mode   byte
		msgs   []obd.Message
		want   []string
		code   string
	}{
		{"CAN, two codes", can11, obd.DTCStored, []obd.Message{msg(0x7E8, "43 02 01 43 01 96")}, []string{"P0143", "P0196"}, ""},
		{"CAN, none", can11, obd.DTCStored, []obd.Message{msg(0x7E8, "43 00")}, []string{}, ""},
		{"CAN, multi-frame, four codes", can11, obd.DTCPending,
			[]obd.Message{msg(0x7E8, "47 04 03 01 03 02 01 71 52 34")}, []string{"C1234", "P0171", "P0301", "P0302"}, ""},
		{"CAN, several ECUs (python-OBD #254)", can29, obd.DTCPending, []obd.Message{
			msg(0x18DAF128, "47 00"), msg(0x18DAF118, "47 00"), msg(0x18DAF140, "47 00"), msg(0x18DAF111, "47 02 22 6D 22 6E"),
		}, []string{"P226D", "P226E"}, ""},
		{"CAN, the same code from two ECUs once", can11, obd.DTCPermanent,
			[]obd.Message{msg(0x7E8, "4A 01 03 01"), msg(0x7E9, "4A 01 03 01")}, []string{"P0301"}, ""},
		{"CAN, count larger than the data", can11, obd.DTCStored, []obd.Message{msg(0x7E8, "43 03 01 43")}, nil, "short_reply"},
		{"legacy, two messages, padding", isoH0, obd.DTCStored, []obd.Message{
			msg(0, "43 03 01 03 02 01 71"), msg(0, "43 52 34 00 00 00 00"),
		}, []string{"C1234", "P0171", "P0301", "P0302"}, ""},
		{"legacy, none", isoH0, obd.DTCStored, []obd.Message{msg(0, "43 00 00 00 00 00 00")}, []string{}, ""},
		{"negative response", can11, obd.DTCPermanent, []obd.Message{msg(0x7E8, "7F 0A 11")}, nil, "negative_response"},
		{"answer to another mode", can11, obd.DTCStored, []obd.Message{msg(0x7E8, "47 00")}, nil, "mismatch"},
		{"unknown protocol reads the length", obd.Format{}, obd.DTCStored, []obd.Message{
			msg(0, "43 01 01 43"), msg(0, "43 01 96 00 00 00 00"),
		}, []string{"P0143", "P0196"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := obd.DTCs(tt.msgs, tt.mode, tt.format)
			if tt.code != "" {
				if !isCode(err, tt.code) {
					t.Fatalf("DTCs = %v, %v; want %s", got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
