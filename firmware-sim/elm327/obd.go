package elm327

import (
	"encoding/hex"
	"fmt"
	"strings"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// ecuID is the CAN identifier the engine computer answers from (ECU #1).
const ecuID = 0x7E8

// obd sends an OBD request (hex digits) to the vehicle and returns the reply
// lines and the samples they carry.
func (a *Adapter) obd(cmd string) ([]string, []Sample) {
	if !isHex(cmd) || len(cmd) < 2 {
		return []string{"?"}, nil
	}
	if len(cmd)%2 == 1 {
		// A last single digit tells how many responses to wait for.
		cmd = cmd[:len(cmd)-1]
	}
	req, _ := hex.DecodeString(cmd)
	if len(req) > 7 {
		return []string{"?"}, nil // more than one CAN frame can carry
	}

	var lines []string
	switch {
	case a.auto && !a.active:
		lines = append(lines, "SEARCHING...")
	case a.protocol == 3 || a.protocol == 4:
		return []string{"BUS INIT: ...ERROR"}, nil
	case a.protocol == 5:
		return []string{"BUS INIT: ERROR"}, nil
	case a.protocol != vehicleProtocol:
		return []string{"NO DATA"}, nil
	}
	st := a.ecu.State()
	if !st.EngineOn {
		if a.auto && !a.active {
			return append(lines, "UNABLE TO CONNECT"), nil
		}
		return []string{"NO DATA"}, nil
	}
	if a.auto && !a.active {
		a.protocol, a.active = vehicleProtocol, true
	}
	if a.header != 0x7DF && a.header != 0x7E0 {
		return append(lines, "NO DATA"), nil // addressed to an ECU that is not there
	}

	resp, answered := respond(req, st)
	if resp == nil {
		return append(lines, "NO DATA"), nil
	}
	var samples []Sample
	for _, x := range answered {
		v, unit, _ := Decode(x[1], x[2:])
		samples = append(samples, Sample{Time: st.Time, Mode: 0x01, PID: x[1], Value: v, Unit: unit, Reply: strings.TrimSpace(hexBytes(x, true))})
	}
	return append(lines, a.frames(resp)...), samples
}

// frames formats a response as the ELM327 prints ISO 15765-4 frames with CAN
// auto formatting: without headers a single frame shows its data bytes and a
// multi-frame message its length then "n: " numbered segments; with headers
// each frame shows the identifier and all 8 bytes, PCI and padding included.
func (a *Adapter) frames(resp []byte) []string {
	var frames [][]byte // each 8 bytes: PCI + data + padding
	if len(resp) <= 7 {
		frames = append(frames, pad(append([]byte{byte(len(resp))}, resp...)))
	} else {
		frames = append(frames, pad(append([]byte{0x10 | byte(len(resp)>>8), byte(len(resp))}, resp[:6]...)))
		for i, rest := 1, resp[6:]; len(rest) > 0; i++ {
			n := min(7, len(rest))
			frames = append(frames, pad(append([]byte{0x20 | byte(i&0xF)}, rest[:n]...)))
			rest = rest[n:]
		}
	}
	sep := ""
	if a.spaces {
		sep = " "
	}
	var lines []string
	if a.headers {
		for _, f := range frames {
			lines = append(lines, fmt.Sprintf("%03X", ecuID)+sep+hexBytes(f, a.spaces))
		}
		return lines
	}
	if len(frames) == 1 {
		return []string{hexBytes(frames[0][1:1+len(resp)], a.spaces)}
	}
	lines = append(lines, fmt.Sprintf("%03X", len(resp)))
	for i, f := range frames {
		data := f[1:]
		if i == 0 {
			data = f[2:]
		}
		lines = append(lines, fmt.Sprintf("%X:", i&0xF)+sep+hexBytes(data, a.spaces))
	}
	return lines
}

func pad(f []byte) []byte {
	for len(f) < 8 {
		f = append(f, 0x00)
	}
	return f
}

// hexBytes prints bytes as upper-case hex; with spaces, each byte is followed
// by a space, as the ELM327 prints them.
func hexBytes(b []byte, spaces bool) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%02X", c)
		if spaces {
			s.WriteByte(' ')
		}
	}
	return s.String()
}

// respond is the engine computer: the response message to a Mode 01 request
// of up to six PIDs, and for each measured value in it the bytes "41 pid
// data...". It returns nil when the computer stays silent: another mode, or
// no PID it supports.
func respond(req []byte, st firmwaresim.State) ([]byte, [][]byte) {
	if req[0] != 0x01 || len(req) < 2 {
		return nil, nil
	}
	resp := []byte{0x41}
	var answered [][]byte
	for _, id := range req[1:] {
		var data []byte
		if isBitmap(id) {
			data = supportBitmap(id)
		} else if p, ok := pids[id]; ok {
			data = p.encode(st)
			answered = append(answered, append([]byte{0x41, id}, data...))
		} else {
			continue
		}
		resp = append(resp, id)
		resp = append(resp, data...)
	}
	if len(resp) == 1 {
		return nil, nil
	}
	return resp, answered
}
