package obd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PID describes one Mode 01 parameter: how many data bytes its reply carries
// and how SAE J1979 turns them (A, B, ...) into values.
//
// Most PIDs carry one value. A few carry several (01: MIL and trouble code
// count; 06-09: the fuel trim of a second bank when the engine has one). The
// first value is the PID's primary value: it is the one an OBD sample carries
// on the wire (telemetry.OBDSample has one value per PID). All of them are
// listed by Values, and obd-probe prints each.
type PID struct {
	Code byte
	// Bytes is how many data bytes a reply carries; MaxBytes is more than
	// Bytes for the PIDs whose reply may be longer (06-09 with a second
	// bank). A multi-PID request never includes those: their length would
	// be ambiguous.
	Bytes, MaxBytes int
	fields          []field
}

// field is one value in a PID's reply.
type field struct {
	name, unit string
	need       int // data bytes the reply must have for this value
	decode     func(d []byte) float64
}

// Value is one decoded value.
type Value struct {
	Name  string
	Unit  string
	Value float64
}

// Name returns the name of the PID's primary value, e.g. "engine_rpm".
func (p PID) Name() string { return p.fields[0].name }

// Unit returns the unit of the PID's primary value, e.g. "rpm".
func (p PID) Unit() string { return p.fields[0].unit }

// Decode returns the PID's primary value. It returns an *AdapterError
// "short_reply" for fewer data bytes than the PID needs; extra bytes are
// ignored.
func (p PID) Decode(d []byte) (float64, error) {
	if len(d) < p.Bytes {
		return 0, &AdapterError{Code: "short_reply", Text: fmt.Sprintf("PID %02X: %d data bytes, want %d", p.Code, len(d), p.Bytes)}
	}
	return p.fields[0].decode(d), nil
}

// Values returns every value the data bytes carry, the primary first; errors
// as for Decode.
func (p PID) Values(d []byte) ([]Value, error) {
	if _, err := p.Decode(d); err != nil {
		return nil, err
	}
	var out []Value
	for _, f := range p.fields {
		if len(d) >= f.need {
			out = append(out, Value{Name: f.name, Unit: f.unit, Value: f.decode(d)})
		}
	}
	return out, nil
}

// The J1979 formulas. A is d[0], B is d[1], and so on.
func a(d []byte) float64        { return float64(d[0]) }
func ab(d []byte) float64       { return float64(int(d[0])<<8 | int(d[1])) }
func percentA(d []byte) float64 { return float64(d[0]) * 100 / 255 }
func celsiusA(d []byte) float64 { return float64(d[0]) - 40 }
func trimA(d []byte) float64    { return (float64(d[0]) - 128) * 100 / 128 }
func trimB(d []byte) float64    { return (float64(d[1]) - 128) * 100 / 128 }

func one(code byte, name, unit string, n int, f func([]byte) float64) PID {
	return PID{Code: code, Bytes: n, MaxBytes: n, fields: []field{{name, unit, n, f}}}
}

// trims is a fuel trim PID: bank n in A, bank n+2 in an optional B.
func trims(code byte, kind string, bank int) PID {
	return PID{Code: code, Bytes: 1, MaxBytes: 2, fields: []field{
		{fmt.Sprintf("%s_fuel_trim_bank%d", kind, bank), "%", 1, trimA},
		{fmt.Sprintf("%s_fuel_trim_bank%d", kind, bank+2), "%", 2, trimB},
	}}
}

// pids is the Mode 01 decode table (SAE J1979 / ISO 15031-5 formulas). The
// test vectors in pid_test.go were worked out by hand from the standard.
var pids = []PID{
	{Code: 0x01, Bytes: 4, MaxBytes: 4, fields: []field{
		{"mil", "", 1, func(d []byte) float64 { return float64(d[0] >> 7) }},
		{"dtc_count", "count", 1, func(d []byte) float64 { return float64(d[0] & 0x7F) }},
	}},
	one(0x04, "engine_load", "%", 1, percentA),
	one(0x05, "coolant_temp", "°C", 1, celsiusA),
	trims(0x06, "short", 1),
	trims(0x07, "long", 1),
	trims(0x08, "short", 2),
	trims(0x09, "long", 2),
	one(0x0A, "fuel_pressure", "kPa", 1, func(d []byte) float64 { return 3 * a(d) }),
	one(0x0B, "intake_pressure", "kPa", 1, a),
	one(0x0C, "engine_rpm", "rpm", 2, func(d []byte) float64 { return ab(d) / 4 }),
	one(0x0D, "vehicle_speed", "km/h", 1, a),
	one(0x0E, "timing_advance", "°", 1, func(d []byte) float64 { return a(d)/2 - 64 }),
	one(0x0F, "intake_temp", "°C", 1, celsiusA),
	one(0x10, "maf", "g/s", 2, func(d []byte) float64 { return ab(d) / 100 }),
	one(0x11, "throttle_pos", "%", 1, percentA),
	one(0x1F, "run_time", "s", 2, ab),
	one(0x21, "distance_w_mil", "km", 2, ab),
	one(0x2F, "fuel_level", "%", 1, percentA),
	one(0x31, "distance_since_dtc_clear", "km", 2, ab),
	one(0x33, "barometric_pressure", "kPa", 1, a),
	one(0x42, "control_module_voltage", "V", 2, func(d []byte) float64 { return ab(d) / 1000 }),
	one(0x46, "ambient_temp", "°C", 1, celsiusA),
	one(0x5C, "oil_temp", "°C", 1, celsiusA),
	one(0x5E, "fuel_rate", "L/h", 2, func(d []byte) float64 { return ab(d) / 20 }),
	one(0xA6, "odometer", "km", 4, func(d []byte) float64 {
		return float64(uint32(d[0])<<24|uint32(d[1])<<16|uint32(d[2])<<8|uint32(d[3])) / 10
	}),
}

