package elm327

import (
	"fmt"
	"strconv"
	"strings"
)

// protocolNames are the ATDP descriptions of the ELM327's protocols.
var protocolNames = [...]string{
	1: "SAE J1850 PWM", 2: "SAE J1850 VPW", 3: "ISO 9141-2", 4: "ISO 14230-4 (KWP 5BAUD)",
	5: "ISO 14230-4 (KWP FAST)", 6: "ISO 15765-4 (CAN 11/500)", 7: "ISO 15765-4 (CAN 29/500)",
	8: "ISO 15765-4 (CAN 11/250)", 9: "ISO 15765-4 (CAN 29/250)", 0xA: "SAE J1939 (CAN 29/250)",
	0xB: "USER1 (CAN 11/125)", 0xC: "USER2 (CAN 11/50)",
}

// ATCommands lists the AT commands the emulation understands, as the data
// sheet writes them (h: a hex digit, d: a decimal digit).
var ATCommands = []string{
	"@1", "@2", "AL", "AT0", "AT1", "AT2", "BI", "CAF0", "CAF1", "CEA", "CFC0", "CFC1", "CP hh", "CRA", "CRA hhh",
	"CS", "CV dddd", "D", "D0", "D1", "DP", "DPN", "E0", "E1", "FC SD hh..", "FC SH hhh", "FC SM h", "FI", "H0", "H1",
	"I", "IB10", "IB48", "IB96", "IGN", "JE", "JS", "KW0", "KW1", "L0", "L1", "LP", "M0", "M1", "NL", "PB hh hh",
	"PC", "R0", "R1", "RD", "RV", "S0", "S1", "SD hh", "SH hhh", "SH hhhhhh", "SH hhhhhhhh", "SI", "SP h",
	"SP Ah", "ST hh", "SW hh", "TA hh", "TP h", "TP Ah", "V0", "V1", "WM hh..", "WS", "Z",
}

// at runs an AT command (without the "AT", spaces removed) and returns its
// reply lines.
func (a *Adapter) at(c string) []string {
	ok := []string{"OK"}
	switch c {
	case "Z", "WS":
		a.reset()
		return []string{a.profile.Version}
	case "D":
		a.defaults()
		return ok
	case "I":
		return []string{a.profile.Version}
	case "@1":
		return []string{Description}
	case "@2":
		return []string{"?"} // no device identifier stored
	case "DP":
		return []string{a.describeProtocol()}
	case "DPN":
		if a.auto {
			return []string{fmt.Sprintf("A%X", a.protocol)}
		}
		return []string{fmt.Sprintf("%X", a.protocol)}
	case "RV":
		if a.noSupply {
			return []string{"0.0V"}
		}
		return []string{fmt.Sprintf("%.1fV", a.ecu.State().BatteryV)}
	case "IGN":
		if a.ecu.State().EngineOn {
			return []string{"ON"}
		}
		return []string{"OFF"}
	case "CS":
		return []string{"T:00 R:00"}
	case "RD":
		return []string{"00"}
	case "PC":
		a.active = false
		return ok
	case "CRA":
		a.rxFilter = 0
		return ok
	case "M0", "M1", "AT0", "AT1", "AT2", "AL", "NL", "BI", "CEA", "FI", "SI", "JE", "JS", "KW0", "KW1",
		"LP", "V0", "V1", "IB10", "IB48", "IB96":
		return ok
	}
	if n := len(c) - 1; n > 0 && (c[n] == '0' || c[n] == '1') {
		if f := a.toggle(c[:n]); f != nil {
			if c[:n] != "E" || !a.profile.StickyEcho {
				*f = c[n] == '1'
			}
			return ok
		}
	}
	switch {
	case hexArg(c, "ST", 2), hexArg(c, "SW", 2), hexArg(c, "TA", 2), hexArg(c, "CP", 2), hexArg(c, "SD", 2),
		hexArg(c, "FCSH", 3), hexArg(c, "FCSM", 1), hexArg(c, "PB", 4), strings.HasPrefix(c, "WM") && isHex(c[2:]),
		strings.HasPrefix(c, "FCSD") && isHex(c[4:]) && len(c)%2 == 0:
		return ok
	case strings.HasPrefix(c, "CV") && len(c) == 6 && isDecimal(c[2:]):
		return ok
	case (len(c) == 3 || len(c) == 4) && (c[:2] == "SP" || c[:2] == "TP"):
		h := c[2:]
		auto := false
		if len(h) == 2 {
			if h[0] != 'A' {
				return []string{"?"}
			}
			auto, h = true, h[1:]
		}
		p, err := strconv.ParseUint(h, 16, 8)
		if err != nil || p > 0xC {
			return []string{"?"}
		}
		a.protocol, a.auto, a.active = byte(p), auto || p == 0, false
		return ok
	case strings.HasPrefix(c, "CRA") && (len(c) == 6 || len(c) == 11) && isHex(c[3:]):
		v, _ := strconv.ParseUint(c[3:], 16, 32)
		a.rxFilter = uint32(v)
		return ok
	case strings.HasPrefix(c, "SH") && (len(c) == 5 || len(c) == 8 || len(c) == 10) && isHex(c[2:]):
		h, _ := strconv.ParseUint(c[2:], 16, 32)
		a.header = uint32(h)
		return ok
	}
	return []string{"?"}
}

// toggle returns the on/off setting that AT<name>0 and AT<name>1 switch, nil
// for another name.
func (a *Adapter) toggle(name string) *bool {
	switch name {
	case "E":
		return &a.echo
	case "L":
		return &a.linefeeds
	case "S":
		return &a.spaces
	case "H":
		return &a.headers
	case "D":
		return &a.dlc
	case "R":
		return &a.responses
	case "CAF":
		return &a.caf
	case "CFC":
		return &a.cfc
	}
	return nil
}

// hexArg reports whether c is the command name followed by n hex digits.
func hexArg(c, name string, n int) bool {
	return strings.HasPrefix(c, name) && len(c) == len(name)+n && isHex(c[len(name):])
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (a *Adapter) describeProtocol() string {
	switch {
	case a.protocol == 0:
		return "AUTO"
	case a.auto:
		return "AUTO, " + protocolNames[a.protocol]
	default:
		return protocolNames[a.protocol]
	}
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
