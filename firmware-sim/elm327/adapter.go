// Package elm327 emulates an ELM327 OBD-II adapter in front of the simulated
// vehicle's engine computer, over any io.ReadWriter (a pty, a TCP
// connection, a pipe).
//
// It follows the ELM327 data sheet: commands end with a carriage return, case
// and spaces do not matter, a lone carriage return repeats the last command;
// every reply ends with an empty line and the ">" prompt; echo, linefeeds,
// spaces and headers are switched with ATE, ATL, ATS and ATH (defaults E1 L0 S1
// H0); "?" answers what the adapter does not understand. The vehicle speaks
// ISO 15765-4 CAN (11 bit, 500 kbit/s) unless WithProtocol says otherwise,
// found by the automatic protocol search ("SEARCHING..."), and answers Mode
// 01 (up to six PIDs at once), 03, 04, 07, 09 (VIN) and 0A requests, in single
// or multi-frame replies; anything else gets "NO DATA", and so does every
// request once the engine is off. Profiles give it the quirks of clones;
// SetFault makes it answer with an error reply of the data sheet.
package elm327

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// Identification strings of the emulated adapter.
const (
	Version     = "ELM327 v1.5"                // the genuine profile's ATZ, ATWS, ATI
	Description = "OBDII to RS232 Interpreter" // AT@1
	DefaultVIN  = "WP0ZZZ99ZTS390000"
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
	Value float64 // what the reply bytes decode to per SAE J1979 (the PID's first value)
	Unit  string
	Reply string // the response bytes of this PID, e.g. "41 0C 14 5F"
}

// Option configures an Adapter.
type Option func(*Adapter)

// WithProfile makes the adapter behave like p (default Genuine).
func WithProfile(p Profile) Option { return func(a *Adapter) { a.profile = p } }

// WithVIN sets the vehicle identification number Mode 09 PID 02 answers
// (default DefaultVIN).
func WithVIN(vin string) Option { return func(a *Adapter) { a.vin = vin } }

// WithDTCs sets the trouble codes the vehicle starts with (see SetDTCs).
func WithDTCs(stored, pending, permanent []string) Option {
	return func(a *Adapter) { a.dtcs = [3][]string{stored, pending, permanent} }
}

// WithProtocol sets the protocol the vehicle speaks, by its ATSP number: 6
// (CAN 11/500, the default), 7 (CAN 29/500), 8 (CAN 11/250), 9 (CAN 29/250),
// 3 (ISO 9141-2), 4 or 5 (ISO 14230-4 KWP). Other numbers keep the default.
func WithProtocol(p byte) Option {
	return func(a *Adapter) {
		if p >= 3 && p <= 9 {
			a.vehicle = p
		}
	}
}

// WithLatency makes every reply wait d before it is written, as a slow link
// does (a Bluetooth clone takes 1 to 3 s per command); Serve only. It adds
// to the profile's Delay.
func WithLatency(d time.Duration) Option { return func(a *Adapter) { a.latency = d } }

// WithSearchTime makes the automatic protocol search last d: SEARCHING... is
// written at once, the rest of the reply d later (Serve only). A real search
// through the slow protocols takes tens of seconds on some clones.
func WithSearchTime(d time.Duration) Option { return func(a *Adapter) { a.searchTime = d } }

// WithoutSupply makes ATRV read 0.0V: an adapter powered from its USB or
// Bluetooth side whose OBD pin 16 (battery) is not connected.
func WithoutSupply() Option { return func(a *Adapter) { a.noSupply = true } }

// Adapter is the emulated ELM327. One client talks to it at a time, like the
// serial line of the real chip: Input and Serve are not safe for concurrent
// use; SetFault, SetDTCs and FaultsServed are, with them and each other.
type Adapter struct {
	ecu        ECU
	profile    Profile
	vin        string
	vehicle    byte // the protocol the vehicle speaks
	latency    time.Duration
	searchTime time.Duration
	noSupply   bool
	searched   bool // the command being run printed SEARCHING... for a real search

	echo, linefeeds, spaces, headers bool
	caf, cfc, dlc, responses         bool
	protocol                         byte // 0 automatic, 1..0xC
	auto                             bool // protocol chosen automatically ("A" in ATDPN)
	active                           bool // the protocol has been found on the bus
	header                           uint32
	rxFilter                         uint32 // ATCRA; 0 none

	line     []byte // the command being received
	overflow bool
	last     string // the last command, repeated by a lone CR
	long     int    // Mode 01 replies of more than one line (BufferFullEvery)

	mu        sync.Mutex
	fault     string
	faultLeft int // > 0: that many requests more; <= 0: until cleared
	served    uint64
	dtcs      [3][]string // stored, pending, permanent
	noise     uint32      // line noise generator state
}

// NewAdapter returns an adapter in its power-up state, in front of ecu.
func NewAdapter(ecu ECU, opts ...Option) *Adapter {
	a := &Adapter{ecu: ecu, profile: Genuine, vin: DefaultVIN, vehicle: 6, noise: 0x2545F491}
	for _, o := range opts {
		o(a)
	}
	a.reset()
	return a
}

