package elm327

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// ecu is one computer on the bus: its response address in each protocol
// family.
type ecu struct {
	can11  uint32 // 7E8
	can29  uint32 // 18DAF110
	legacy byte   // 10
}

var (
	engine       = ecu{can11: 0x7E8, can29: 0x18DAF110, legacy: 0x10}
	transmission = ecu{can11: 0x7E9, can29: 0x18DAF118, legacy: 0x18}
)

func isCAN(p byte) bool   { return p >= 6 && p <= 0xC }
func isCAN29(p byte) bool { return p == 7 || p == 9 || p == 0xA }

// obd sends an OBD request (hex digits) to the vehicle and returns the reply
// lines and the samples they carry.
func (a *Adapter) obd(cmd string, secondECU bool) ([]string, []Sample) {
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
	searching := a.auto && !a.active
	p := a.protocol
	if searching {
		lines = append(lines, "SEARCHING...")
		p = a.vehicle
		a.searched = true
	}
	switch {
	case p == a.vehicle:
	case p == 3 || p == 4:
		return append(lines, "BUS INIT: ...ERROR"), nil
	case p == 5:
		return append(lines, "BUS INIT: ERROR"), nil
	case isCAN(p) && !isCAN(a.vehicle):
		return append(lines, "CAN ERROR"), nil
	default:
		return append(lines, "NO DATA"), nil
	}
	st := a.ecu.State()
	if !a.active {
		// First contact on this protocol: the search, or the wake-up of
		// the older protocols.
		if !st.EngineOn {
			switch {
			case searching:
				return append(lines, "UNABLE TO CONNECT"), nil
			case !isCAN(a.vehicle):
				return append(lines, "BUS INIT: ...ERROR"), nil
			}
			return append(lines, "NO DATA"), nil
		}
		a.protocol, a.active = a.vehicle, true
		if !isCAN(a.vehicle) {
			lines = append(lines, "BUS INIT: ...OK")
		}
	}
	if !st.EngineOn {
		return a.noData(lines), nil
	}
	if !a.responses {
		return lines, nil // ATR0: the request is sent, answers are not awaited
	}
	if !a.addressed() {
		return a.noData(lines), nil // sent to an ECU that is not there
	}

	resp, answered := a.respond(req, st)
	if resp == nil {
		return a.noData(lines), nil
	}
	var samples []Sample
	for _, x := range answered {
		v, unit, _ := Decode(x[1], x[2:])
		samples = append(samples, Sample{Time: st.Time, Mode: 0x01, PID: x[1], Value: v, Unit: unit, Reply: strings.TrimSpace(hexBytes(x, true))})
	}
	shown := a.format(engine, resp)
	if len(shown) == 0 {
		return a.noData(lines), nil // the receive filter (ATCRA) let nothing through
	}
	if n := a.profile.BufferFullEvery; n > 0 && req[0] == 0x01 && len(shown) > 1 {
		if a.long++; a.long%n == 0 {
			return append(lines, shown[0], "BUFFER FULL"), nil
		}
	}
	lines = append(lines, shown...)
	if secondECU {
		if other := a.secondAnswer(resp); other != nil {
			lines = append(lines, a.format(transmission, other)...)
		}
	}
	return lines, samples
}

// secondAnswer is what the transmission computer says to the same request
// when FaultECUs makes it answer: the same Mode 01 PIDs with zeros for
// data, no trouble codes, nothing to a VIN request.
func (a *Adapter) secondAnswer(resp []byte) []byte {
	switch resp[0] {
	case 0x41:
		other := slices.Clone(resp)
		for i := 1; i < len(other); {
			n := pidSize(other[i])
			clear(other[i+1 : min(len(other), i+1+n)])
			i += 1 + n
		}
		return other
	case 0x43, 0x47, 0x4A:
		if isCAN(a.vehicle) {
			return []byte{resp[0], 0}
		}
		return []byte{resp[0]}
	}
	return nil
}

// noData is the reply when no ECU answers; clones of SearchAfterNoData
// forget the protocol.
func (a *Adapter) noData(lines []string) []string {
	if a.profile.SearchAfterNoData && a.auto {
		a.active = false
	}
	return append(lines, "NO DATA")
}

