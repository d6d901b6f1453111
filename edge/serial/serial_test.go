package serial_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// parseTests are device URLs, the rate each opens at and whether Parse
// accepts it. FuzzParse seeds from them too.
var parseTests = []struct {
	url  string
	baud int // 0 for tcp
	ok   bool
}{
	{"/dev/ttyUSB0", 9600, true},
	{"serial:///dev/ttyUSB0?baud=4800", 4800, true},
	{"/tmp/sim/veh-001-gps", 9600, true},
	{"serial:///dev/ttyUSB0", 9600, true},
	{"serial:///dev/ttyUSB0?baud=115200", 115200, true},
	{"tcp://127.0.0.1:2947", 0, true},
	{"tcp://[::1]:35000", 0, true},
	{"serial:///dev/ttyUSB0?baud=fast", 0, false},
	{"serial:///dev/ttyUSB0?baud=-9600", 0, false},
	{"serial:///dev/ttyUSB0?parity=odd", 0, false},
	{"serial://dev/ttyUSB0", 0, false},
	{"tcp://host", 0, false},
	{"tcp://host:1/path", 0, false},
	{"udp://host:1", 0, false},
	{"ttyUSB0", 0, false},
	{"", 0, false},
	// Found by FuzzParse: a port or a rate nothing can open.
	{"tcp://0:0", 0, false},
	{"tcp://host:65536", 0, false},
	{"tcp://::1", 0, false}, // port "1" of host ":", to the URL parser
	{"tcp://host:65535", 0, true},
	{"serial:/?baud=1", 0, false},
	{"serial:///dev/ttyUSB0?baud=4294976896", 0, false}, // 9600 once cut to 32 bits
	{"serial:///dev/ttyUSB0?baud=4000000", 4000000, true},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		d, err := serial.Parse(tt.url)
		if !tt.ok {
			if err == nil || !errors.Is(err, serial.ErrURL) {
				t.Errorf("Parse(%q) = %v, %v; want an error wrapping ErrURL", tt.url, d, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.url, err)
			continue
		}
		if d.String() != tt.url || d.Baud() != tt.baud {
			t.Errorf("Parse(%q) = %q at %d baud, want %d baud", tt.url, d.String(), d.Baud(), tt.baud)
		}
		// A rate in the URL is the only one tried; without one, the defaults.
		wantBauds := serial.DefaultBauds
		switch {
		case tt.baud == 0:
			wantBauds = nil
		case strings.Contains(tt.url, "baud="):
			wantBauds = []int{tt.baud}
		}
		if got := d.Bauds(); fmt.Sprint(got) != fmt.Sprint(wantBauds) {
			t.Errorf("Parse(%q).Bauds() = %v, want %v", tt.url, got, wantBauds)
		}
	}
}

// TestSetBaud changes the rate of an open pty: at the rate it has, input
// waiting since before the open is kept; at another, it is dropped (it was
// read at the old rate) and what comes after is read.
func TestSetBaud(t *testing.T) {
	master, slave := newPty(t, true)
	if _, err := master.Write([]byte("$GPA*00\r\n")); err != nil {
		t.Fatal(err)
	}
	port := open(t, "serial://"+slave.Name()+"?baud=9600")
	setter, ok := port.(interface{ SetBaud(int) error })
	if !ok {
		t.Fatalf("%T has no SetBaud", port)
	}
	if err := setter.SetBaud(9600); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, port, port, 9); string(got) != "$GPA*00\r\n" {
		t.Fatalf("read %q after SetBaud at the same rate", got)
	}
	if _, err := master.Write([]byte("garbage")); err != nil {
		t.Fatal(err)
	}
	// The line discipline must hold the junk before SetBaud flushes it: no
	// event says the bytes arrived, so poll the input queue's length.
	testenv.Eventually(t, 30*time.Second, "the junk bytes in the pty's input queue", func() error {
		n, err := unix.IoctlGetInt(int(slave.Fd()), unix.TIOCINQ)
		if err != nil {
			return fmt.Errorf("TIOCINQ: %w", err)
		}
		if n < 7 {
			return fmt.Errorf("%d of 7 bytes queued", n)
		}
		return nil
	})
	if err := setter.SetBaud(115200); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte("$GPB*00\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, port, port, 9); string(got) != "$GPB*00\r\n" {
		t.Fatalf("read %q after SetBaud to a new rate, want the input after it", got)
	}
}

