package elm327

import (
	"math"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// pid is one Mode 01 parameter: how the engine computer encodes the vehicle's
// state into data bytes and how SAE J1979 says to decode them (the first
// value, for PIDs that carry several).
type pid struct {
	name   string
	unit   string
	size   int
	encode func(s firmwaresim.State, storedDTCs int) []byte
	decode func([]byte) float64
}

// The simulated car's constants for what the model does not track.
const (
	odometerKm    = 48213.0 // at the start of the drive
	sinceClearKm  = 1523.0  // driven since the trouble codes were last cleared
	baroKPa       = 101     // Monaco is at sea level
	petrolGPerL   = 745.0
	stoichiometry = 14.7 // grams of air per gram of petrol
)

func clampByte(v float64) byte { return byte(max(0, min(255, math.Round(v)))) }

func word(v float64) []byte {
	w := uint16(max(0, min(65535, math.Round(v))))
	return []byte{byte(w >> 8), byte(w)}
}

func state(get func(firmwaresim.State) float64, enc func(float64) []byte) func(firmwaresim.State, int) []byte {
	return func(s firmwaresim.State, _ int) []byte { return enc(get(s)) }
}

func pct(v float64) []byte     { return []byte{clampByte(v * 255 / 100)} }
func celsius(v float64) []byte { return []byte{clampByte(v + 40)} }
func trim(v float64) []byte    { return []byte{clampByte(v*128/100 + 128)} }

func decodePercent(b []byte) float64 { return float64(b[0]) * 100 / 255 }
func decodeCelsius(b []byte) float64 { return float64(b[0]) - 40 }
func decodeWord(b []byte) float64    { return float64(int(b[0])<<8 | int(b[1])) }
func decodeTrim(b []byte) float64    { return (float64(b[0]) - 128) * 100 / 128 }
func decodeByte(b []byte) float64    { return float64(b[0]) }

// pids are the Mode 01 parameters the simulated engine computer supports,
// besides the support bitmaps 00, 20, 40, 60, 80 and A0. A four-cylinder
// inline engine: one bank (no 08, 09), no fuel rail gauge (no 0A).
var pids = map[byte]pid{
	0x01: {"monitor status (MIL)", "", 4,
		func(s firmwaresim.State, stored int) []byte {
			a := byte(min(stored, 0x7F))
			if stored > 0 {
				a |= 0x80
			}
			// B: spark ignition; misfire, fuel system and components
			// monitored and complete. C, D: catalyst, O2 sensor and heater
			// monitors supported, complete.
			return []byte{a, 0x07, 0x65, 0x00}
		},
		func(b []byte) float64 { return float64(b[0] >> 7) }},
	0x04: {"calculated engine load", "%", 1, state(func(s firmwaresim.State) float64 { return s.LoadPct }, pct), decodePercent},
	0x05: {"engine coolant temperature", "degC", 1, state(func(s firmwaresim.State) float64 { return s.CoolantC }, celsius), decodeCelsius},
	0x06: {"short term fuel trim bank 1", "%", 1,
		state(func(s firmwaresim.State) float64 { return max(-10, min(10, (s.ThrottlePct-15)/4)) }, trim), decodeTrim},
	0x07: {"long term fuel trim bank 1", "%", 1,
		func(firmwaresim.State, int) []byte { return []byte{131} }, decodeTrim},
	0x0B: {"intake manifold absolute pressure", "kPa", 1,
		state(func(s firmwaresim.State) float64 { return min(baroKPa, 25+0.75*s.LoadPct) }, func(v float64) []byte { return []byte{clampByte(v)} }),
		decodeByte},
	0x0C: {"engine speed", "rpm", 2, state(func(s firmwaresim.State) float64 { return s.RPM * 4 }, word),
		func(b []byte) float64 { return decodeWord(b) / 4 }},
	0x0D: {"vehicle speed", "km/h", 1, state(func(s firmwaresim.State) float64 { return s.SpeedMps * 3.6 }, func(v float64) []byte { return []byte{clampByte(v)} }),
		decodeByte},
	0x0E: {"timing advance", "deg", 1,
		state(func(s firmwaresim.State) float64 { return min(50, 5+s.RPM/250) }, func(v float64) []byte { return []byte{clampByte((v + 64) * 2)} }),
		func(b []byte) float64 { return float64(b[0])/2 - 64 }},
	0x0F: {"intake air temperature", "degC", 1, state(func(s firmwaresim.State) float64 { return s.IntakeC }, celsius), decodeCelsius},
	0x10: {"mass air flow", "g/s", 2, state(func(s firmwaresim.State) float64 { return s.MAFgps * 100 }, word),
		func(b []byte) float64 { return decodeWord(b) / 100 }},
	0x11: {"throttle position", "%", 1, state(func(s firmwaresim.State) float64 { return s.ThrottlePct }, pct), decodePercent},
	0x1F: {"run time since engine start", "s", 2, state(func(s firmwaresim.State) float64 { return math.Floor(s.RunTime.Seconds()) }, word),
		decodeWord},
	0x21: {"distance travelled with MIL on", "km", 2,
		func(_ firmwaresim.State, stored int) []byte {
			if stored == 0 {
				return []byte{0, 0}
			}
			return []byte{0, 12}
		}, decodeWord},
	0x2F: {"fuel tank level", "%", 1, state(func(s firmwaresim.State) float64 { return s.FuelPct }, pct), decodePercent},
	0x31: {"distance since codes cleared", "km", 2,
		state(func(s firmwaresim.State) float64 { return math.Floor(sinceClearKm + s.DistanceM/1000) }, word), decodeWord},
	0x33: {"barometric pressure", "kPa", 1, func(firmwaresim.State, int) []byte { return []byte{baroKPa} }, decodeByte},
	0x42: {"control module voltage", "V", 2, state(func(s firmwaresim.State) float64 { return s.BatteryV * 1000 }, word),
		func(b []byte) float64 { return decodeWord(b) / 1000 }},
	0x46: {"ambient air temperature", "degC", 1, state(func(s firmwaresim.State) float64 { return s.AmbientC }, celsius), decodeCelsius},
	0x5C: {"engine oil temperature", "degC", 1,
		state(func(s firmwaresim.State) float64 { return max(s.AmbientC, s.CoolantC-3) }, celsius), decodeCelsius},
	0x5E: {"engine fuel rate", "L/h", 2,
		state(func(s firmwaresim.State) float64 { return s.MAFgps / stoichiometry / petrolGPerL * 3600 * 20 }, word),
		func(b []byte) float64 { return decodeWord(b) / 20 }},
	0xA6: {"odometer", "km", 4,
		func(s firmwaresim.State, _ int) []byte {
			v := uint32(math.Round((odometerKm + s.DistanceM/1000) * 10))
			return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		},
		func(b []byte) float64 {
			return float64(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) / 10
		}},
}

// claimed reports whether the support bitmaps claim id: the PIDs the
// computer answers and those the profile claims without answering.
func (a *Adapter) claimed(id byte) bool {
	_, ok := pids[id]
	for _, u := range a.profile.Unanswered {
		ok = ok || u == id
	}
	return ok
}

// supportBitmap returns the 4 data bytes of support PID base (0x00, 0x20,
// 0x40...): bit 7 of the first byte is PID base+1, bit 0 of the last base+0x20,
// which is set when any PID above it is claimed.
func (a *Adapter) supportBitmap(base byte) []byte {
	var bits uint32
	for id := 1; id < 256; id++ {
		if !a.claimed(byte(id)) {
			continue
		}
		if id > int(base) && id <= int(base)+0x20 {
			bits |= 1 << (32 - uint(id-int(base)))
		}
		if id > int(base)+0x20 {
			bits |= 1 // the next bitmap is supported
		}
	}
	return []byte{byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}
}

// isBitmap reports whether id is a support bitmap PID the computer answers:
// 00, and every 20th after it up to the range of its last PID.
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

// pidSize is how many data bytes the computer's answer for id carries.
func pidSize(id byte) int {
	if isBitmap(id) {
		return 4
	}
	return pids[id].size
}

// Decode returns the value SAE J1979 gives to the data bytes of Mode 01 PID
// id (the first, for PIDs that carry several), and its unit; ok is false for
// a PID this emulation does not know or data of the wrong length.
func Decode(id byte, data []byte) (value float64, unit string, ok bool) {
	p, found := pids[id]
	if !found || len(data) != p.size {
		return 0, "", false
	}
	return p.decode(data), p.unit, true
}
