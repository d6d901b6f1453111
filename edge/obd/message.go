package obd

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Protocols, as ATDPN numbers them.
const (
	ProtoUnknown   byte = 0x0
	ProtoJ1850PWM  byte = 0x1
	ProtoJ1850VPW  byte = 0x2
	ProtoISO9141   byte = 0x3
	ProtoKWP5Baud  byte = 0x4
	ProtoKWPFast   byte = 0x5
	ProtoCAN11_500 byte = 0x6
	ProtoCAN29_500 byte = 0x7
	ProtoCAN11_250 byte = 0x8
	ProtoCAN29_250 byte = 0x9
	ProtoJ1939     byte = 0xA
	ProtoUser1     byte = 0xB
	ProtoUser2     byte = 0xC
)

// protocolNames are what ATDP prints for each protocol (ELM327 data sheet,
// "ATSP"), used when the adapter does not describe its protocol itself.
var protocolNames = map[byte]string{
	ProtoJ1850PWM: "SAE J1850 PWM", ProtoJ1850VPW: "SAE J1850 VPW", ProtoISO9141: "ISO 9141-2",
	ProtoKWP5Baud: "ISO 14230-4 (KWP 5BAUD)", ProtoKWPFast: "ISO 14230-4 (KWP FAST)",
	ProtoCAN11_500: "ISO 15765-4 (CAN 11/500)", ProtoCAN29_500: "ISO 15765-4 (CAN 29/500)",
	ProtoCAN11_250: "ISO 15765-4 (CAN 11/250)", ProtoCAN29_250: "ISO 15765-4 (CAN 29/250)",
	ProtoJ1939: "SAE J1939 (CAN 29/250)", ProtoUser1: "USER1 (CAN 11/125)", ProtoUser2: "USER2 (CAN 11/50)",
}

// Format is how the adapter prints replies: the protocol on the bus (0 while
// unknown) and whether headers were asked for (ATH1). The message parser
// checks each line against it and reads a line that does not fit as one
// without headers, so an adapter that ignored ATH1, or reset itself, is still
// understood.
type Format struct {
	Protocol byte
	Headers  bool
}

// CAN reports whether the protocol is one of ISO 15765-4's (or J1939 / the
// user CAN protocols), where replies come in ISO-TP frames. An unknown
// protocol is not CAN.
func (f Format) CAN() bool { return f.Protocol >= ProtoCAN11_500 && f.Protocol <= ProtoUser2 }

func (f Format) can29() bool {
	return f.Protocol == ProtoCAN29_500 || f.Protocol == ProtoCAN29_250 || f.Protocol == ProtoJ1939
}

func (f Format) legacy() bool { return f.Protocol >= ProtoJ1850PWM && f.Protocol <= ProtoKWPFast }

// Message is one complete response from one ECU: Data starts with the
// response service byte (0x41 for Mode 01), frames already joined. ECU is who
// sent it when the reply showed headers: the 11-bit (0x7E8) or 29-bit
// (0x18DAF110) CAN identifier, or a legacy protocol's source address (0x10);
// 0 when the reply had no headers.
type Message struct {
	ECU  uint32
	Data []byte
}

// ParseMessages turns the data lines of a reply into messages: one per
// single-frame line, one per multi-frame group (CAN "First Frame" +
// "Consecutive Frames" with headers, or "014" / "0: ..." / "1: ..." without).
// Lines that cannot be read, frames out of sequence and messages cut short
// are dropped and counted in dropped, with the first such problem in err
// (an *AdapterError "garbage" or "frame"); err is nil when every line was
// used.
func ParseMessages(lines []string, f Format) (msgs []Message, dropped int, err error) {
	fail := func(code, text string) {
		dropped++
		if err == nil {
			err = &AdapterError{Code: code, Text: text}
		}
	}
	type partial struct {
		want int
		next byte // expected sequence number of the next consecutive frame
		data []byte
		line string
	}
	open := map[uint32]*partial{} // multi-frame messages being assembled, by ECU
	var order []uint32            // ECUs with an open message, in arrival order
	finish := func(ecu uint32) {
		p := open[ecu]
		if p.next == 0 || len(p.data) < p.want {
			return
		}
		msgs = append(msgs, Message{ECU: ecu &^ noHeaders, Data: p.data[:p.want]})
		delete(open, ecu)
		order = slices.DeleteFunc(order, func(e uint32) bool { return e == ecu })
	}
	start := func(ecu uint32, want int, data []byte, next byte, line string) {
		if p := open[ecu]; p != nil {
			fail("frame", p.line) // a new message before the old one ended
		} else {
			order = append(order, ecu)
		}
		open[ecu] = &partial{want: want, next: next, data: data, line: line}
		finish(ecu)
	}
	cont := func(ecu uint32, seq byte, data []byte, line string) {
		p := open[ecu]
		if p == nil || seq != p.next&0xF {
			fail("frame", line)
			return
		}
		p.next++
		p.data = append(p.data, data...)
		finish(ecu)
	}
	for _, line := range lines {
		l := strings.ToUpper(strings.ReplaceAll(line, " ", ""))
		// Headerless CAN multi-frame: "014" then "0:490201314434", "1:...".
		if i := strings.IndexByte(l, ':'); i > 0 {
			seq, err1 := strconv.ParseUint(l[:i], 16, 8)
			b, err2 := hex.DecodeString(l[i+1:])
			if err1 != nil || err2 != nil || seq > 0xF {
				fail("garbage", line)
				continue
			}
			cont(noHeaders, byte(seq), b, line)
			continue
		}
		if len(l) == 3 && isHex(l) {
			n, _ := strconv.ParseUint(l, 16, 12)
			if n == 0 {
				fail("garbage", line)
				continue
			}
			start(noHeaders, int(n), nil, 0, line)
			continue
		}
		ecu, frame, kind := f.split(l)
		if kind == lineGarbage {
			fail("garbage", line)
			continue
		}
		switch kind {
		case lineData:
			msgs = append(msgs, Message{ECU: ecu, Data: frame})
		case lineCAN:
			pci := frame[0]
			switch pci >> 4 {
			case 0: // single frame
				n := int(pci & 0xF)
				if n == 0 || len(frame) < 1+n {
					fail("frame", line)
					continue
				}
				msgs = append(msgs, Message{ECU: ecu, Data: frame[1 : 1+n]})
			case 1: // first frame
				if len(frame) < 2 {
					fail("frame", line)
					continue
				}
				start(ecu, int(pci&0xF)<<8|int(frame[1]), frame[2:], 1, line)
			case 2: // consecutive frame
				cont(ecu, pci&0xF, frame[1:], line)
			case 3: // flow control: the adapter's own, not a reply
			default:
				fail("frame", line)
			}
		}
	}
	for _, ecu := range order {
		fail("frame", open[ecu].line) // cut short
	}
	return msgs, dropped, err
}