// Profile returns the adapter's profile.
func (a *Adapter) Profile() Profile { return a.profile }

// reset restores the power-up state (ATZ, ATWS, and the adapter's own
// resets after LV RESET and ERR94).
func (a *Adapter) reset() {
	a.defaults()
	a.last = ""
}

// defaults restores the default settings (ATD): echo on, no linefeeds,
// spaces, no headers, CAN auto formatting and flow control on, automatic
// protocol, the functional request address.
func (a *Adapter) defaults() {
	a.echo, a.linefeeds, a.spaces, a.headers = true, false, true, false
	a.caf, a.cfc, a.dlc, a.responses = true, true, false, true
	a.protocol, a.auto, a.active = 0, true, false
	a.header, a.rxFilter = 0, 0
}

// SetFault makes the next n OBD requests (n <= 0: every one until
// SetFault("", 0)) get reply instead of their data. reply is an error
// message of the data sheet, printed as it is ("NO DATA", "CAN ERROR",
// "BUFFER FULL", "STOPPED", "?", "BUS INIT: ...ERROR", "LV RESET", ...;
// after "LV RESET" and "ERR94" the adapter is back in its power-up state,
// as the real chip resets itself), or one of the Fault constants. AT
// commands are not affected. "" clears the fault.
func (a *Adapter) SetFault(reply string, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault, a.faultLeft = reply, n
	if reply == "" {
		a.faultLeft = 0
	}
}

// Fault replies that are not adapter messages.
const (
	FaultSilence   = "SILENCE"      // no reply and no prompt at all: the client times out
	FaultNoPrompt  = "NO PROMPT"    // the reply without its prompt
	FaultGarbage   = "GARBAGE"      // line noise (no hex digits) before the reply
	FaultECUs      = "ECUS"         // a second ECU answers as well, with zeros for data
	FaultDataError = "<DATA ERROR"  // the reply's last line marked <DATA ERROR
	FaultSearching = "SEARCHING..." // a protocol search before the reply
	FaultBuffer    = "BUFFER FULL"  // the reply's first line, then BUFFER FULL
)

// Faults lists every reply SetFault knows by name, the data sheet's error
// messages first.
func Faults() []string {
	return []string{"NO DATA", "?", "CAN ERROR", "BUS INIT: ...ERROR", "BUS BUSY", "BUS ERROR", "FB ERROR",
		"DATA ERROR", FaultDataError, "<RX ERROR", "UNABLE TO CONNECT", "STOPPED", FaultBuffer, "LV RESET",
		"ERR94", "ACT ALERT", "LP ALERT", FaultSearching, FaultGarbage, FaultSilence, FaultNoPrompt, FaultECUs}
}

// FaultsServed returns how many requests got a fault reply so far.
func (a *Adapter) FaultsServed() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.served
}

// takeFault returns the fault for the OBD request being answered, if any.
func (a *Adapter) takeFault() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fault == "" {
		return ""
	}
	f := a.fault
	a.served++
	if a.faultLeft > 0 {
		if a.faultLeft--; a.faultLeft == 0 {
			a.fault = ""
		}
	}
	return f
}

// SetDTCs replaces the vehicle's trouble codes (e.g. "P0301"): stored
// (confirmed; they light the MIL), pending and permanent. Codes that are
// not five characters P/C/B/U + four hex digits are ignored.
func (a *Adapter) SetDTCs(stored, pending, permanent []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dtcs = [3][]string{stored, pending, permanent}
}

func (a *Adapter) codes(kind int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dtcs[kind]
}

// Input feeds bytes received from the client and returns the bytes the
// adapter sends back, with the samples those bytes carry. Input never fails:
// garbage gets "?" or nothing.
func (a *Adapter) Input(p []byte) (out []byte, samples []Sample) {
	for _, r := range a.input(p) {
		out = append(out, r.out...)
		samples = append(samples, r.samples...)
	}
	return out, samples
}

// reply is what one command line gets: its bytes, the samples they carry,
// and where a long protocol search pauses them (-1: nowhere).
type reply struct {
	out     []byte
	samples []Sample
	search  int
}

// input runs the command lines completed by p, one reply each.
func (a *Adapter) input(p []byte) []reply {
	var out []reply
	for _, c := range p {
		switch {
		case c == '\r':
			raw := string(a.line)
			overflow := a.overflow
			a.line, a.overflow = a.line[:0], false
			var b strings.Builder
			r := reply{search: -1}
			r.samples = a.command(&b, raw, overflow, &r.search)
			r.out = []byte(b.String())
			out = append(out, r)
		case c < 0x20 || c >= 0x7F:
			// Line feeds, NULs and other control or non-ASCII bytes are ignored.
		case len(a.line) >= maxLine:
			a.overflow = true
		default:
			a.line = append(a.line, c)
		}
	}
	return out
}

