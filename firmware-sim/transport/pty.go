// Package transport exposes the emulated devices to the programs under test:
// pseudo-terminals with stable symlink names, so that an agent opens the
// simulator exactly as it opens a USB serial adapter, or TCP ports, as for
// receivers and adapters served over the network. Both can be unplugged and
// plugged back in, as a tester pulls a USB cable.
package transport

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// ErrUnplugged is returned by Read and Write of an unplugged port. It wraps
// firmwaresim.ErrLinkDown.
var ErrUnplugged = fmt.Errorf("device unplugged: %w", firmwaresim.ErrLinkDown)

// DefaultBaud is the line speed a PTY starts with when OpenPTY is given 0.
const DefaultBaud = 9600

// drainTimeout bounds how long Unplug waits for a client to read what was
// already written to a pty.
const drainTimeout = 2 * time.Second

// PTY is a pseudo-terminal whose master side the simulator reads and writes.
// The simulator keeps the slave side open itself, in raw mode, so that bytes
// written before a client opens the port wait for it, and so that a client
// may close and reopen the port without the terminal hanging up or losing its
// settings.
//
// Clients that open the port exclusively (TIOCEXCL, as go.bug.st/serial does)
// would leave the flag set when they close or crash, because the simulator's
// own descriptor keeps the terminal alive, and a non-root client would then
// get EBUSY on reopen. The PTY therefore clears the flag (TIOCNXCL) whenever a
// client closes the device, watched with inotify (or every half second where
// inotify is not available).
//
// Read and Write may be called from different goroutines, concurrently with
// Unplug, Replug and Close.
type PTY struct {
	link string
	baud int

	mu       sync.Mutex
	cur      *ptyPair      // nil while unplugged
	replug   chan struct{} // closed at the next Replug; set while unplugged
	gen      int           // Unplugs so far
	readGen  int           // Unplugs the reader has been told of
	closed   chan struct{}
	isClosed bool
}

// ptyPair is one plugged-in life of the port: a terminal, its slave device
// and the watcher of its exclusive flag.
type ptyPair struct {
	master *os.File
	slave  *os.File
	watch  *exclWatcher
}

// OpenPTY opens a pseudo-terminal, puts it in raw mode (no echo, no line
// editing, no CR/LF translation, 8 bits) at baud (DefaultBaud if 0), makes
// the device readable and writable by every user (the agent under test need
// not run as the simulator's user) and, if link is not empty, points the
// symbolic link link at its slave device, replacing whatever was there in one
// rename. The port is ready to be opened once OpenPTY returns.
func OpenPTY(link string, baud int) (*PTY, error) {
	if baud <= 0 {
		baud = DefaultBaud
	}
	p := &PTY{link: link, baud: baud, closed: make(chan struct{})}
	pp, err := p.open()
	if err != nil {
		return nil, err
	}
	p.cur = pp
	return p, nil
}

func (p *PTY) open() (*ptyPair, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	pp := &ptyPair{slave: s}
	// pty.Open leaves the master in blocking mode (it asks for the fd), where
	// Close cannot interrupt a pending Read or Write. Put a non-blocking copy
	// under the runtime's poller instead.
	pp.master, err = pollable(m)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := configure(s, p.baud); err != nil {
		pp.close()
		return nil, fmt.Errorf("pty %s: raw mode: %w", s.Name(), err)
	}
	if err := os.Chmod(s.Name(), 0o666); err != nil {
		pp.close()
		return nil, fmt.Errorf("pty %s: %w", s.Name(), err)
	}
	pp.watch = watchExclusive(s)
	if p.link != "" {
		if err := placeLink(s.Name(), p.link); err != nil {
			pp.close()
			return nil, err
		}
	}
	return pp, nil
}

func (pp *ptyPair) close() error {
	if pp.watch != nil {
		pp.watch.stop()
	}
	return errors.Join(pp.master.Close(), pp.slave.Close())
}

func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// control runs fn on the descriptor of f.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = fn(int(fd)) }); err != nil {
		return err
	}
	return ioErr
}

// configure sets the terminal's modes as cfmakeraw(3) does, and its speed.
func configure(slave *os.File, baud int) error {
	return control(slave, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
		if err != nil {
			return err
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
		t.Cflag |= unix.CS8 | unix.BOTHER
		t.Ispeed, t.Ospeed = uint32(baud), uint32(baud)
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		return unix.IoctlSetTermios(fd, unix.TCSETS2, t)
	})
}

// placeLink points link at target atomically: a symlink under a temporary
// name in the same directory, renamed over link.
func placeLink(target, link string) error {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".tmp-"+hex.EncodeToString(b[:]))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

// removeLink removes link if it still points at target.
func removeLink(link, target string) error {
	if link == "" {
		return nil
	}
	if t, err := os.Readlink(link); err == nil && t == target {
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove link %s: %w", link, err)
		}
	}
	return nil
}

// Addr returns the slave device, e.g. /dev/pts/3: what clients open. It is
// the current one (a Replug makes a new device) and "" while unplugged.
func (p *PTY) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return ""
	}
	return p.cur.slave.Name()
}

// Link returns the symbolic link the PTY keeps pointed at its device, or "".
func (p *PTY) Link() string { return p.link }

