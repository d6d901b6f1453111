package transport_test

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// helperEnv makes the test binary act as a client that opens a port the way
// go.bug.st/serial does (with TIOCEXCL) and exits without clearing it.
const helperEnv = "FLEETGATE_TRANSPORT_EXCL_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			os.Stdout.WriteString("open: " + err.Error())
			os.Exit(3)
		}
		if err := unix.IoctlSetInt(int(f.Fd()), unix.TIOCEXCL, 0); err != nil {
			os.Stdout.WriteString("TIOCEXCL: " + err.Error())
			os.Exit(4)
		}
		os.Exit(0) // the descriptor closes with the process, flag still set
	}
	os.Exit(m.Run())
}

// nobodyClient returns a function that runs the helper client against path as
// user nobody (65534), who gets EBUSY on a terminal left exclusive (root
// would not).
func nobodyClient(t *testing.T) func(path string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if d == os.TempDir() {
			break
		}
	}
	bin := filepath.Join(dir, "client")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return func(path string) (string, error) {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

func exclusive(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0) // root may open an exclusive tty
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGEXCL)
	if err != nil {
		t.Fatal(err)
	}
	return v != 0
}

// A client that opened the port exclusively and died must not lock the next
// (non-root) client out: the PTY clears TIOCEXCL when the client closes.
func TestPTYClearsExclusiveAfterClientCloses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test switches to user nobody and must run as root")
	}
	run := nobodyClient(t)
	p, err := transport.OpenPTY(filepath.Join(t.TempDir(), "gps"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		if out, err := run(p.Link()); err != nil {
			t.Fatalf("open %d as nobody: %v: %s", i+1, err, out)
		}
		testenv.Eventually(t, 10*time.Second, "the exclusive flag cleared", func() error { return testenv.True(!exclusive(t, p.Addr())) })
	}
	// After a replug too: the new terminal is watched as well.
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := p.Replug(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if out, err := run(p.Link()); err != nil {
			t.Fatalf("open %d after replug as nobody: %v: %s", i+1, err, out)
		}
		testenv.Eventually(t, 10*time.Second, "the exclusive flag cleared", func() error { return testenv.True(!exclusive(t, p.Addr())) })
	}
}

func TestPTYUnplugReplug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "veh-001-obd")
	p, err := transport.OpenPTY(link, 38400)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if baud, ok := p.Baud(); !ok || baud != 38400 {
		t.Errorf("Baud() = %d, %v; want 38400", baud, ok)
	}
	c := simtest.OpenPort(t, link)
	if err := simtest.SetBaud(c, 4800); err != nil {
		t.Fatal(err)
	}
	if baud, _ := p.Baud(); baud != 4800 {
		t.Errorf("after the client set 4800 baud, Baud() = %d", baud)
	}

	readErr := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		readErr <- err
	}()
	if _, err := p.Write([]byte("before\r\n")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, c, "before\r\n")
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, transport.ErrUnplugged) {
		t.Errorf("Read pending at unplug: %v, want ErrUnplugged", err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there while unplugged: %v", err)
	}
	if _, err := p.Write([]byte("lost")); !errors.Is(err, transport.ErrUnplugged) || !errors.Is(err, firmwaresim.ErrLinkDown) {
		t.Errorf("Write while unplugged: %v", err)
	}
	// The client's side is gone: its read ends.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 8)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client read after unplug: %v, want an I/O error", err)
	}

	// A Read started while unplugged waits for the replug.
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, err := p.Read(b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b[:n])
	}()
	if err := p.Replug(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() == "" {
		t.Errorf("Addr() after replug = %q", p.Addr())
	}
	if target, err := os.Readlink(link); err != nil || target != p.Addr() {
		t.Fatalf("link after replug points at %q (%v), want %q", target, err, p.Addr())
	}
	if baud, _ := p.Baud(); baud != 38400 {
		t.Errorf("a replugged device starts at its own speed again: Baud() = %d", baud)
	}
	c2 := simtest.OpenPort(t, link)
	if _, err := c2.Write([]byte("ATZ\r")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "ATZ\r" {
		t.Errorf("read after replug: %q", s)
	}
	if _, err := p.Write([]byte("after\r\n")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, c2, "after\r\n")
}

func TestTCP(t *testing.T) {
	p, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := strings.TrimPrefix(p.Addr(), "tcp://")
	if _, ok := p.Baud(); ok || p.Link() != "" {
		t.Error("a TCP port has a baud rate or a link")
	}

	// Written before any client: waits for one.
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write([]byte("$GPRMC,early*00\r\n"))
		wrote <- err
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	readConn(t, c, "$GPRMC,early*00\r\n")
	if _, err := c.Write([]byte("010C\r")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(p, b); err != nil || string(b) != "010C\r" {
		t.Fatalf("Read = %q, %v", b, err)
	}

	// A new client replaces the old one.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("old client still connected: %v", err)
	}
	if _, err := p.Write([]byte("second\r\n")); err != nil {
		t.Fatal(err)
	}
	readConn(t, c2, "second\r\n")

	// Unplugged: the connection drops and connects are refused.
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client still connected after unplug: %v", err)
	}
	if c3, err := net.Dial("tcp", addr); err == nil {
		c3.Close()
		t.Error("connect accepted while unplugged")
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, transport.ErrUnplugged) {
		t.Errorf("Write while unplugged: %v", err)
	}
	// Replugged: the same port again.
	if err := p.Replug(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != "tcp://"+addr {
		t.Errorf("Addr() after replug = %s, want tcp://%s", p.Addr(), addr)
	}
	c4, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if _, err := p.Write([]byte("third\r\n")); err != nil {
		t.Fatal(err)
	}
	readConn(t, c4, "third\r\n")
}

func readConn(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
		t.Fatalf("read %q (%v), want %q", b, err, want)
	}
}

// Unplug waits for the client to read what was written before it: a reply
// written just before the unplug reaches a client that is reading, rather
// than going with the terminal (TestUnreadCountsBytesOnTheirWay has the
// bytes that are on their way when Unplug looks).
func TestPTYUnplugDeliversWhatWasWritten(t *testing.T) {
	link := filepath.Join(t.TempDir(), "veh-001-obd")
	p, err := transport.OpenPTY(link, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const reply = "7E8 06 41 0C 14 5F\r7E8 03 41 0D 20\r\r>"
	for i := range 50 {
		c := simtest.OpenPort(t, link)
		got := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(c) // to the error the unplug brings
			got <- string(b)
		}()
		if _, err := p.Write([]byte(reply)); err != nil {
			t.Fatal(err)
		}
		if err := p.Unplug(); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != reply {
			t.Fatalf("round %d: the client read %q before the unplug, want %q", i, s, reply)
		}
		c.Close()
		if err := p.Replug(); err != nil {
			t.Fatal(err)
		}
	}
}
