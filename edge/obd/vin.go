package obd

import (
	"bytes"
	"fmt"
	"slices"
)

// VIN reads the vehicle identification number from the answers to a Mode 09
// PID 02 request. On CAN one ECU answers with one multi-frame message: 49 02,
// the number of data items (01), then the 17 characters. On the older
// protocols it answers with five messages 49 02 n (n = 1..5), four bytes
// each, the first three of message 1 being zeros. Some ECUs pad the number
// with leading zeros. The first ECU (engine first) with a valid VIN wins:
// 17 characters, digits and capital letters but I, O and Q. err is an
// *AdapterError "bad_vin", "mismatch", "frame" or "empty" when no ECU gave
// one.
func VIN(msgs []Message) (string, error) {
	var first error
	note := func(code string, d []byte) {
		if first == nil {
			first = &AdapterError{Code: code, Text: fmt.Sprintf("% X", d)}
		}
	}
	byECU := map[uint32][]Message{}
	var ecus []uint32
	for _, m := range byPreference(msgs) {
		if len(m.Data) < 3 || m.Data[0] != 0x49 || m.Data[1] != 0x02 {
			note("mismatch", m.Data)
			continue
		}
		if _, ok := byECU[m.ECU]; !ok {
			ecus = append(ecus, m.ECU)
		}
		byECU[m.ECU] = append(byECU[m.ECU], m)
	}
	for _, ecu := range ecus {
		ms := byECU[ecu]
		var raw []byte
		if len(ms) == 1 && len(ms[0].Data) > 7 {
			raw = ms[0].Data[3:] // CAN: 49 02 <items> + the number
		} else {
			// Line format: 49 02 <seq> b1 b2 b3 b4, seq 1.. in any order.
			slices.SortStableFunc(ms, func(a, b Message) int { return int(a.Data[2]) - int(b.Data[2]) })
			ok := true
			for i, m := range ms {
				if int(m.Data[2]) != i+1 || len(m.Data) != 7 {
					ok = false
					break
				}
				raw = append(raw, m.Data[3:]...)
			}
			if !ok {
				note("frame", ms[0].Data)
				continue
			}
		}
		vin := bytes.Trim(raw, "\x00")
		if !validVIN(vin) {
			note("bad_vin", raw)
			continue
		}
		return string(vin), nil
	}
	if first == nil {
		first = &AdapterError{Code: "empty", Text: "no message"}
	}
	return "", first
}

// validVIN checks ISO 3779's alphabet and length; the check digit is a North
// American rule and is not checked.
func validVIN(v []byte) bool {
	if len(v) != 17 {
		return false
	}
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q':
		default:
			return false
		}
	}
	return true
}
