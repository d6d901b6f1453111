package obd_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

var formats = []obd.Format{can11, can29, can11H0, iso, isoH0, unknown, {}}

// FuzzReply feeds arbitrary adapter output through the whole reply path:
// ParseReply, ParseMessages, then the Mode 01, support, DTC and VIN readers.
// None may panic; an error reply never yields lines; every error wraps
// ErrAdapter; a decoded value is finite and within what its PID's formula can
// give.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"SEARCHING...\r410C1AF8\r\r", "NO DATA\r\r", "410C1AF8 <DATA ERROR\r", "\x00\x00410D32\r",
		"41 05 7B \r\r", "?\r", "410C1AF8\r410C1AF9\r\r", "ATZ\r\r\rELM327 v1.5\r\r",
		"7E8 10 08 41 0C 1A F8 0D 32\r7E8 21 05 7B 00 00 00 00 00\r", "014\r0: 49 02 01 31 44 34\r1: 47 50 30 30 52 35 35\r2: 42 31 32 33 34 35 36\r",
		"48 6B 10 43 03 01 03 02 01 71 81\r", "18 DA F1 11 06 47 02 22 6D 22 6E\r", "7E8 06 41 00 BE 3E B8 11 00\r",
	} {
		f.Add([]byte(s), byte(0x0C), byte(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, pid, fi byte) {
		r, err := obd.ParseReply(raw, fmt.Sprintf("01%02X", pid))
		if err != nil {
			if !errors.Is(err, obd.ErrAdapter) {
				t.Fatalf("error %v does not wrap ErrAdapter", err)
			}
			if len(r.Lines) != 0 {
				t.Fatalf("error reply with lines %q", r.Lines)
			}
			return
		}
		for _, l := range r.Lines {
			if l == "" || strings.ContainsAny(l, "\r\n>") {
				t.Fatalf("line %q", l)
			}
		}
		format := formats[int(fi)%len(formats)]
		msgs, dropped, err := obd.ParseMessages(r.Lines, format)
		if (err != nil) != (dropped > 0) || (err != nil && !errors.Is(err, obd.ErrAdapter)) {
			t.Fatalf("ParseMessages: %d dropped, err %v", dropped, err)
		}
		checkErr := func(what string, err error) {
			if err != nil && !errors.Is(err, obd.ErrAdapter) {
				t.Fatalf("%s: error %v does not wrap ErrAdapter", what, err)
			}
		}
		if vin, err := obd.VIN(msgs); err == nil && len(vin) != 17 {
			t.Fatalf("VIN %q", vin)
		} else {
			checkErr("VIN", err)
		}
		codes, err := obd.DTCs(msgs, obd.DTCStored, format)
		checkErr("DTCs", err)
		for _, c := range codes {
			if len(c) != 5 || !strings.Contains("PCBU", c[:1]) {
				t.Fatalf("DTC %q", c)
			}
		}
		_, _, err = obd.Supported(msgs, 0)
		checkErr("Supported", err)
		if _, ok := obd.Lookup(pid); !ok {
			return
		}
		data, err := obd.Mode01(msgs, []byte{pid, 0x0D, 0x05})
		checkErr("Mode01", err)
		for k, d := range data {
			q, _ := obd.Lookup(k)
			vs, err := q.Values(d)
			checkErr("Values", err)
			for _, v := range vs {
				// Every formula in the table maps bytes into [-128, 2³²/10].
				if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || v.Value < -128 || v.Value > 429496729.5 {
					t.Fatalf("PID %02X decoded to %v from % X", k, v, d)
				}
			}
		}
	})
}

// FuzzVIN feeds arbitrary messages to the VIN assembler: no panic, and a VIN
// only of 17 valid characters.
func FuzzVIN(f *testing.F) {
	f.Add([]byte("\x49\x02\x01\x31\x44\x34\x47\x50\x30\x30\x52\x35\x35\x42\x31\x32\x33\x34\x35\x36"), []byte{}, uint8(0))
	f.Add([]byte("\x49\x02\x01\x00\x00\x00\x31"), []byte("\x49\x02\x02\x44\x34\x47\x50"), uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		msgs := []obd.Message{{ECU: 0x7E8, Data: a}, {ECU: 0x7E8 + uint32(split%2), Data: b}}
		vin, err := obd.VIN(msgs)
		if err != nil {
			if !errors.Is(err, obd.ErrAdapter) {
				t.Fatalf("error %v does not wrap ErrAdapter", err)
			}
			return
		}
		if len(vin) != 17 || strings.ContainsAny(vin, "IOQ") {
			t.Fatalf("VIN %q", vin)
		}
	})
}

// FuzzDTCs feeds arbitrary messages to the trouble code reader: no panic,
// well-formed codes, each once.
func FuzzDTCs(f *testing.F) {
	f.Add([]byte("\x43\x02\x01\x43\x01\x96"), byte(0x03), byte(0))
	f.Add([]byte("\x43\x01\x43\x01\x96\x00\x00"), byte(0x03), byte(4))
	f.Fuzz(func(t *testing.T, d []byte, mode, fi byte) {
		codes, err := obd.DTCs([]obd.Message{{Data: d}}, mode, formats[int(fi)%len(formats)])
		if err != nil {
			if !errors.Is(err, obd.ErrAdapter) {
				t.Fatalf("error %v does not wrap ErrAdapter", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if len(c) != 5 || seen[c] || !strings.Contains("PCBU", c[:1]) {
				t.Fatalf("codes %q", codes)
			}
			seen[c] = true
		}
	})
}
