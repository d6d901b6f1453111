package elm327

import (
	"fmt"
	"strconv"
)

// protocolNames are the ATDP descriptions of the ELM327's protocols.
var protocolNames = [...]string{
	1: "SAE J1850 PWM", 2: "SAE J1850 VPW", 3: "ISO 9141-2", 4: "ISO 14230-4 (KWP 5BAUD)",
	5: "ISO 14230-4 (KWP FAST)", 6: "ISO 15765-4 (CAN 11/500)", 7: "ISO 15765-4 (CAN 29/500)",
	8: "ISO 15765-4 (CAN 11/250)", 9: "ISO 15765-4 (CAN 29/250)", 0xA: "SAE J1939 (CAN 29/250)",
	0xB: "USER1 (CAN 11/125)", 0xC: "USER2 (CAN 11/50)",
}

// vehicleProtocol is the protocol the simulated vehicle speaks.
const vehicleProtocol = 6

// at runs an AT command (without the "AT") and returns its reply lines.
func (a *Adapter) at(c string) []string {
	ok := []string{"OK"}
	switch c {
	case "Z", "WS":
		a.reset()
		return []string{Version}
	case "D":
		a.defaults()
		return ok
	case "I":
		return []string{Version}
	case "@1":
		return []string{Description}
	case "M0", "M1", "AT0", "AT1", "AT2":
		return ok
	case "PC":
		a.active = false
		return ok
	case "DP":
		return []string{a.describeProtocol()}
	case "DPN":
		p := a.protocol
		if a.auto {
			return []string{fmt.Sprintf("A%X", p)}
		}
		return []string{fmt.Sprintf("%X", p)}
	case "RV":
		return []string{fmt.Sprintf("%.1fV", a.ecu.State().BatteryV)}
	}
	switch {
	case len(c) == 2 && (c[1] == '0' || c[1] == '1') && a.flag(c[0]) != nil:
		*a.flag(c[0]) = c[1] == '1'
		return ok
	case len(c) == 4 && c[:2] == "ST" && isHex(c[2:]):
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
	case c[:min(2, len(c))] == "SH" && (len(c) == 5 || len(c) == 8 || len(c) == 10) && isHex(c[2:]):
		h, _ := strconv.ParseUint(c[2:], 16, 32)
		a.header = uint32(h)
		return ok
	}
	return []string{"?"}
}

// flag returns the on/off setting of ATE (echo), ATL (linefeeds), ATS (spaces)
// or ATH (headers), nil for another letter.
func (a *Adapter) flag(letter byte) *bool {
	switch letter {
	case 'E':
		return &a.echo
	case 'L':
		return &a.linefeeds
	case 'S':
		return &a.spaces
	case 'H':
		return &a.headers
	}
	return nil
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
