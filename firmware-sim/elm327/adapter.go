// Package elm327 emulates an ELM327 v1.5 OBD-II adapter in front of the
// simulated vehicle's engine computer, over any io.ReadWriter (a pty, a TCP
// connection, a pipe).
//
// It follows the ELM327 data sheet: commands end with a carriage return, case
// and spaces do not matter, a lone carriage return repeats the last command;
// every reply ends with an empty line and the ">" prompt; echo, linefeeds,
// spaces and headers are switched with ATE, ATL, ATS and ATH (defaults E1 L0 S1
// H0); "?" answers what the adapter does not understand. The vehicle speaks
// ISO 15765-4 CAN (11 bit, 500 kbit/s), found by the automatic protocol search
// ("SEARCHING..."), and answers Mode 01 requests, up to six PIDs at once, in
// single or multi-frame replies; anything else gets "NO DATA", and so does
// every request once the engine is off.
package elm327

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// Identification strings of the emulated adapter.
const (
	Version     = "ELM327 v1.5"                // ATZ, ATWS, ATI
	Description = "OBDII to RS232 Interpreter" // AT@1
)

// maxLine is the longest command the adapter buffers; a longer one is
// answered "?".
const maxLine = 128

// ECU is the vehicle's engine computer behind the adapter.
type ECU interface {
	// State returns the vehicle's state at the moment of the request. It is
	// called once per OBD request, from the goroutine running the Adapter.
	State() firmwaresim.State
}

// Sample is one PID value the adapter sent in a reply.
type Sample struct {
	Time  time.Time // simulated time of the reply
	Mode  byte      // 0x01
	PID   byte
	Value float64 // what the reply bytes decode to per SAE J1979
	Unit  string
	Reply string // the response bytes of this PID, e.g. "41 0C 14 5F"
}

// Adapter is the emulated ELM327. It is not safe for concurrent use: one
// client talks to it at a time, like the serial line of the real chip.
type Adapter struct {
	ecu ECU

	echo, linefeeds, spaces, headers bool
	protocol                         byte // 0 automatic, 1..0xC
	auto                             bool // protocol chosen automatically ("A" in ATDPN)
	active                           bool // the protocol has been found on the bus
	header                           uint32

	line     []byte // the command being received
	overflow bool
	last     string // the last command, repeated by a lone CR
}

// NewAdapter returns an adapter in its power-up state, in front of ecu.
func NewAdapter(ecu ECU) *Adapter {
	a := &Adapter{ecu: ecu}
	a.reset()
	return a
}

// reset restores the power-up state (ATZ, ATWS).
func (a *Adapter) reset() {
	a.defaults()
	a.last = ""
}

// defaults restores the default settings (ATD): echo on, no linefeeds,
// spaces, no headers, automatic protocol, functional address 7DF.
func (a *Adapter) defaults() {
	a.echo, a.linefeeds, a.spaces, a.headers = true, false, true, false
	a.protocol, a.auto, a.active = 0, true, false
	a.header = 0x7DF
}

// Input feeds bytes received from the client and returns the bytes the
// adapter sends back, with the samples those bytes carry. Input never fails:
// garbage gets "?" or nothing.
func (a *Adapter) Input(p []byte) (out []byte, samples []Sample) {
	var b strings.Builder
	for _, c := range p {
		switch {
		case c == '\r':
			raw := string(a.line)
			overflow := a.overflow
			a.line, a.overflow = a.line[:0], false
			if a.echo {
				b.WriteString(raw)
				b.WriteString(a.eol())
			}
			samples = append(samples, a.command(&b, raw, overflow)...)
		case c < 0x20 || c >= 0x7F:
			// Line feeds, NULs and other control or non-ASCII bytes are ignored.
		case len(a.line) >= maxLine:
			a.overflow = true
		default:
			a.line = append(a.line, c)
		}
	}
	return []byte(b.String()), samples
}

func (a *Adapter) eol() string {
	if a.linefeeds {
		return "\r\n"
	}
	return "\r"
}

// command runs one command line and writes its reply and the prompt.
func (a *Adapter) command(b *strings.Builder, raw string, overflow bool) []Sample {
	cmd := strings.ToUpper(strings.ReplaceAll(raw, " ", ""))
	if cmd == "" && !overflow {
		if a.last == "" {
			b.WriteString(a.eol() + ">")
			return nil
		}
		cmd = a.last
	}
	var lines []string
	var samples []Sample
	switch {
	case overflow:
		lines = []string{"?"}
	case strings.HasPrefix(cmd, "AT"):
		lines = a.at(cmd[2:])
		if cmd[2:] == "Z" || cmd[2:] == "WS" {
			// After a reset the chip prints its identification after two
			// empty lines.
			b.WriteString(a.eol() + a.eol())
		}
	default:
		lines, samples = a.obd(cmd)
	}
	if cmd != "" {
		a.last = cmd
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString(a.eol())
	}
	b.WriteString(a.eol() + ">")
	return samples
}

// Serve answers the client on rw until reading fails or ctx is done: it reads
// whatever arrives, writes the replies, and calls onSample (if not nil) for
// each PID value once the reply carrying it has been written. Blocking reads
// do not watch ctx: close rw to stop Serve. It returns nil at io.EOF,
// ctx.Err() when ctx is done, and the read or write error otherwise.
func (a *Adapter) Serve(ctx context.Context, rw io.ReadWriter, onSample func(Sample)) error {
	buf := make([]byte, 512)
	for {
		n, err := rw.Read(buf)
		if n > 0 {
			out, samples := a.Input(buf[:n])
			if len(out) > 0 {
				if _, werr := rw.Write(out); werr != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return fmt.Errorf("elm327: write reply: %w", werr)
				}
			}
			if onSample != nil {
				for _, s := range samples {
					onSample(s)
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("elm327: read: %w", err)
		}
	}
}
