// Package serial opens the agent's devices by URL: serial ports and
// pseudo-terminals through go.bug.st/serial (the only package that imports it),
// and TCP sockets through net.Dialer, for receivers and adapters served over
// the network or by the simulator.
//
// Accepted URLs:
//
//	/dev/ttyUSB0                        a serial port (or pty), 8N1, rate to be detected
//	serial:///dev/ttyUSB0               the same
//	serial:///dev/ttyUSB0?baud=115200   the same at a fixed rate (MinBaud to MaxBaud)
//	tcp://host:port                     a TCP byte stream (port 1 to 65535)
//
// A port without a fixed rate opens at the first of DefaultBauds, and its
// Bauds method lists the rates a reader may try in turn (the GPS source's baud
// detection); the opened port's SetBaud changes the rate.
//
// Opening a port sets raw mode and does not flush input already waiting in the
// kernel, so nothing the device wrote before the agent opened it is lost.
package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	bugserial "go.bug.st/serial"

	"github.com/fleetgate/fleetgate/edge"
)

// DefaultBaud is the baud rate a port URL that names none opens at: 4800 is
// NMEA 0183's rate, but nearly every receiver and ELM327 adapter made since
// ships at 9600 or more.
const DefaultBaud = 9600

// MinBaud and MaxBaud bound the rates a URL may name (and gps.bauds):
// beyond them no UART runs, and go.bug.st/serial would cut a larger number
// to 32 bits and open the port at some other rate.
const (
	MinBaud = 50
	MaxBaud = 4000000
)

// DefaultBauds are the rates to try, in order, on a port whose URL names none:
// the common factory settings of GNSS receivers (u-blox, MediaTek, SiRF,
// Quectel: 9600; old receivers and the NMEA standard: 4800; SiRF binary-era
// and Garmin: 38400; high-rate u-blox and Septentrio: 115200).
var DefaultBauds = []int{DefaultBaud, 4800, 38400, 115200}

// ErrURL is wrapped by Parse errors for a device URL it does not accept.
var ErrURL = errors.New("invalid device URL")

// Device is a device named by URL. It implements edge.Device. Parse builds one.
type Device struct {
	url   string
	path  string // serial port path; "" for tcp
	addr  string // host:port for tcp
	baud  int
	fixed bool // the URL named the rate
	// DialTimeout bounds a tcp connect; default 5s.
	DialTimeout time.Duration
}

var _ edge.Device = (*Device)(nil)

// Parse checks a device URL and returns the Device it names. It returns an
// error wrapping ErrURL for anything else.
func Parse(rawURL string) (*Device, error) {
	d := &Device{url: rawURL, baud: DefaultBaud}
	if strings.HasPrefix(rawURL, "/") {
		d.path = rawURL
		return d, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrURL, rawURL, err)
	}
	switch u.Scheme {
	case "serial":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("%w %q: want serial:///absolute/path", ErrURL, rawURL)
		}
		d.path = u.Path
		for k, v := range u.Query() {
			switch k {
			case "baud":
				b, err := strconv.Atoi(v[0])
				if err != nil || b < MinBaud || b > MaxBaud {
					return nil, fmt.Errorf("%w %q: baud %q is not a rate from %d to %d", ErrURL, rawURL, v[0], MinBaud, MaxBaud)
				}
				d.baud, d.fixed = b, true
			default:
				return nil, fmt.Errorf("%w %q: unknown parameter %q (known: baud)", ErrURL, rawURL, k)
			}
		}
	case "tcp":
		_, port, err := net.SplitHostPort(u.Host)
		if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("%w %q: want tcp://host:port", ErrURL, rawURL)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w %q: port %q is not 1 to 65535", ErrURL, rawURL, port)
		}
		d.addr = u.Host
	default:
		return nil, fmt.Errorf("%w %q: scheme must be serial or tcp, or give a /dev path", ErrURL, rawURL)
	}
	return d, nil
}

// String returns the URL the device was parsed from.
func (d *Device) String() string { return d.url }

// Baud returns the baud rate a serial port is opened at (0 for tcp).
func (d *Device) Baud() int {
	if d.path == "" {
		return 0
	}
	return d.baud
}

// Bauds returns the rates worth trying: the URL's rate if it names one,
// DefaultBauds otherwise, nil for tcp.
func (d *Device) Bauds() []int {
	switch {
	case d.path == "":
		return nil
	case d.fixed:
		return []int{d.baud}
	}
	return append([]int(nil), DefaultBauds...)
}

// Open opens the port or connects the socket. Failures that may go away (no
// such device yet, port busy, connection refused) wrap edge.ErrTransient; a
// path that exists but is not a terminal does not. Closing the returned stream
// unblocks a Read in progress.
func (d *Device) Open(ctx context.Context) (io.ReadWriteCloser, error) {
	if d.path == "" {
		timeout := d.DialTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		c, err := nd.DialContext(ctx, "tcp", d.addr)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w: %w", d.url, edge.ErrTransient, err)
		}
		return c, nil
	}
	// A symlink (the simulator's stable names) is resolved at every open, so a
	// replugged device behind a new pty is found again.
	p, err := bugserial.Open(d.path, mode(d.baud))
	if err != nil {
		if transientOpenError(err) {
			return nil, fmt.Errorf("open %s: %w: %w", d.url, edge.ErrTransient, err)
		}
		return nil, fmt.Errorf("open %s: %w", d.url, err)
	}
	return &Port{Port: p, baud: d.baud}, nil
}

func mode(baud int) *bugserial.Mode {
	return &bugserial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   bugserial.NoParity,
		StopBits: bugserial.OneStopBit,
		// InitialStatusBits stays nil: setting DTR/RTS needs TIOCMGET, which
		// a pty does not support.
	}
}

// Port is an opened serial port.
type Port struct {
	bugserial.Port
	baud int
}

// SetBaud changes the line speed (8N1) and drops the input received so far,
// which was read at the old rate. At the rate the port already has it does
// nothing, so input waiting since before the open is kept. It returns the
// driver's error. Not safe for concurrent use with itself.
func (p *Port) SetBaud(baud int) error {
	if baud == p.baud {
		return nil
	}
	p.baud = baud
	if err := p.SetMode(mode(baud)); err != nil {
		return fmt.Errorf("set baud %d: %w", baud, err)
	}
	if err := p.ResetInputBuffer(); err != nil {
		return fmt.Errorf("set baud %d: %w", baud, err)
	}
	return nil
}

// transientOpenError says whether an open may succeed later: the device is
// missing (unplugged, not yet created), busy, or briefly not accessible (udev
// has not yet set its permissions).
func transientOpenError(err error) bool {
	var pe *bugserial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case bugserial.PortBusy, bugserial.PortNotFound, bugserial.PermissionDenied, bugserial.PortClosed:
			return true
		}
		return false
	}
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EACCES)
}
