package obd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

// ErrTimeout is wrapped by Session errors when the adapter did not finish its
// reply (the '>' prompt) within the command's timeout.
var ErrTimeout = errors.New("adapter timeout")

// ErrNoBanner is wrapped by Init's error when ATZ was answered, but not by an
// ELM327 (no "ELM" in its identification).
var ErrNoBanner = errors.New("no ELM327 banner")

// ErrBusFault is wrapped by Connect's error when the protocol search met a
// bus that cannot be used: CAN ERROR, BUS ERROR, FB ERROR, BUS INIT:
// ...ERROR, or BUS BUSY twice. The wiring or the bus is wrong: it says
// nothing of whether the vehicle is there or its engine runs.
var ErrBusFault = errors.New("OBD bus fault")

// Default timeouts. ATZ restarts the chip (about a second); the first request
// after ATSP0 may search every protocol for several seconds; other commands
// answer within a few hundred milliseconds, or the adapter prints NO DATA.
//
// An adapter behind a slow link (a Bluetooth clone takes 1 to 3 s per
// command) needs more: the session measures the adapter's latency, the
// round trip of its AT commands, and adds twice that to every timeout.
// A search that has printed SEARCHING... is waited for beyond
// DefaultSearchTimeout, up to DefaultSearchMax: the adapter is still
// searching, not gone.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultResetTimeout  = 5 * time.Second
	DefaultSearchTimeout = 15 * time.Second
	DefaultSearchMax     = 90 * time.Second
)

// NoSupplyVolts: an ATRV reading below it says the adapter is not powered
// from the vehicle (OBD pin 16), as one fed from its USB or Bluetooth side
// reads 0.0V; it is no reading of the vehicle's battery.
const NoSupplyVolts = 1.0

// latencyWindow is how many of the latest AT round trips the latency is
// the largest of.
const latencyWindow = 4

// maxReply bounds the bytes kept while waiting for a prompt, so that an
// adapter spewing garbage without a prompt cannot grow memory.
const maxReply = 4096

// Info is what the session learnt of the adapter and the vehicle.
type Info struct {
	Adapter  string // ATI, e.g. "ELM327 v1.5" (the ATZ banner if ATI fails)
	Format   Format // the protocol (0 until a vehicle answered) and headers
	Protocol string // ATDP without "AUTO, ", e.g. "ISO 15765-4 (CAN 11/500)"
}

// Session is one ELM327 dialogue over an opened device: the AT commands,
// OBD requests and the parsing of their replies. NewSession starts a
// goroutine that reads the device; it ends when a Read fails, so close the
// device after Close. A Session is not safe for concurrent use.
//
// Every method that talks to the adapter returns an error wrapping
// ErrTimeout when the prompt did not come in time (the adapter may still be
// answering: call Resync, then LateQuery, LateDTCs or LateVIN for the reply
// if it came after all), an *AdapterError for a reply without the data asked
// for, ctx.Err(), or the device's read or write error (the session is then
// over). Each failed request is counted once, as obd.errors.<code>.
type Session struct {
	rw            io.ReadWriter
	Timeout       time.Duration // per command; DefaultTimeout if 0
	ResetTimeout  time.Duration // for ATZ; DefaultResetTimeout if 0
	SearchTimeout time.Duration // for the first request after ATSP0; DefaultSearchTimeout if 0
	SearchMax     time.Duration // a search printing SEARCHING... may go on to this; DefaultSearchMax if 0
	Counters      *edge.Counters
	Now           func() time.Time // the time replies arrive; nil means time.Now

	chunks chan []byte
	done   chan struct{}
	err    error // the read error, set before chunks is closed

	info   Info
	search []string // the lines of the protocol search's 0100, for discovery

	rtts    [latencyWindow]time.Duration // latest AT round trips
	nRTT    int
	latency time.Duration // the largest of them; the ATZ round trip before any

	timedOut string     // a request that timed out, until a prompt came for it or Resync got in step
	partial  []byte     // what it had read of its reply by then
	late     *lateReply // its reply, come after the timeout (see skip)
}

// lateReply is the reply to a request that came after the request had timed
// out.
type lateReply struct {
	cmd   string
	reply Reply
	at    time.Time
}

