// Package simtest holds helpers only the simulator's tests share: a simulated
// clock that never waits, opening a serial port the way an agent does, and an
// independent distance. What every test tree shares (brokers, proxies,
// waiting) is in internal/testenv.
package simtest

import (
	"context"
	"math"
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
	if err := setTermios(f, unix.TCGETS, unix.TCSETS, func(tio *unix.Termios) {
		tio.Iflag &^= unix.ICRNL | unix.IXON | unix.INLCR | unix.IGNCR
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// SetBaud sets the line speed of an open tty, as a serial library does.
func SetBaud(f *os.File, baud int) error {
	return setTermios(f, unix.TCGETS2, unix.TCSETS2, func(tio *unix.Termios) {
		tio.Cflag &^= unix.CBAUD
		tio.Cflag |= unix.BOTHER
		tio.Ispeed, tio.Ospeed = uint32(baud), uint32(baud)
	})
}

// setTermios reads the terminal settings of f, lets change modify them and
// writes them back.
func setTermios(f *os.File, get, set uint, change func(*unix.Termios)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	if err := rc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), get)
		if err != nil {
			terr = err
			return
		}
		change(tio)
		terr = unix.IoctlSetTermios(int(fd), set, tio)
	}); err != nil {
		return err
	}
	return terr
}

// HaversineM is the great-circle distance in metres, written independently
// of the model's own projection.
func HaversineM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371008.8
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}
