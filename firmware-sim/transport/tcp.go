package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// TCP is a device served on a TCP port, one client at a time, as serial
// servers and Wi-Fi ELM327 adapters do: a new connection replaces the one
// before it. Bytes written while no client is connected wait for one (Write
// blocks), so that nothing is lost before the agent connects; a client that
// goes away takes the bytes in flight with it.
//
// Read and Write may be called from different goroutines, concurrently with
// Unplug, Replug and Close.
type TCP struct {
	addr string // host:port, fixed after the first listen

	mu       sync.Mutex
	ln       net.Listener  // nil while unplugged
	conn     net.Conn      // the current client, or nil
	changed  chan struct{} // closed (and replaced) whenever ln or conn changes
	isClosed bool
	gen      int // Unplugs so far
	readGen  int // Unplugs the reader has been told of
	wg       sync.WaitGroup
}

// ListenTCP listens on addr ("127.0.0.1:0" picks a free port).
func ListenTCP(addr string) (*TCP, error) {
	t := &TCP{addr: addr, changed: make(chan struct{})}
	if err := t.listen(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *TCP) listen() error {
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", t.addr, err)
	}
	t.mu.Lock()
	t.ln = ln
	t.addr = ln.Addr().String()
	t.notifyLocked()
	t.mu.Unlock()
	t.wg.Add(1)
	go t.accept(ln)
	return nil
}

// notifyLocked wakes everyone waiting for a change of listener or client.
func (t *TCP) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *TCP) accept(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Unplug or Close
		}
		t.mu.Lock()
		if t.ln != ln {
			t.mu.Unlock()
			c.Close()
			return
		}
		if t.conn != nil {
			t.conn.Close()
		}
		t.conn = c
		t.notifyLocked()
		t.mu.Unlock()
	}
}

// Addr returns the URL clients connect to, tcp://host:port.
func (t *TCP) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return "tcp://" + t.addr
}

// Link returns "": TCP ports have no link.
func (t *TCP) Link() string { return "" }

// Baud reports that a TCP link has no line speed.
func (t *TCP) Baud() (int, bool) { return 0, false }

// client returns the connected client, waiting for one. While unplugged it
// returns ErrUnplugged, or with reading set waits for Replug. A reader is told
// of every unplug once, as PTY.Read is. It returns os.ErrClosed after Close.
func (t *TCP) client(reading bool) (net.Conn, error) {
	for {
		t.mu.Lock()
		c, ln, ch, closed := t.conn, t.ln, t.changed, t.isClosed
		missed := reading && t.readGen != t.gen
		if missed {
			t.readGen = t.gen
		}
		t.mu.Unlock()
		switch {
		case closed:
			return nil, os.ErrClosed
		case missed || ln == nil && !reading:
			return nil, ErrUnplugged
		case c != nil:
			return c, nil
		}
		<-ch
	}
}

// gone forgets c after an I/O error on it and returns the error to report.
func (t *TCP) gone(c net.Conn, err error, reading bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.isClosed:
		return os.ErrClosed
	case t.ln == nil || t.conn != c && t.readGen != t.gen:
		if reading {
			t.readGen = t.gen
		}
		return ErrUnplugged
	}
	if t.conn == c {
		c.Close()
		t.conn = nil
		t.notifyLocked()
	}
	return fmt.Errorf("tcp client %s: %w: %v", c.RemoteAddr(), firmwaresim.ErrLinkDown, err)
}

// Read reads what the client sends. When a client goes away it waits for the
// next one. It returns ErrUnplugged once after each Unplug (whether pending
// then or called later), then waits for Replug. Only one goroutine should
// read.
func (t *TCP) Read(b []byte) (int, error) {
	for {
		c, err := t.client(true)
		if err != nil {
			return 0, err
		}
		n, err := c.Read(b)
		if n > 0 || err == nil {
			return n, nil
		}
		if err := t.gone(c, err, true); !errors.Is(err, firmwaresim.ErrLinkDown) || errors.Is(err, ErrUnplugged) {
			return 0, err
		}
	}
}

// Write sends b to the client, waiting for one to connect. It returns an
// error wrapping firmwaresim.ErrLinkDown when the client goes away during the
// write (the rest is lost), and ErrUnplugged while unplugged.
func (t *TCP) Write(b []byte) (int, error) {
	c, err := t.client(false)
	if err != nil {
		return 0, err
	}
	n, err := c.Write(b)
	if err != nil {
		return n, t.gone(c, err, false)
	}
	return n, nil
}

// Unplug closes the listener and the client's connection: connects are
// refused until Replug. Unplugging an unplugged port does nothing.
func (t *TCP) Unplug() error {
	t.mu.Lock()
	ln, c := t.ln, t.conn
	t.ln, t.conn = nil, nil
	if ln != nil {
		t.gen++
		t.notifyLocked()
	}
	t.mu.Unlock()
	return closeAll(ln, c)
}

// closeAll closes a listener and a connection, either of which may be nil,
// and returns the listener's error.
func closeAll(ln net.Listener, c net.Conn) error {
	if c != nil {
		c.Close()
	}
	if ln != nil {
		return ln.Close()
	}
	return nil
}

// Replug listens again on the same address. Replugging a plugged port does
// nothing.
func (t *TCP) Replug() error {
	t.mu.Lock()
	if t.isClosed {
		t.mu.Unlock()
		return os.ErrClosed
	}
	plugged := t.ln != nil
	t.mu.Unlock()
	if plugged {
		return nil
	}
	return t.listen()
}

// Close stops listening and closes the client; pending and later Reads and
// Writes fail with os.ErrClosed.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.isClosed {
		t.mu.Unlock()
		return nil
	}
	t.isClosed = true
	ln, c := t.ln, t.conn
	t.ln, t.conn = nil, nil
	t.notifyLocked()
	t.mu.Unlock()
	err := closeAll(ln, c)
	t.wg.Wait()
	return err
}
