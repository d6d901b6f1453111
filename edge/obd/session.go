package obd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

// ErrTimeout is wrapped by Session errors when the adapter did not finish its
// reply (the '>' prompt) within the command's timeout.
var ErrTimeout = errors.New("adapter timeout")

// Default timeouts. ATZ restarts the chip (about a second); a first Mode 01
// request after ATSP0 may search protocols for several seconds.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultResetTimeout = 5 * time.Second
)

// maxReply bounds the bytes kept while waiting for a prompt, so that an
// adapter spewing garbage without a prompt cannot grow memory.
const maxReply = 4096

// Session is one ELM327 dialogue over an opened device. NewSession starts a
// goroutine that reads the device; it ends when a Read fails, so close the
// device after Close. A Session is not safe for concurrent use.
type Session struct {
	rw           io.ReadWriter
	Timeout      time.Duration // per command; DefaultTimeout if 0
	ResetTimeout time.Duration // for ATZ; DefaultResetTimeout if 0
	Counters     *edge.Counters
	Now          func() time.Time

	chunks chan []byte
	done   chan struct{}
	err    error // the read error, set before chunks is closed
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

// Command sends cmd and a CR, reads up to the prompt, and returns the parsed
// reply with the time the prompt arrived. Whatever the adapter sent before the
// command (a late reply, a stale prompt) is discarded first. It returns an
// error wrapping ErrTimeout, an *AdapterError, ctx.Err(), or the device's read
// or write error (the session is then over).
func (s *Session) Command(ctx context.Context, cmd string, timeout time.Duration) (Reply, time.Time, error) {
	s.inc("commands")
	if err := s.drain(); err != nil {
		return Reply{}, time.Time{}, err
	}
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
			s.inc("errors.timeout")
			return Reply{}, time.Time{}, fmt.Errorf("%s: %w after %v (got %q)", cmd, ErrTimeout, timeout, raw)
		case b, ok := <-s.chunks:
			if !ok {
				return Reply{}, time.Time{}, fmt.Errorf("read reply to %s: %w", cmd, s.readErr())
			}
			if i := bytes.IndexByte(b, '>'); i >= 0 {
				at := s.now()
				raw = append(raw, b[:i]...)
				r, err := ParseReply(raw, cmd)
				if r.Searching {
					s.inc("searching")
				}
				var ae *AdapterError
				if errors.As(err, &ae) {
					s.inc("errors." + ae.Code)
				}
				return r, at, err
			}
			if len(raw)+len(b) > maxReply {
				s.inc("errors.overlong")
				raw = raw[:0] // keep waiting for the prompt, with bounded memory
				continue
			}
			raw = append(raw, b...)
		}
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

// setup is the initialisation dialogue: reset, then echo, linefeeds, spaces
// and headers off, then automatic protocol selection.
var setup = []string{"ATE0", "ATL0", "ATS0", "ATH0", "ATSP0"}

// Init resets the adapter (ATZ, which must answer with an ELM banner) and
// configures it; every setting must answer OK. It returns the banner, e.g.
// "ELM327 v1.5".
func (s *Session) Init(ctx context.Context) (string, error) {
	r, _, err := s.Command(ctx, "ATZ", or(s.ResetTimeout, DefaultResetTimeout))
	if err != nil {
		return "", fmt.Errorf("reset: %w", err)
	}
	banner := ""
	for _, l := range r.Lines {
		if strings.Contains(strings.ToUpper(l), "ELM") {
			banner = l
		}
	}
	if banner == "" {
		return "", fmt.Errorf("reset: no ELM327 banner in %q", r.Lines)
	}
	for _, cmd := range setup {
		r, _, err := s.Command(ctx, cmd, or(s.Timeout, DefaultTimeout))
		if err != nil {
			return "", fmt.Errorf("%s: %w", cmd, err)
		}
		if len(r.Lines) == 0 || !strings.EqualFold(r.Lines[len(r.Lines)-1], "OK") {
			return "", fmt.Errorf("%s: want OK, got %q", cmd, r.Lines)
		}
	}
	return banner, nil
}

// Query asks for Mode 01 PID pid and returns its value in the unit of the PID
// table and the agent time the reply arrived. Errors as for Command, plus an
// *AdapterError for a reply that does not carry the PID's data.
func (s *Session) Query(ctx context.Context, pid byte) (float64, time.Time, error) {
	cmd := fmt.Sprintf("01%02X", pid)
	r, at, err := s.Command(ctx, cmd, or(s.Timeout, DefaultTimeout))
	if err != nil {
		return 0, at, err
	}
	v, err := DecodeMode01(r.Lines, pid)
	if err != nil {
		var ae *AdapterError
		if errors.As(err, &ae) {
			s.inc("errors." + ae.Code)
		}
		return 0, at, fmt.Errorf("%s: %w", cmd, err)
	}
	return v, at, nil
}

func (s *Session) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Session) inc(name string) {
	if s.Counters != nil {
		s.Counters.Inc("obd." + name)
	}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