// NewSession starts reading rw. counters may be nil.
func NewSession(rw io.ReadWriter, counters *edge.Counters) *Session {
	s := &Session{rw: rw, Counters: counters, chunks: make(chan []byte, 64), done: make(chan struct{})}
	go s.read()
	return s
}

func (s *Session) read() {
	defer close(s.chunks)
	buf := make([]byte, 512)
	for {
		n, err := s.rw.Read(buf)
		if n > 0 {
			select {
			case s.chunks <- bytes.Clone(buf[:n]):
			case <-s.done:
				return
			}
		}
		if err != nil {
			s.err = err
			return
		}
	}
}

// Close stops delivering what the device sends. The reading goroutine exits at
// the next failed Read (close the device) or delivery.
func (s *Session) Close() { close(s.done) }

// Info returns what Init and Connect learnt.
func (s *Session) Info() Info { return s.info }

// Latency returns the adapter's latency: the largest round trip of its
// latest AT commands (the ATZ one before any other), 0 before Init.
func (s *Session) Latency() time.Duration { return s.latency }

// Command sends cmd and a CR, reads up to the prompt, and returns the parsed
// reply with the time the prompt arrived. Whatever the adapter sent before the
// command (a late reply, a stale prompt) is discarded first. The adapter's
// latency (twice it) is added to timeout.
func (s *Session) Command(ctx context.Context, cmd string, timeout time.Duration) (Reply, time.Time, error) {
	return s.command(ctx, cmd, s.scaled(timeout), nil, 0)
}

