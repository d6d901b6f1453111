package transport_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
)

// readExactly reads len(want) bytes; the deadline only guards against a hang.
func readExactly(t *testing.T, r interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}, want string) {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		n, err := r.Read(buf[:len(want)-len(got)])
		if err != nil {
			t.Fatalf("read: %v (got %q, want %q)", err, got, want)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func TestPTY(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "veh-001-gps")
	// A stale link from an earlier run is replaced.
	if err := os.Symlink("/nonexistent", link); err != nil {
		t.Fatal(err)
	}
	p, err := transport.OpenPTY(link, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.Addr(), "/dev/pts/") {
		t.Errorf("Path() = %q", p.Addr())
	}
	if target, err := os.Readlink(link); err != nil || target != p.Addr() {
		t.Fatalf("link points at %q (%v), want %q", target, err, p.Addr())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("link dir holds %d entries, want only the link", len(entries))
	}

	// Written before any client opened the port: waits for the client.
	if _, err := p.Write([]byte("$GPRMC,early*00\r\n")); err != nil {
		t.Fatal(err)
	}
	c := simtest.OpenPort(t, link)
	readExactly(t, c, "$GPRMC,early*00\r\n")

	// Client to simulator: bytes arrive as sent (CR not turned into LF, no
	// echo back to the client).
	if _, err := c.Write([]byte("ATZ\r")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, p, "ATZ\r")
	if _, err := p.Write([]byte("OK\r\r>")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, c, "OK\r\r>")

	// The client closes the port; what is written meanwhile waits for it to
	// reopen.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("$GPGGA,while-closed*00\r\n")); err != nil {
		t.Fatal(err)
	}
	c2 := simtest.OpenPort(t, link)
	defer c2.Close()
	readExactly(t, c2, "$GPGGA,while-closed*00\r\n")
	if _, err := p.Write([]byte("after\r\n")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, c2, "after\r\n")

	// Close removes the link and unblocks a pending Read.
	readErr := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		readErr <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err == nil {
		t.Error("Read after Close returned no error")
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there after Close: %v", err)
	}
}

func TestPTYWithoutLink(t *testing.T) {
	p, err := transport.OpenPTY("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Link() != "" {
		t.Errorf("Link() = %q", p.Link())
	}
	c := simtest.OpenPort(t, p.Addr())
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789"), 100)
	if _, err := p.Write(msg); err != nil {
		t.Fatal(err)
	}
	readExactly(t, c, string(msg))
}