// Lookup returns the table entry of a Mode 01 PID.
func Lookup(code byte) (PID, bool) {
	i := slices.IndexFunc(pids, func(p PID) bool { return p.Code == code })
	if i < 0 {
		return PID{}, false
	}
	return pids[i], true
}

// Known returns the Mode 01 PIDs this package decodes, in order.
func Known() []byte {
	out := make([]byte, len(pids))
	for i, p := range pids {
		out[i] = p.Code
	}
	return out
}

// ParsePID reads a Mode 01 PID written as two hex digits ("0C") and checks
// that this package can decode it.
func ParsePID(s string) (byte, error) {
	v, err := strconv.ParseUint(s, 16, 8)
	if err != nil || len(s) != 2 {
		return 0, fmt.Errorf("PID %q: want two hex digits, e.g. 0C", s)
	}
	if _, ok := Lookup(byte(v)); !ok {
		known := make([]string, len(pids))
		for i, p := range pids {
			known[i] = fmt.Sprintf("%02X", p.Code)
		}
		return 0, fmt.Errorf("PID %q: not decodable (known: %s)", s, strings.Join(known, " "))
	}
	return byte(v), nil
}

// Mode01 finds the answers to a Mode 01 request for pids (one PID, or up to
// six in one request) among msgs and returns each PID's data bytes. When
// several ECUs answer, the engine computer's answer wins, then the lowest
// address's; messages that answer something else (a late reply to an earlier
// request, a negative response) are skipped. A multi-PID answer is split
// with the table's lengths. A PID nobody answered is missing from the map;
// err says why when the map is empty: an *AdapterError "mismatch",
// "negative_response", "short_reply" or "empty".
func Mode01(msgs []Message, req []byte) (map[byte][]byte, error) {
	out := map[byte][]byte{}
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, m := range byPreference(msgs) {
		d := m.Data
		switch {
		case len(d) >= 1 && d[0] == 0x7F:
			note(&AdapterError{Code: "negative_response", Text: fmt.Sprintf("% X", d)})
			continue
		case len(d) < 2 || d[0] != 0x41 || !slices.Contains(req, d[1]):
			note(&AdapterError{Code: "mismatch", Text: fmt.Sprintf("% X", d)})
			continue
		}
		if len(req) == 1 {
			if _, ok := out[d[1]]; !ok {
				out[d[1]] = d[2:]
			}
			continue
		}
		// 41 p1 data... p2 data...: walk it with the table's lengths.
		got := map[byte][]byte{}
		rest := d[1:]
		for len(rest) > 0 {
			p, ok := Lookup(rest[0])
			if !ok || !slices.Contains(req, rest[0]) || p.Bytes != p.MaxBytes || len(rest) < 1+p.Bytes {
				note(&AdapterError{Code: "short_reply", Text: fmt.Sprintf("% X", d)})
				break
			}
			got[rest[0]] = rest[1 : 1+p.Bytes]
			rest = rest[1+p.Bytes:]
		}
		for k, v := range got {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	if len(out) == 0 {
		if first == nil {
			first = &AdapterError{Code: "empty", Text: "no message"}
		}
		return nil, first
	}
	return out, nil
}

// Supported reads the answers to a support request (0100, 0120, ... 01C0)
// from every ECU and returns the union of the PIDs they claim, and whether
// any of them claims the next range (bit 0 of the last byte).
func Supported(msgs []Message, base byte) (pids []byte, more bool, err error) {
	answered := false
	for _, m := range msgs {
		d := m.Data
		if len(d) < 6 || d[0] != 0x41 || d[1] != base {
			if err == nil {
				err = &AdapterError{Code: "mismatch", Text: fmt.Sprintf("% X", d)}
			}
			continue
		}
		answered = true
		bits := uint32(d[2])<<24 | uint32(d[3])<<16 | uint32(d[4])<<8 | uint32(d[5])
		for i := range 32 {
			if bits&(1<<(31-i)) != 0 {
				pid := base + byte(i) + 1
				if i == 31 {
					more = true
				} else if !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
		}
	}
	if !answered {
		if err == nil {
			err = &AdapterError{Code: "empty", Text: "no message"}
		}
		return nil, false, err
	}
	slices.Sort(pids)
	return pids, more, nil
}