// command is Command with timeout as given; accept, if not nil, decides
// whether a prompted reply is the answer to cmd: one it refuses is a stale
// reply that was on its way, and reading goes on until the next prompt or
// the timeout. With searchMax > 0, a reply that has printed SEARCHING... when
// the timeout comes is waited for on, up to searchMax in all
// (obd.search_waits).
func (s *Session) command(ctx context.Context, cmd string, timeout time.Duration, accept func(Reply, error) bool, searchMax time.Duration) (Reply, time.Time, error) {
	s.inc("commands")
	if accept == nil {
		// A request of its own: a late reply is not waited for any more.
		s.timedOut, s.partial = "", nil
	}
	if s.timedOut == "" {
		if err := s.drain(); err != nil {
			return Reply{}, time.Time{}, err
		}
	}
	sent := time.Now()
	if _, err := io.WriteString(s.rw, cmd+"\r"); err != nil {
		return Reply{}, time.Time{}, fmt.Errorf("write %s: %w", cmd, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var raw []byte
	for {
		select {
		case <-ctx.Done():
			return Reply{}, time.Time{}, ctx.Err()
		case <-t.C:
			if left := searchMax - time.Since(sent); left > 0 && bytes.Contains(bytes.ToUpper(raw), []byte("SEARCHING")) {
				// Still searching: the adapter is alive and working.
				s.inc("search_waits")
				t.Reset(min(left, timeout))
				continue
			}
			s.inc("errors.timeout")
			if accept == nil {
				// The adapter may answer yet: the next prompt is this
				// request's (see skip).
				s.timedOut, s.partial, s.late = cmd, bytes.Clone(raw), nil
			}
			return Reply{}, time.Time{}, fmt.Errorf("%s: %w after %v (got %q)", cmd, ErrTimeout, time.Since(sent).Round(time.Millisecond), raw)
		case b, ok := <-s.chunks:
			if !ok {
				return Reply{}, time.Time{}, fmt.Errorf("read reply to %s: %w", cmd, s.readErr())
			}
			for len(b) > 0 {
				i := bytes.IndexByte(b, '>')
				if i < 0 {
					if len(raw)+len(b) > maxReply {
						s.inc("errors.overlong")
						raw = raw[:0] // keep waiting for the prompt, with bounded memory
					}
					raw = append(raw, b...)
					break
				}
				raw = append(raw, b[:i]...)
				b = b[i+1:]
				at := s.now()
				r, err := ParseReply(raw, cmd)
				s.countDropped(raw, r)
				if accept != nil && !accept(r, err) {
					s.skip(raw, at)
					raw = raw[:0]
					continue
				}
				if r.Searching {
					s.inc("searching")
				}
				s.measure(cmd, time.Since(sent))
				if err != nil {
					s.countErr(err)
					return Reply{}, at, fmt.Errorf("%s: %w", cmd, err)
				}
				return r, at, nil
			}
		}
	}
}

// skip takes a prompted reply that does not answer the command waited for
// (Resync's ATI, the ATZ of Init). The adapter answers its commands in
// order, so the first one after a request timed out ends that request's
// reply: the reply came, only after the timeout (the link was slow, or this
// process was not scheduled in time). It is kept, for LateQuery, LateDTCs
// and LateVIN, when it parses as a reply to that request
// (obd.late_replies); any other is stale (obd.stale_prompts).
func (s *Session) skip(raw []byte, at time.Time) {
	cmd, partial := s.timedOut, s.partial
	s.timedOut, s.partial = "", nil
	if cmd != "" {
		if r, err := ParseReply(append(partial, raw...), cmd); err == nil {
			s.late = &lateReply{cmd: cmd, reply: r, at: at}
			s.inc("late_replies")
			return
		}
	}
	s.inc("stale_prompts")
}

// measure takes the round trip of an answered AT command into the
// latency: ATZ's (which includes the chip's restart) until others come.
func (s *Session) measure(cmd string, rtt time.Duration) {
	if !strings.HasPrefix(cmd, "AT") {
		return
	}
	if cmd == "ATZ" {
		if s.nRTT == 0 {
			s.latency = rtt
		}
		return
	}
	s.rtts[s.nRTT%latencyWindow] = rtt
	s.nRTT++
	s.latency = 0
	for _, d := range s.rtts[:min(s.nRTT, latencyWindow)] {
		s.latency = max(s.latency, d)
	}
}

// scaled adds the adapter's latency, twice, to a timeout: once for the
// command to arrive and the answer to come back, once for the jitter of a
// slow link.
func (s *Session) scaled(d time.Duration) time.Duration { return d + 2*s.latency }

// countDropped counts what ParseReply threw away: bytes that are not
// printable ASCII, and lines marked <DATA ERROR.
func (s *Session) countDropped(raw []byte, r Reply) {
	n := 0
	for _, b := range raw {
		if b != '\r' && b != '\n' && (b < 0x20 || b > 0x7e) {
			n++
		}
	}
	if n > 0 {
		s.add("garbage_bytes", uint64(n))
	}
	if r.Dropped > 0 {
		s.add("dropped_lines", uint64(r.Dropped))
	}
}

// drain discards what is already waiting from the device.
func (s *Session) drain() error {
	for {
		select {
		case _, ok := <-s.chunks:
			if !ok {
				return fmt.Errorf("read: %w", s.readErr())
			}
		default:
			return nil
		}
	}
}

func (s *Session) readErr() error {
	if s.err == nil {
		return io.EOF
	}
	return s.err
}

// Resync gets back in step with an adapter that missed a prompt: it sends
// ATI (any character also interrupts a request still running) and reads
// until the answer to it: the identification, or "?" when the interrupted
// request swallowed the A. Of the prompts before it, the first is the end
// of the reply to the request that timed out: kept when it answers that
// request (obd.late_replies; LateQuery, LateDTCs and LateVIN return it),
// skipped otherwise, as are the others (obd.stale_prompts).
func (s *Session) Resync(ctx context.Context) error {
	s.inc("resyncs")
	_, _, err := s.command(ctx, "ATI", s.timeout(), func(r Reply, err error) bool {
		var ae *AdapterError
		if errors.As(err, &ae) && ae.Code == "unknown_command" {
			return true
		}
		return slices.ContainsFunc(r.Lines, looksLikeVersion)
	}, 0)
	var ae *AdapterError
	if err == nil || errors.As(err, &ae) {
		s.timedOut, s.partial = "", nil // the answer to ATI came: in step again
		return nil
	}
	return fmt.Errorf("resync: %w", err)
}

// Init resets the adapter and configures it: ATZ (whose reply must carry an
// ELM banner; stale prompts before it are skipped), echo off (ATE0; echoed
// commands are stripped anyway), linefeeds off (ATL0), spaces off (ATS0),
// headers on (ATH1, so that each ECU's reply can be told apart), automatic
// protocol (ATSP0), then the identification (ATI). Only ATZ and ATSP0 must
// succeed: clones refuse some of the others, and the parser copes without
// them. It returns an error wrapping ErrNoBanner when something other than an
// ELM327 answered.
func (s *Session) Init(ctx context.Context) (Info, error) {
	s.info, s.search = Info{}, nil
	s.nRTT, s.latency = 0, 0
	s.timedOut, s.partial, s.late = "", nil, nil
	banner := ""
	hasBanner := func(r Reply, _ error) bool {
		for _, l := range r.Lines {
			if strings.Contains(strings.ToUpper(l), "ELM") {
				banner = l
				return true
			}
		}
		return false
	}
	var err error
	for i := range 2 {
		// The second try waits twice as long: a slow link.
		if _, _, err = s.command(ctx, "ATZ", (1+time.Duration(i))*or(s.ResetTimeout, DefaultResetTimeout), hasBanner, 0); !errors.Is(err, ErrTimeout) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
			return Info{}, fmt.Errorf("reset: %w: %w", ErrNoBanner, err)
		}
		return Info{}, fmt.Errorf("reset: %w", err)
	}
	headers := false
	for _, cmd := range []string{"ATE0", "ATL0", "ATS0", "ATH1", "ATSP0"} {
		ok, err := s.ok(ctx, cmd)
		if err != nil {
			return Info{}, err
		}
		switch {
		case cmd == "ATH1":
			headers = ok
		case cmd == "ATSP0" && !ok:
			return Info{}, fmt.Errorf("ATSP0: automatic protocol refused")
		}
		if !ok {
			s.inc("settings_refused")
		}
	}
	s.info = Info{Adapter: banner, Format: Format{Headers: headers}}
	if r, _, err := s.command(ctx, "ATI", s.timeout(), nil, 0); err == nil && len(r.Lines) > 0 && looksLikeVersion(r.Lines[0]) {
		s.info.Adapter = r.Lines[0]
	} else if err != nil && !errors.Is(err, ErrAdapter) {
		return Info{}, err
	}
	return s.info, nil
}

// ok sends a setting and reports whether the adapter answered OK; an error
// reply is a false, a timeout or a failed device an error.
func (s *Session) ok(ctx context.Context, cmd string) (bool, error) {
	r, _, err := s.command(ctx, cmd, s.timeout(), nil, 0)
	if errors.Is(err, ErrAdapter) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return strings.EqualFold(r.Lines[len(r.Lines)-1], "OK"), nil
}

func looksLikeVersion(l string) bool {
	u := strings.ToUpper(l)
	return strings.Contains(u, "ELM") || strings.Contains(u, "STN") || strings.Contains(u, "V1") || strings.Contains(u, "V2")
}

// Voltage reads the supply voltage at the OBD connector (ATRV: "12.6V"). A
// reading below NoSupplyVolts is returned as it is: see SupplyMissing.
func (s *Session) Voltage(ctx context.Context) (float64, error) {
	r, _, err := s.command(ctx, "ATRV", s.timeout(), nil, 0)
	if err != nil {
		return 0, err
	}
	l := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.ToUpper(r.Lines[0])), "V"))
	v, perr := strconv.ParseFloat(l, 64)
	if perr != nil || v < 0 || v > 40 {
		err := &AdapterError{Code: "garbage", Text: r.Lines[0]}
		s.countErr(err)
		return 0, fmt.Errorf("ATRV: %w", err)
	}
	return v, nil
}

