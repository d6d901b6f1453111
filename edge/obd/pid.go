package obd

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PID describes one Mode 01 parameter: how many data bytes its reply carries
// and how SAE J1979 turns them (A, B, ...) into a value in Unit.
type PID struct {
	Code   byte
	Name   string
	Unit   string
	Bytes  int
	decode func(d []byte) float64
}

// Decode returns the value of the PID's data bytes. It returns an error for
// fewer bytes than the PID needs; extra bytes are ignored.
func (p PID) Decode(d []byte) (float64, error) {
	if len(d) < p.Bytes {
		return 0, &AdapterError{Code: "short_reply", Text: fmt.Sprintf("PID %02X: %d data bytes, want %d", p.Code, len(d), p.Bytes)}
	}
	return p.decode(d), nil
}

func ab(d []byte) float64 { return float64(int(d[0])<<8 | int(d[1])) }

func percent(d []byte) float64 { return float64(d[0]) * 100 / 255 }

func celsius(d []byte) float64 { return float64(d[0]) - 40 }

func trim(d []byte) float64 { return (float64(d[0]) - 128) * 100 / 128 }

// pids is the Mode 01 decode table (SAE J1979 / ISO 15031-5 formulas).
var pids = []PID{
	{0x04, "engine_load", "%", 1, percent},
	{0x05, "coolant_temp", "°C", 1, celsius},
	{0x06, "short_fuel_trim_1", "%", 1, trim},
	{0x07, "long_fuel_trim_1", "%", 1, trim},
	{0x08, "short_fuel_trim_2", "%", 1, trim},
	{0x09, "long_fuel_trim_2", "%", 1, trim},
	{0x0A, "fuel_pressure", "kPa", 1, func(d []byte) float64 { return 3 * float64(d[0]) }},
	{0x0B, "intake_pressure", "kPa", 1, func(d []byte) float64 { return float64(d[0]) }},
	{0x0C, "engine_rpm", "rpm", 2, func(d []byte) float64 { return ab(d) / 4 }},
	{0x0D, "vehicle_speed", "km/h", 1, func(d []byte) float64 { return float64(d[0]) }},
	{0x0E, "timing_advance", "°", 1, func(d []byte) float64 { return float64(d[0])/2 - 64 }},
	{0x0F, "intake_temp", "°C", 1, celsius},
	{0x10, "maf", "g/s", 2, func(d []byte) float64 { return ab(d) / 100 }},
	{0x11, "throttle_pos", "%", 1, percent},
	{0x1F, "run_time", "s", 2, ab},
	{0x21, "distance_w_mil", "km", 2, ab},
	{0x2F, "fuel_level", "%", 1, percent},
	{0x31, "distance_since_dtc_clear", "km", 2, ab},
	{0x33, "barometric_pressure", "kPa", 1, func(d []byte) float64 { return float64(d[0]) }},
	{0x42, "control_module_voltage", "V", 2, func(d []byte) float64 { return ab(d) / 1000 }},
	{0x46, "ambient_temp", "°C", 1, celsius},
	{0x5C, "oil_temp", "°C", 1, celsius},
}

// Lookup returns the table entry of a Mode 01 PID.
func Lookup(code byte) (PID, bool) {
	i := slices.IndexFunc(pids, func(p PID) bool { return p.Code == code })
	if i < 0 {
		return PID{}, false
	}
	return pids[i], true
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
		return 0, fmt.Errorf("PID %q: not decodable yet (known: %s)", s, strings.Join(known, " "))
	}
	return byte(v), nil
}

// DecodeMode01 finds the answer to Mode 01 PID pid among the data lines of a
// reply ("41 0C 1A F8" or, with spaces off, "410C1AF8") and decodes it. When
// several ECUs answer, the first well-formed line wins. A reply with no such
// line is an *AdapterError: "garbage" for lines that are not hex, "mismatch"
// for answers to another request, "short_reply" for too few data bytes.
func DecodeMode01(lines []string, pid byte) (float64, error) {
	p, ok := Lookup(pid)
	if !ok {
		return 0, fmt.Errorf("PID %02X: not in the decode table", pid)
	}
	var first error
	for _, l := range lines {
		b, err := hex.DecodeString(strings.ReplaceAll(l, " ", ""))
		var v float64
		switch {
		case err != nil || len(b) < 2:
			err = &AdapterError{Code: "garbage", Text: l}
		case b[0] != 0x41 || b[1] != pid:
			err = &AdapterError{Code: "mismatch", Text: l}
		default:
			v, err = p.Decode(b[2:])
		}
		if err == nil {
			return v, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = &AdapterError{Code: "empty"}
	}
	return 0, first
}