// newPty opens a pseudo-terminal the way the simulator does: the test keeps
// the slave side open, so data written to the master waits in the kernel.
func newPty(t *testing.T, raw bool) (master, slave *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("pty.Open: %v", err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	if raw {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		// cfmakeraw(3)
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
			t.Fatal(err)
		}
	}
	return master, slave
}

func open(t *testing.T, url string) io.ReadWriteCloser {
	t.Helper()
	d, err := serial.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rwc, err := d.Open(ctx)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { rwc.Close() })
	return rwc
}

// readN reads exactly n bytes from r or fails the test after a deadline; on
// failure it closes c to unblock the reader.
func readN(t *testing.T, r io.Reader, c io.Closer, n int) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("read: %v", res.err)
		}
		return res.b
	case <-time.After(10 * time.Second):
		c.Close()
		t.Fatalf("no %d bytes within 10s", n)
	}
	return nil
}

func TestPtyKeepsPendingInput(t *testing.T) {
	master, slave := newPty(t, true)
	// Written before the agent opens the port: must not be flushed.
	early := []byte("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n\x00\xff")
	if _, err := master.Write(early); err != nil {
		t.Fatal(err)
	}
	port := open(t, "serial://"+slave.Name()+"?baud=115200")
	if got := readN(t, port, port, len(early)); !bytes.Equal(got, early) {
		t.Fatalf("read %q, want %q", got, early)
	}
	// And the other direction: what the agent writes reaches the device.
	cmd := []byte("ATZ\r")
	if _, err := port.Write(cmd); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, master, master, len(cmd)); !bytes.Equal(got, cmd) {
		t.Fatalf("device read %q, want %q", got, cmd)
	}
}

func TestPtySetsRawMode(t *testing.T) {
	master, slave := newPty(t, false) // a fresh pty: canonical, echo, CR→NL
	port := open(t, slave.Name())
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"ICANON", tio.Lflag&unix.ICANON != 0},
		{"ECHO", tio.Lflag&unix.ECHO != 0},
		{"ISIG", tio.Lflag&unix.ISIG != 0},
		{"ICRNL", tio.Iflag&unix.ICRNL != 0},
		{"IXON", tio.Iflag&unix.IXON != 0},
		{"OPOST", tio.Oflag&unix.OPOST != 0},
	} {
		if f.set {
			t.Errorf("after Open, %s is still set", f.name)
		}
	}
	// Bytes arrive unchanged and at once, without waiting for a line end.
	in := []byte("41 0C 1A F8\r\r>")
	if _, err := master.Write(in); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, port, port, len(in)); !bytes.Equal(got, in) {
		t.Fatalf("read %q, want %q", got, in)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	_, slave := newPty(t, true)
	port := open(t, slave.Name())
	done := make(chan error, 1)
	go func() {
		_, err := port.Read(make([]byte, 16))
		done <- err
	}()
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read on a closed port returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked 10s after Close")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "not-a-tty")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "tcp://" + l.Addr().String()
	l.Close()
	tests := []struct {
		url       string
		transient bool
	}{
		{filepath.Join(dir, "unplugged"), true},
		{"serial://" + filepath.Join(dir, "unplugged") + "?baud=4800", true},
		{refused, true},
		{regular, false},
	}
	for _, tt := range tests {
		d, err := serial.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		rwc, err := d.Open(context.Background())
		if err == nil {
			rwc.Close()
			t.Errorf("Open(%s) succeeded", tt.url)
			continue
		}
		if got := errors.Is(err, edge.ErrTransient); got != tt.transient {
			t.Errorf("Open(%s) = %v; transient %v, want %v", tt.url, err, got, tt.transient)
		}
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	conn := open(t, "tcp://"+l.Addr().String())
	var srv net.Conn
	select {
	case srv = <-accepted:
		if srv == nil {
			t.Fatal("accept failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	defer srv.Close()
	nmea := []byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n")
	if _, err := srv.Write(nmea); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, conn, conn, len(nmea)); !bytes.Equal(got, nmea) {
		t.Fatalf("read %q, want %q", got, nmea)
	}
	if _, err := conn.Write([]byte("ATE0\r")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, srv, srv, 5); string(got) != "ATE0\r" {
		t.Fatalf("server read %q", got)
	}
}
