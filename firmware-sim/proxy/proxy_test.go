package proxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/proxy"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

func dial(t *testing.T, p *proxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(p.Addr(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // guards against a hang only
	return c
}

func roundTrip(c net.Conn, msg string) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != msg {
		return errors.New("echoed " + string(b))
	}
	return nil
}

// closed reports whether the peer closed c (a read ends without data).
func closed(c net.Conn) bool {
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestProxyCutsAndRestores(t *testing.T) {
	p, err := proxy.Listen("127.0.0.1:0", testenv.EchoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	if err := roundTrip(c, "CONNECT"); err != nil {
		t.Fatal(err)
	}
	p.SetDown(true)
	if !p.Down() || !closed(c) {
		t.Fatal("the relayed connection survived the cut")
	}
	if !closed(dial(t, p)) {
		t.Fatal("a connection made while down was relayed")
	}
	p.SetDown(false)
	if err := roundTrip(dial(t, p), "CONNECT again"); err != nil {
		t.Fatalf("after the network came back: %v", err)
	}
}

func TestProxyBrokerDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	p, err := proxy.Listen("127.0.0.1:0", "tcp://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !closed(dial(t, p)) {
		t.Error("connection kept open with the broker down")
	}
	if _, err := proxy.Listen("127.0.0.1:0", "broker"); err == nil {
		t.Error("upstream without a port accepted")
	}
}