// addressed reports whether the request header (ATSH) reaches the engine
// computer: the functional address or its own.
func (a *Adapter) addressed() bool {
	switch a.header {
	case 0, 0x7DF, 0x7E0, 0x18DB33F1, 0x18DA10F1, 0x686AF1, 0xC133F1:
		return true
	}
	return false
}

// respond is the engine computer: the response message to a request, and
// for each Mode 01 value in it the bytes "41 pid data...". It returns nil
// when the computer stays silent: a mode or PID it does not support.
func (a *Adapter) respond(req []byte, st firmwaresim.State) ([]byte, [][]byte) {
	switch req[0] {
	case 0x01:
		return a.mode01(req[1:], st)
	case 0x03, 0x07, 0x0A:
		if len(req) != 1 {
			return nil, nil
		}
		return a.troubleCodes(req[0]), nil
	case 0x04:
		if len(req) != 1 {
			return nil, nil
		}
		a.SetDTCs(nil, nil, a.codes(2)) // permanent codes survive a scan tool
		return []byte{0x44}, nil
	case 0x09:
		if len(req) != 2 {
			return nil, nil
		}
		switch req[1] {
		case 0x00:
			return []byte{0x49, 0x00, 0x40, 0x00, 0x00, 0x00}, nil // 02 (VIN) only
		case 0x02:
			return append([]byte{0x49, 0x02, 0x01}, a.vin...), nil
		}
	}
	return nil, nil
}

