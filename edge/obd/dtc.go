package obd

import (
	"fmt"
	"slices"
)

// DTC kinds: the Mode that reads them.
const (
	DTCStored    byte = 0x03 // confirmed codes; the ones that light the MIL
	DTCPending   byte = 0x07 // detected in this or the last drive cycle, not confirmed yet
	DTCPermanent byte = 0x0A // cannot be cleared by a scan tool
)

// DTCKind names a DTC mode for events and logs: "stored", "pending" or
// "permanent".
func DTCKind(mode byte) string {
	switch mode {
	case DTCStored:
		return "stored"
	case DTCPending:
		return "pending"
	case DTCPermanent:
		return "permanent"
	}
	return fmt.Sprintf("mode %02X", mode)
}

// FormatDTC writes the two bytes of a trouble code as SAE J2012 does: the top
// two bits pick the system (P powertrain, C chassis, B body, U network), the
// next two the first digit, the remaining twelve bits three hex digits.
// 0x0143 is P0143, 0x4123 C0123, 0x9234 B1234, 0xC158 U0158.
func FormatDTC(hi, lo byte) string {
	return fmt.Sprintf("%c%d%X%02X", "PCBU"[hi>>6], hi>>4&0x3, hi&0xF, lo)
}

// DTCs reads the trouble codes in the answers to a Mode 03, 07 or 0A request
// from every ECU and returns them sorted, each once. On CAN the response
// carries a count byte and then two bytes per code, in as many frames as it
// takes; on the older protocols each message carries three codes, padded with
// 00 00, and there are as many messages as needed. "43 00" (CAN) or a
// message of zeros says "no codes": the result is empty and err nil. err is
// an *AdapterError "mismatch", "negative_response" or "short_reply" when no
// ECU gave a usable answer.
func DTCs(msgs []Message, mode byte, f Format) ([]string, error) {
	var out []string
	var first error
	note := func(code string, d []byte) {
		if first == nil {
			first = &AdapterError{Code: code, Text: fmt.Sprintf("% X", d)}
		}
	}
	answered := false
	for _, m := range msgs {
		d := m.Data
		switch {
		case len(d) >= 2 && d[0] == 0x7F && d[1] == mode:
			note("negative_response", d)
			continue
		case len(d) < 1 || d[0] != 0x40+mode:
			note("mismatch", d)
			continue
		}
		pairs := d[1:]
		if f.CAN() || (f.Protocol == ProtoUnknown && len(d)%2 == 0) {
			// Count byte first. An unknown protocol with an even length
			// (service + count + pairs) reads as CAN too.
			if len(d) < 2 || len(d) < 2+2*int(d[1]) {
				note("short_reply", d)
				continue
			}
			pairs = d[2 : 2+2*int(d[1])]
		} else if len(pairs)%2 != 0 {
			note("short_reply", d)
			continue
		}
		answered = true
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i] == 0 && pairs[i+1] == 0 {
				continue // padding
			}
			if c := FormatDTC(pairs[i], pairs[i+1]); !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	if !answered {
		if first == nil {
			first = &AdapterError{Code: "empty", Text: "no message"}
		}
		return nil, first
	}
	slices.Sort(out)
	return out, nil
}
