// Package simtest holds helpers the simulator's tests share: a simulated
// clock that never waits, and opening a serial port the way an agent does.
package simtest

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Clock is a simulated clock that never waits: SleepUntil jumps to t. Tests
// may also set Now directly. It is not safe for concurrent use.
type Clock struct{ T time.Time }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.T }

// SleepUntil moves the clock to t (never backwards) and returns ctx.Err().
func (c *Clock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.T) {
		c.T = t
	}
	return ctx.Err()
}

// OpenPort opens a tty as an agent opens a serial port: read-write, without
// becoming its controlling terminal, in raw mode. The file is closed when the
// test ends.
func OpenPort(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var terr error
	if err := rc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		tio.Iflag &^= unix.ICRNL | unix.IXON | unix.INLCR | unix.IGNCR
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio)
	}); err != nil {
		t.Fatal(err)
	}
	if terr != nil {
		t.Fatal(terr)
	}
	return f
}
