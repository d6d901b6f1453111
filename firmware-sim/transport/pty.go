// Package transport exposes the emulated devices to the programs under test:
// pseudo-terminals with stable symlink names, so that an agent opens the
// simulator exactly as it opens a USB serial adapter. (TCP ports come later.)
package transport

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal whose master side the simulator reads and writes.
// The simulator keeps the slave side open itself, in raw mode, so that bytes
// written before a client opens the port wait for it, and so that a client
// may close and reopen the port without the terminal hanging up or losing its
// settings. Read and Write may be called from different goroutines; Close
// unblocks both.
type PTY struct {
	master *os.File
	slave  *os.File
	link   string
}

// OpenPTY opens a pseudo-terminal, puts it in raw mode (no echo, no line
// editing, no CR/LF translation, 8 bits) and, if link is not empty, points the
// symbolic link link at its slave device, replacing whatever was there in one
// rename. The port is ready to be opened once OpenPTY returns.
func OpenPTY(link string) (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	p := &PTY{slave: s}
	// pty.Open leaves the master in blocking mode (it asks for the fd), where
	// Close cannot interrupt a pending Read or Write. Put a non-blocking copy
	// under the runtime's poller instead.
	p.master, err = pollable(m)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := p.makeRaw(); err != nil {
		p.close()
		return nil, fmt.Errorf("pty %s: raw mode: %w", s.Name(), err)
	}
	if link != "" {
		if err := placeLink(s.Name(), link); err != nil {
			p.close()
			return nil, err
		}
		p.link = link
	}
	return p, nil
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

// makeRaw sets the terminal's modes as cfmakeraw(3) does.
func (p *PTY) makeRaw() error {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ioErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		ioErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err != nil {
		return err
	}
	return ioErr
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

// Path returns the slave device, e.g. /dev/pts/3: what clients open.
func (p *PTY) Path() string { return p.slave.Name() }

// Link returns the symbolic link OpenPTY placed, or "".
func (p *PTY) Link() string { return p.link }

// Read reads what clients wrote to the port.
func (p *PTY) Read(b []byte) (int, error) { return p.master.Read(b) }

// Write sends bytes to the port's clients. It blocks while the terminal's
// buffers are full (no client reads).
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

// SetReadDeadline sets the deadline for pending and future Reads.
func (p *PTY) SetReadDeadline(t time.Time) error { return p.master.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for pending and future Writes.
func (p *PTY) SetWriteDeadline(t time.Time) error { return p.master.SetWriteDeadline(t) }

// Close removes the link (if it still points at this terminal) and closes the
// terminal; pending and later Reads and Writes fail.
func (p *PTY) Close() error {
	var err error
	if p.link != "" {
		if target, rerr := os.Readlink(p.link); rerr == nil && target == p.Path() {
			if rmErr := os.Remove(p.link); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = fmt.Errorf("remove link %s: %w", p.link, rmErr)
			}
		}
	}
	return errors.Join(err, p.close())
}

func (p *PTY) close() error {
	return errors.Join(p.master.Close(), p.slave.Close())
}