func (a *Adapter) eol() string {
	if a.linefeeds {
		return "\r\n"
	}
	return "\r"
}

// command runs one command line and writes its echo, reply and prompt; a
// real protocol search sets *search to where SEARCHING... ends.
func (a *Adapter) command(b *strings.Builder, raw string, overflow bool, search *int) []Sample {
	cmd := strings.ToUpper(strings.ReplaceAll(raw, " ", ""))
	if cmd == "" && !overflow && a.last != "" {
		cmd = a.last
	}
	obd := !overflow && cmd != "" && !strings.HasPrefix(cmd, "AT")
	fault := ""
	if obd {
		fault = a.takeFault()
	}
	if fault == FaultSilence {
		return nil
	}
	if a.echo {
		b.WriteString(raw)
		b.WriteString(a.eol())
	}
	var lines []string
	var samples []Sample
	switch {
	case cmd == "" && !overflow:
	case overflow:
		lines = []string{"?"}
	case !obd:
		lines = a.at(cmd[2:])
		if cmd[2:] == "Z" || cmd[2:] == "WS" {
			// After a reset the chip prints its identification after two
			// empty lines.
			b.WriteString(a.eol() + a.eol())
		}
	default:
		lines, samples = a.obd(cmd, fault == FaultECUs)
		lines, samples = a.applyFault(fault, lines, samples)
	}
	if cmd != "" {
		a.last = cmd
	}
	for i, l := range lines {
		b.WriteString(l)
		b.WriteString(a.eol())
		if i == 0 && a.searched && l == "SEARCHING..." {
			*search = b.Len()
		}
	}
	a.searched = false
	if fault == FaultNoPrompt {
		return nil
	}
	b.WriteString(a.eol() + ">")
	return samples
}

// applyFault turns the reply to an OBD request into the faulty one. The
// faults that still deliver the data keep its samples; the others drop them.
func (a *Adapter) applyFault(fault string, lines []string, samples []Sample) ([]string, []Sample) {
	switch fault {
	case "", FaultNoPrompt:
		if fault == FaultNoPrompt {
			return lines, nil // the client cannot know the reply ended
		}
		return lines, samples
	case FaultSearching:
		if len(lines) > 0 && lines[0] == "SEARCHING..." {
			return lines, samples
		}
		return append([]string{"SEARCHING..."}, lines...), samples
	case FaultGarbage:
		return append([]string{a.garbage()}, lines...), samples
	case FaultECUs:
		return lines, samples // a.obd has added the second ECU
	case FaultDataError:
		if len(lines) == 0 {
			return []string{"<DATA ERROR"}, nil
		}
		lines[len(lines)-1] = strings.TrimRight(lines[len(lines)-1], " ") + " <DATA ERROR"
		return lines, nil
	case FaultBuffer:
		if len(lines) == 0 {
			return []string{"BUFFER FULL"}, nil
		}
		return []string{lines[0], "BUFFER FULL"}, nil
	case "LV RESET", "ERR94":
		a.reset() // the chip has restarted: power-up settings
	}
	return strings.Split(fault, "\r"), nil
}

// garbage returns a burst of line noise: control and high bytes and
// punctuation, never a hex digit, a CR or the prompt.
func (a *Adapter) garbage() string {
	const pool = "\x00\x01\x07\x1b\x7f\x80\x9c\xbf\xe3\xff#%&*+-/=@[]^_~|!$"
	var s []byte
	a.mu.Lock()
	for range 12 {
		a.noise ^= a.noise << 13
		a.noise ^= a.noise >> 17
		a.noise ^= a.noise << 5
		s = append(s, pool[a.noise%uint32(len(pool))])
	}
	a.mu.Unlock()
	return string(s)
}

// Serve answers the client on rw until reading fails or ctx is done: it reads
// whatever arrives, writes the replies (after the profile's Delay), and
// calls onSample (if not nil) for each PID value once the reply carrying it
// has been written. Blocking reads do not watch ctx: close rw to stop Serve.
// It returns nil at io.EOF, ctx.Err() when ctx is done, and the read or
// write error otherwise.
func (a *Adapter) Serve(ctx context.Context, rw io.ReadWriter, onSample func(Sample)) error {
	buf := make([]byte, 512)
	write := func(p []byte, wait time.Duration) error {
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		if _, err := rw.Write(p); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("elm327: write reply: %w", err)
		}
		return nil
	}
	for {
		n, err := rw.Read(buf)
		for _, r := range a.input(buf[:n]) {
			if len(r.out) > 0 {
				out, wait := r.out, a.profile.Delay+a.latency
				if r.search >= 0 && a.searchTime > 0 {
					if err := write(out[:r.search], wait); err != nil {
						return err
					}
					out, wait = out[r.search:], a.searchTime
				}
				if err := write(out, wait); err != nil {
					return err
				}
			}
			if onSample != nil {
				for _, s := range r.samples {
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

// sleep waits d, or until ctx is done (its error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