// noHeaders marks, in the assembly of a multi-frame message, the one that
// came without headers; it is not a CAN identifier (they have 29 bits).
const noHeaders = uint32(1 << 31)

type lineKind uint8

const (
	lineGarbage lineKind = iota
	lineData             // a whole message: no headers, or a legacy line with its header
	lineCAN              // one CAN frame: PCI byte, data, maybe padding
)

// canHeaderLine reports whether l (spaces removed) reads as an 11-bit CAN
// frame with its header: an odd number of hex digits, at least a PCI byte.
func (f Format) canHeaderLine(l string) bool {
	return f.Headers && (f.Protocol == ProtoUnknown || (f.CAN() && !f.can29())) && len(l)%2 == 1 && len(l) >= 5 && isHex(l)
}

// split reads one line (spaces removed, upper case) in the format: with
// headers it takes them off and says whose line it was.
func (f Format) split(l string) (ecu uint32, rest []byte, kind lineKind) {
	if !isHex(l) {
		return 0, nil, lineGarbage
	}
	if f.canHeaderLine(l) {
		id, _ := strconv.ParseUint(l[:3], 16, 32)
		b, _ := hex.DecodeString(l[3:])
		return uint32(id), b, lineCAN
	}
	if len(l)%2 == 1 {
		return 0, nil, lineGarbage
	}
	b, _ := hex.DecodeString(l)
	switch {
	case f.Headers && (f.can29() || f.Protocol == ProtoUnknown) && len(b) >= 5 && b[0] == 0x18 && b[1] == 0xDA:
		// 29-bit ISO 15765-4: priority 18, DA, target, source; then the frame.
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), b[4:], lineCAN
	case f.Headers && f.legacy() && len(b) >= 5 && (b[1] == 0x6B || b[1] == 0xF1):
		// J1850 / ISO 9141-2 / KWP: priority or format, target (6B or F1 for
		// the tester), source; the data; a check byte the adapter has already
		// verified (it prints <DATA ERROR otherwise).
		return uint32(b[2]), b[3 : len(b)-1], lineData
	}
	if len(b) == 0 {
		return 0, nil, lineGarbage
	}
	return 0, b, lineData
}

func isHex(s string) bool { return s != "" && strings.Trim(s, "0123456789ABCDEF") == "" }

// engineECU reports whether id is the engine computer's address: 7E8 on
// 11-bit CAN, 18DAF110 on 29-bit CAN, 10 on the legacy protocols.
func engineECU(id uint32) bool { return id == 0x7E8 || id == 0x18DAF110 || id == 0x10 }

// byPreference orders messages so that the engine computer's come first, then
// by address; messages without headers keep their order.
func byPreference(msgs []Message) []Message {
	out := slices.Clone(msgs)
	slices.SortStableFunc(out, func(a, b Message) int {
		ea, eb := engineECU(a.ECU), engineECU(b.ECU)
		switch {
		case ea && !eb:
			return -1
		case eb && !ea:
			return 1
		case a.ECU < b.ECU:
			return -1
		case a.ECU > b.ECU:
			return 1
		}
		return 0
	})
	return out
}

// ProtocolName returns the ATDP description of protocol p, e.g.
// "ISO 15765-4 (CAN 11/500)", or "" for a number outside the table.
func ProtocolName(p byte) string { return protocolNames[p] }

func (f Format) String() string {
	h := "headers off"
	if f.Headers {
		h = "headers on"
	}
	return fmt.Sprintf("protocol %X, %s", f.Protocol, h)
}