// SupplyMissing reports whether an ATRV reading says the adapter is not
// powered from the vehicle.
func SupplyMissing(volts float64) bool { return volts < NoSupplyVolts }

// Connect makes the adapter find the vehicle: 0100 with the search timeout
// (the automatic protocol search prints SEARCHING... first; while it does,
// the session waits up to SearchMax), then the protocol it settled on
// (ATDPN, ATDP). It returns an *AdapterError when no ECU answered (UNABLE
// TO CONNECT, NO DATA: the ignition is off, or no vehicle), wrapped in
// ErrBusFault when the bus cannot be used (see ErrBusFault), leaving the
// protocol unknown. An ATDPN or ATDP that is not answered in time leaves
// the protocol unknown (obd.unknown_protocol) and the session goes on.
func (s *Session) Connect(ctx context.Context) error {
	var r Reply
	var err error
	for try := range 2 {
		r, _, err = s.command(ctx, "0100", s.scaled(or(s.SearchTimeout, DefaultSearchTimeout)), nil, or(s.SearchMax, DefaultSearchMax))
		if !busBusy(err) || try == 1 {
			break
		}
		s.inc("retries")
	}
	if busFault(err) {
		s.inc("bus_faults")
		return fmt.Errorf("%w: %w", ErrBusFault, err)
	}
	if err != nil {
		return err
	}
	s.search = r.Lines
	p := uint64(ProtoUnknown)
	r, _, err = s.command(ctx, "ATDPN", s.timeout(), nil, 0)
	switch {
	case err == nil:
		n, perr := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(r.Lines[0]), "A"), 16, 8)
		if perr == nil && ProtocolName(byte(n)) != "" {
			p = n
		}
	case errors.Is(err, ErrTimeout):
		if err := s.Resync(ctx); err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
	case !errors.Is(err, ErrAdapter):
		return fmt.Errorf("protocol: %w", err)
	}
	if p == uint64(ProtoUnknown) {
		s.inc("unknown_protocol")
	}
	s.info.Format.Protocol = byte(p)
	s.info.Protocol = ProtocolName(byte(p))
	r, _, err = s.command(ctx, "ATDP", s.timeout(), nil, 0)
	switch {
	case err == nil:
		if name := strings.TrimPrefix(r.Lines[0], "AUTO, "); strings.Contains(name, "(") || strings.Contains(name, "J1850") || strings.Contains(name, "9141") {
			s.info.Protocol = name
		}
	case errors.Is(err, ErrTimeout):
		return s.Resync(ctx)
	case !errors.Is(err, ErrAdapter):
		return err
	}
	return nil
}