// mode01 answers up to six PIDs; a clone of FirstPIDOnly answers the first.
func (a *Adapter) mode01(ids []byte, st firmwaresim.State) ([]byte, [][]byte) {
	if len(ids) == 0 || len(ids) > 6 {
		return nil, nil
	}
	if a.profile.FirstPIDOnly {
		ids = ids[:1]
	}
	resp := []byte{0x41}
	var answered [][]byte
	for _, id := range ids {
		var data []byte
		switch p, ok := pids[id]; {
		case isBitmap(id):
			data = a.supportBitmap(id)
		case ok && !slices.Contains(a.profile.Unanswered, id):
			data = p.encode(st, len(a.codes(0)))
			answered = append(answered, append([]byte{0x41, id}, data...))
		default:
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

// troubleCodes is the response to Mode 03, 07 or 0A: on CAN the count then
// two bytes per code; on the older protocols the codes alone (the format
// splits them three to a message).
func (a *Adapter) troubleCodes(mode byte) []byte {
	kind := map[byte]int{0x03: 0, 0x07: 1, 0x0A: 2}[mode]
	var raw []byte
	for _, c := range a.codes(kind) {
		if b, ok := encodeDTC(c); ok {
			raw = append(raw, b...)
		}
	}
	if isCAN(a.vehicle) {
		return append([]byte{0x40 + mode, byte(len(raw) / 2)}, raw...)
	}
	return append([]byte{0x40 + mode}, raw...)
}

// encodeDTC writes "P0301" as its two bytes (SAE J2012): the system in the
// top two bits, then the four digits.
func encodeDTC(c string) ([]byte, bool) {
	if len(c) != 5 {
		return nil, false
	}
	sys := strings.IndexByte("PCBU", c[0])
	if sys < 0 || c[1] < '0' || c[1] > '3' || !isHex(c[2:]) {
		return nil, false
	}
	d := [4]byte{c[1] - '0', hexVal(c[2]), hexVal(c[3]), hexVal(c[4])}
	return []byte{byte(sys)<<6 | d[0]<<4 | d[1], d[2]<<4 | d[3]}, true
}

func hexVal(c byte) byte {
	if c >= 'A' {
		return c - 'A' + 10
	}
	return c - '0'
}

// format prints a response message as the ELM327 does for the vehicle's
// protocol and the current settings.
func (a *Adapter) format(from ecu, resp []byte) []string {
	if isCAN(a.vehicle) {
		return a.formatCAN(from, resp)
	}
	return a.formatLegacy(from, resp)
}

// formatCAN prints ISO 15765-4 frames: with CAN auto formatting and no
// headers, a single frame shows its data bytes and a multi-frame message its
// length then "n: " numbered segments; with headers each frame shows the
// identifier and all 8 bytes, PCI and padding included (ATD1 adds the data
// length). Without flow control (ATCFC0) only a First Frame arrives.
func (a *Adapter) formatCAN(from ecu, resp []byte) []string {
	var frames [][]byte // each 8 bytes: PCI + data + padding
	if len(resp) <= 7 {
		frames = append(frames, pad(append([]byte{byte(len(resp))}, resp...)))
	} else {
		frames = append(frames, pad(append([]byte{0x10 | byte(len(resp)>>8), byte(len(resp))}, resp[:6]...)))
		for i, rest := 1, resp[6:]; len(rest) > 0 && a.cfc; i++ {
			n := min(7, len(rest))
			frames = append(frames, pad(append([]byte{0x20 | byte(i&0xF)}, rest[:n]...)))
			rest = rest[n:]
		}
	}
	id := from.can11
	if isCAN29(a.vehicle) {
		id = from.can29
	}
	if a.rxFilter != 0 && a.rxFilter != id {
		return nil
	}
	spaces := a.spaces || a.profile.StickySpaces
	sep := ""
	if spaces {
		sep = " "
	}
	if (a.headers && !a.profile.NoHeaders) || !a.caf {
		var lines []string
		for _, f := range frames {
			l := ""
			if a.headers && !a.profile.NoHeaders {
				if isCAN29(a.vehicle) {
					l = hexBytes([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, spaces)
				} else {
					l = fmt.Sprintf("%03X", id) + sep
				}
				if a.dlc {
					l += "8" + sep
				}
			}
			lines = append(lines, l+hexBytes(f, spaces))
		}
		return lines
	}
	if len(resp) <= 7 {
		return []string{hexBytes(frames[0][1:1+len(resp)], spaces)}
	}
	lines := []string{fmt.Sprintf("%03X", len(resp))}
	for i, f := range frames {
		data := f[1:]
		if i == 0 {
			data = f[2:]
		}
		lines = append(lines, fmt.Sprintf("%X:", i&0xF)+sep+hexBytes(data, spaces))
	}
	return lines
}

// formatLegacy prints a response in the older protocols' line format: at
// most 7 data bytes a message (a Mode 01 answer per PID, a VIN in five
// numbered messages of four bytes, trouble codes three to a message padded
// with zeros); with headers each line shows the three header bytes before
// and the check byte (the sum of the others) after.
func (a *Adapter) formatLegacy(from ecu, resp []byte) []string {
	var msgs [][]byte
	switch {
	case resp[0] == 0x49 && len(resp) > 1 && resp[1] == 0x02:
		num := append(make([]byte, 3), resp[3:]...) // 00 00 00 + 17 characters = 20
		for i := range 5 {
			msgs = append(msgs, append([]byte{0x49, 0x02, byte(i + 1)}, num[4*i:4*i+4]...))
		}
	case resp[0] == 0x43 || resp[0] == 0x47 || resp[0] == 0x4A:
		codes := resp[1:]
		for len(codes) > 0 || len(msgs) == 0 {
			m := []byte{resp[0]}
			n := min(6, len(codes))
			m = append(m, codes[:n]...)
			codes = codes[n:]
			for len(m) < 7 {
				m = append(m, 0)
			}
			msgs = append(msgs, m)
		}
	case resp[0] == 0x41:
		for rest := resp[1:]; len(rest) > 0; {
			n := 1 + pidSize(rest[0])
			if n > len(rest) {
				n = len(rest)
			}
			msgs = append(msgs, append([]byte{0x41}, rest[:n]...))
			rest = rest[n:]
		}
	default:
		msgs = [][]byte{resp}
	}
	if a.rxFilter != 0 && a.rxFilter != uint32(from.legacy) {
		return nil
	}
	spaces := a.spaces || a.profile.StickySpaces
	var lines []string
	for _, m := range msgs {
		if a.headers && !a.profile.NoHeaders {
			h := []byte{0x48, 0x6B, from.legacy}
			if a.vehicle != 3 {
				h = []byte{0x80 | byte(len(m)), 0xF1, from.legacy}
			}
			m = append(h, m...)
			var sum byte
			for _, c := range m {
				sum += c
			}
			m = append(m, sum)
		}
		lines = append(lines, hexBytes(m, spaces))
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
