package obd_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// FuzzReply feeds arbitrary adapter output to ParseReply and DecodeMode01.
// Neither may panic; an error reply never yields lines; a decoded value is
// finite and within what its PID's formula can give.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"SEARCHING...\r410C1AF8\r\r", "NO DATA\r\r", "410C1AF8 <DATA ERROR\r", "\x00\x00410D32\r",
		"41 05 7B \r\r", "?\r", "410C1AF8\r410C1AF9\r\r", "ATZ\r\r\rELM327 v1.5\r\r",
	} {
		f.Add([]byte(s), byte(0x0C))
	}
	f.Fuzz(func(t *testing.T, raw []byte, pid byte) {
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
		if _, ok := obd.Lookup(pid); !ok {
			return
		}
		v, err := obd.DecodeMode01(r.Lines, pid)
		if err != nil {
			if !errors.Is(err, obd.ErrAdapter) {
				t.Fatalf("decode error %v does not wrap ErrAdapter", err)
			}
			return
		}
		// Every formula in the table maps bytes into [-128, 65535].
		if math.IsNaN(v) || v < -128 || v > 65535 {
			t.Fatalf("PID %02X decoded to %v from %q", pid, v, r.Lines)
		}
	})
}