// busFault reports whether err is a reply that says the bus cannot be used.
func busFault(err error) bool {
	var ae *AdapterError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case "can_error", "bus_error", "fb_error", "bus_init", "bus_busy":
		return true
	}
	return false
}

func busBusy(err error) bool {
	var ae *AdapterError
	return errors.As(err, &ae) && ae.Code == "bus_busy"
}

// Request sends an OBD request (hex) and returns the messages of its reply,
// in the session's format. Lines it could not use are counted as
// obd.dropped_lines; when none was usable the error is theirs.
func (s *Session) Request(ctx context.Context, cmd string) ([]Message, time.Time, error) {
	r, at, err := s.command(ctx, cmd, s.timeout(), nil, 0)
	if err != nil {
		return nil, at, err
	}
	return s.request(cmd, r, at)
}

func (s *Session) request(cmd string, r Reply, at time.Time) ([]Message, time.Time, error) {
	msgs, err := s.messages(r.Lines)
	if err != nil {
		return nil, at, fmt.Errorf("%s: %w", cmd, err)
	}
	return msgs, at, nil
}

// errNoLate: no reply to the request came after it timed out, or it was
// taken already.
var errNoLate = errors.New("no late reply")

// lateRequest returns, once, the messages of the reply to cmd that came
// after cmd timed out (see skip).
func (s *Session) lateRequest(cmd string) ([]Message, time.Time, error) {
	l := s.late
	if l == nil || l.cmd != cmd {
		return nil, time.Time{}, fmt.Errorf("%s: %w", cmd, errNoLate)
	}
	s.late = nil
	return s.request(cmd, l.reply, l.at)
}

func (s *Session) messages(lines []string) ([]Message, error) {
	msgs, dropped, err := ParseMessages(lines, s.info.Format)
	if len(msgs) == 0 {
		if err == nil {
			err = &AdapterError{Code: "empty", Text: strings.Join(lines, " ")}
		}
		s.countErr(err)
		return nil, err
	}
	if dropped > 0 {
		s.add("dropped_lines", uint64(dropped))
	}
	return msgs, nil
}

// Query asks for Mode 01 pids in one request (up to six, on CAN) and
// returns the values of those answered, by PID, with the time the reply
// arrived. A PID missing from the map was not answered; the error is set
// only when none was.
func (s *Session) Query(ctx context.Context, pids ...byte) (map[byte][]Value, time.Time, error) {
	cmd := queryCommand(pids)
	msgs, at, err := s.Request(ctx, cmd)
	return s.values(cmd, pids, msgs, at, err)
}

// LateQuery returns what Query of pids would have, from its reply that came
// after Query timed out: Resync, which must follow the timeout, keeps it.
// It returns false when no such reply came, or it held no value.
func (s *Session) LateQuery(pids ...byte) (map[byte][]Value, time.Time, bool) {
	cmd := queryCommand(pids)
	msgs, at, err := s.lateRequest(cmd)
	vals, at, err := s.values(cmd, pids, msgs, at, err)
	return vals, at, err == nil
}