// Baud returns the line speed the client last set on the terminal (the
// PTY's own speed until a client sets one), and false while unplugged.
func (p *PTY) Baud() (int, bool) {
	p.mu.Lock()
	pp := p.cur
	p.mu.Unlock()
	if pp == nil {
		return 0, false
	}
	var speed int
	err := control(pp.slave, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
		if err != nil {
			return err
		}
		speed = int(t.Ospeed)
		return nil
	})
	if err != nil {
		return 0, false
	}
	return speed, true
}

// current returns the plugged-in terminal. While unplugged it returns
// ErrUnplugged, or with reading set waits for the next Replug. A reader is
// told of every unplug once: with reading set it returns ErrUnplugged if the
// port was unplugged since the reader last heard of it. It returns
// os.ErrClosed after Close.
func (p *PTY) current(reading bool) (*ptyPair, error) {
	for {
		p.mu.Lock()
		pp, replug, closed := p.cur, p.replug, p.isClosed
		missed := reading && p.readGen != p.gen
		if missed {
			p.readGen = p.gen
		}
		p.mu.Unlock()
		switch {
		case closed:
			return nil, os.ErrClosed
		case missed:
			return nil, ErrUnplugged
		case pp != nil:
			return pp, nil
		case !reading:
			return nil, ErrUnplugged
		}
		select {
		case <-replug:
		case <-p.closed:
		}
	}
}

// failed maps the error of an I/O on pp: if pp was unplugged meanwhile, the
// error is ErrUnplugged.
func (p *PTY) failed(pp *ptyPair, err error, reading bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != pp && !p.isClosed {
		if reading {
			p.readGen = p.gen
		}
		return ErrUnplugged
	}
	return err
}

// Read reads what clients wrote to the port. It returns ErrUnplugged once
// after each Unplug (whether it was pending then or called later), so that
// the emulated device resets as it loses power, and then waits for Replug.
// Only one goroutine should read.
func (p *PTY) Read(b []byte) (int, error) {
	pp, err := p.current(true)
	if err != nil {
		return 0, err
	}
	n, err := pp.master.Read(b)
	if err != nil {
		err = p.failed(pp, err, true)
	}
	return n, err
}

// Write sends bytes to the port's clients. It blocks while the terminal's
// buffers are full (no client reads). It returns ErrUnplugged while the port
// is unplugged, or when it is unplugged during the Write.
func (p *PTY) Write(b []byte) (int, error) {
	pp, err := p.current(false)
	if err != nil {
		return 0, err
	}
	n, err := pp.master.Write(b)
	if err != nil {
		err = p.failed(pp, err, false)
	}
	return n, err
}

// SetReadDeadline sets the deadline for pending and future Reads of the
// current terminal.
func (p *PTY) SetReadDeadline(t time.Time) error {
	pp, err := p.current(false)
	if err != nil {
		return err
	}
	return pp.master.SetReadDeadline(t)
}

// Unplug makes the device vanish as a USB adapter pulled out does: it waits
// (up to 2 s) for the client to read what was already written, removes the
// link, and closes the terminal, so that the client's reads fail and its
// reopen finds nothing until Replug. Unplugging an unplugged port does
// nothing.
func (p *PTY) Unplug() error {
	p.mu.Lock()
	pp := p.cur
	p.mu.Unlock()
	if pp == nil {
		return nil
	}
	drain(pp.slave, drainTimeout)
	p.mu.Lock()
	if p.cur != pp {
		p.mu.Unlock()
		return nil
	}
	p.cur, p.replug = nil, make(chan struct{})
	p.gen++
	p.mu.Unlock()
	return errors.Join(removeLink(p.link, pp.slave.Name()), pp.close())
}

// drain waits until the client has read the bytes written to the terminal,
// or until timeout.
func drain(slave *os.File, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if n, err := unread(slave); err != nil || n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unread returns how many bytes written to the terminal its client has not
// read yet. A write to the master leaves its bytes in the terminal's flip
// buffer until a kernel worker moves them to the line discipline's input
// queue, the only place TIOCINQ counts: right after a write it often reads 0.
// poll(2) on the slave moves them first (n_tty's poll flushes the flip buffer
// when it finds no input), so the count that follows is exact.
func unread(slave *os.File) (int, error) {
	var n int
	err := control(slave, func(fd int) error {
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCINQ)
		return err
	})
	return n, err
}

// Replug plugs the device back in: a new terminal (a new /dev/pts/N) with the
// same settings, and the link pointed at it. Replugging a plugged port does
// nothing.
func (p *PTY) Replug() error {
	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		return os.ErrClosed
	}
	if p.cur != nil {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	pp, err := p.open()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed {
		return errors.Join(os.ErrClosed, removeLink(p.link, pp.slave.Name()), pp.close())
	}
	p.cur = pp
	close(p.replug)
	p.replug = nil
	return nil
}

// Close removes the link (if it still points at this terminal) and closes the
// terminal; pending and later Reads and Writes fail.
func (p *PTY) Close() error {
	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		return nil
	}
	p.isClosed = true
	close(p.closed)
	pp := p.cur
	p.cur = nil
	p.mu.Unlock()
	if pp == nil {
		return nil
	}
	return errors.Join(removeLink(p.link, pp.slave.Name()), pp.close())
}
