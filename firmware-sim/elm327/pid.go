package elm327

import (
	"math"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// pid is one Mode 01 parameter: how the engine computer encodes the vehicle's
// state into data bytes and how SAE J1979 says to decode them.
type pid struct {
	name   string
	unit   string
	size   int
	encode func(firmwaresim.State) []byte
	decode func([]byte) float64
}

func clampByte(v float64) byte { return byte(max(0, min(255, math.Round(v)))) }

func word(v float64) []byte {
	w := uint16(max(0, min(65535, math.Round(v))))
	return []byte{byte(w >> 8), byte(w)}
}

func percent(get func(firmwaresim.State) float64) func(firmwaresim.State) []byte {
	return func(s firmwaresim.State) []byte { return []byte{clampByte(get(s) * 255 / 100)} }
}

func celsius(get func(firmwaresim.State) float64) func(firmwaresim.State) []byte {
	return func(s firmwaresim.State) []byte { return []byte{clampByte(get(s) + 40)} }
}

func decodePercent(b []byte) float64 { return float64(b[0]) * 100 / 255 }
func decodeCelsius(b []byte) float64 { return float64(b[0]) - 40 }
func decodeWord(b []byte) float64    { return float64(int(b[0])<<8 | int(b[1])) }

// pids are the Mode 01 parameters the simulated engine computer supports,
// besides the support bitmaps 00, 20 and 40.
var pids = map[byte]pid{
	0x04: {"calculated engine load", "%", 1, percent(func(s firmwaresim.State) float64 { return s.LoadPct }), decodePercent},
	0x05: {"engine coolant temperature", "degC", 1, celsius(func(s firmwaresim.State) float64 { return s.CoolantC }), decodeCelsius},
	0x0C: {"engine speed", "rpm", 2, func(s firmwaresim.State) []byte { return word(s.RPM * 4) },
		func(b []byte) float64 { return decodeWord(b) / 4 }},
	0x0D: {"vehicle speed", "km/h", 1, func(s firmwaresim.State) []byte { return []byte{clampByte(s.SpeedMps * 3.6)} },
		func(b []byte) float64 { return float64(b[0]) }},
	0x0F: {"intake air temperature", "degC", 1, celsius(func(s firmwaresim.State) float64 { return s.IntakeC }), decodeCelsius},
	0x10: {"mass air flow", "g/s", 2, func(s firmwaresim.State) []byte { return word(s.MAFgps * 100) },
		func(b []byte) float64 { return decodeWord(b) / 100 }},
	0x11: {"throttle position", "%", 1, percent(func(s firmwaresim.State) float64 { return s.ThrottlePct }), decodePercent},
	0x1F: {"run time since engine start", "s", 2, func(s firmwaresim.State) []byte { return word(math.Floor(s.RunTime.Seconds())) },
		decodeWord},
	0x2F: {"fuel tank level", "%", 1, percent(func(s firmwaresim.State) float64 { return s.FuelPct }), decodePercent},
	0x42: {"control module voltage", "V", 2, func(s firmwaresim.State) []byte { return word(s.BatteryV * 1000) },
		func(b []byte) float64 { return decodeWord(b) / 1000 }},
	0x46: {"ambient air temperature", "degC", 1, celsius(func(s firmwaresim.State) float64 { return s.AmbientC }), decodeCelsius},
}

// supportBitmap returns the 4 data bytes of support PID base (0x00, 0x20,
// 0x40...): bit 7 of the first byte is PID base+1, bit 0 of the last base+0x20,
// which is set when any PID above it is supported.
func supportBitmap(base byte) []byte {
	var bits uint32
	for id := range pids {
		if id > base && int(id) <= int(base)+0x20 {
			bits |= 1 << (32 - uint(id-base))
		}
		if int(id) > int(base)+0x20 {
			bits |= 1 // the next bitmap is supported
		}
	}
	return []byte{byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}
}

// isBitmap reports whether id is a support bitmap PID the adapter answers.
func isBitmap(id byte) bool {
	if id%0x20 != 0 {
		return false
	}
	for p := range pids {
		if p > id {
			return true
		}
	}
	return false
}

// Decode returns the value SAE J1979 gives to the data bytes of Mode 01 PID
// id, and its unit; ok is false for a PID this emulation does not know or data
// of the wrong length.
func Decode(id byte, data []byte) (value float64, unit string, ok bool) {
	p, found := pids[id]
	if !found || len(data) != p.size {
		return 0, "", false
	}
	return p.decode(data), p.unit, true
}