func queryCommand(pids []byte) string {
	cmd := "01"
	for _, p := range pids {
		cmd += fmt.Sprintf("%02X", p)
	}
	return cmd
}

// values decodes the messages of a Query's reply.
func (s *Session) values(cmd string, pids []byte, msgs []Message, at time.Time, err error) (map[byte][]Value, time.Time, error) {
	if err != nil {
		return nil, at, err
	}
	data, err := Mode01(msgs, pids)
	if err != nil {
		s.countErr(err)
		return nil, at, fmt.Errorf("%s: %w", cmd, err)
	}
	out := map[byte][]Value{}
	var first error
	for pid, d := range data {
		p, _ := Lookup(pid)
		vs, err := p.Values(d)
		if err != nil {
			first = firstErr(first, err)
			continue
		}
		out[pid] = vs
	}
	if len(out) == 0 {
		s.countErr(first)
		return nil, at, fmt.Errorf("%s: %w", cmd, first)
	}
	return out, at, nil
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Supported runs the discovery: 0100 (the search's reply when Connect has
// just run), then 0120, 0140, ... up to 01C0 while an ECU says the next
// range is supported. It returns the union of the PIDs the ECUs claim.
func (s *Session) Supported(ctx context.Context) ([]byte, error) {
	var all []byte
	for base := 0; base <= 0xC0; base += 0x20 {
		var msgs []Message
		var err error
		if base == 0 && s.search != nil {
			msgs, err = s.messages(s.search)
			s.search = nil
		} else {
			msgs, _, err = s.Request(ctx, fmt.Sprintf("01%02X", base))
		}
		if err != nil {
			if base == 0 || !errors.Is(err, ErrAdapter) {
				return all, err
			}
			break // a range nobody answers ends the discovery
		}
		got, more, err := Supported(msgs, byte(base))
		if err != nil {
			s.countErr(err)
			if base == 0 {
				return nil, err
			}
			break
		}
		all = append(all, got...)
		if !more {
			break
		}
	}
	return all, nil
}

// DTCs reads the trouble codes of one kind (DTCStored, DTCPending or
// DTCPermanent).
func (s *Session) DTCs(ctx context.Context, mode byte) ([]string, error) {
	cmd := fmt.Sprintf("%02X", mode)
	msgs, _, err := s.Request(ctx, cmd)
	return s.dtcs(cmd, mode, msgs, err)
}

// LateDTCs is LateQuery for DTCs.
func (s *Session) LateDTCs(mode byte) ([]string, bool) {
	cmd := fmt.Sprintf("%02X", mode)
	msgs, _, err := s.lateRequest(cmd)
	codes, err := s.dtcs(cmd, mode, msgs, err)
	return codes, err == nil
}

func (s *Session) dtcs(cmd string, mode byte, msgs []Message, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	codes, err := DTCs(msgs, mode, s.info.Format)
	if err != nil {
		s.countErr(err)
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return codes, nil
}

// VIN reads the vehicle identification number (Mode 09 PID 02).
func (s *Session) VIN(ctx context.Context) (string, error) {
	msgs, _, err := s.Request(ctx, "0902")
	return s.vin(msgs, err)
}

// LateVIN is LateQuery for VIN.
func (s *Session) LateVIN() (string, bool) {
	msgs, _, err := s.lateRequest("0902")
	vin, err := s.vin(msgs, err)
	return vin, err == nil
}

func (s *Session) vin(msgs []Message, err error) (string, error) {
	if err != nil {
		return "", err
	}
	vin, err := VIN(msgs)
	if err != nil {
		s.countErr(err)
		return "", fmt.Errorf("0902: %w", err)
	}
	return vin, nil
}

func (s *Session) timeout() time.Duration { return s.scaled(or(s.Timeout, DefaultTimeout)) }

func (s *Session) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// countErr counts a failed request under obd.errors.<code>.
func (s *Session) countErr(err error) {
	var ae *AdapterError
	if errors.As(err, &ae) {
		s.inc("errors." + ae.Code)
	}
}

func (s *Session) inc(name string) { s.add(name, 1) }

func (s *Session) add(name string, n uint64) {
	if s.Counters != nil {
		s.Counters.Add("obd."+name, n)
	}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
