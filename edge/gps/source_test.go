package gps_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// rmcAt is an RMC (u-blox layout, 2017 date) for second s after 00:10:00,
// at a latitude that moves 1.85 m a second.
func rmcAt(s int) string {
	return withChecksum(fmt.Sprintf("GNRMC,0010%02d.00,A,4404.%05d,N,12118.86023,W,3.6,0.0,100117,,,A", s, 13993+s*100))
}

type step struct {
	kind  edge.Kind
	event telemetry.EventType
	sec   int // for a position: its second
}

// expect reads records from out and checks them against want.
func expect(t *testing.T, ctx context.Context, out <-chan edge.Record, want []step) {
	t.Helper()
	for i, w := range want {
		var r edge.Record
		select {
		case r = <-out:
		case <-ctx.Done():
			t.Fatalf("step %d: nothing within the deadline", i)
		}
		ok := r.Kind == w.kind
		switch w.kind {
		case edge.KindEvent:
			ok = ok && r.Event.Type == w.event
		case edge.KindPosition:
			ok = ok && r.Position.UnixMs == time.Date(2017, 1, 10, 0, 10, w.sec, 0, time.UTC).UnixMilli()
		}
		if !ok {
			t.Fatalf("step %d: got %v %+v %+v, want %+v", i, r.Kind, r.Event, r.Position, w)
		}
	}
}

// TestSourceReconnects serves a session over TCP, hangs up, and serves more
// on the next connection: the Source reopens the device by itself, the fixes
// of both connections arrive in order with the device and fix events around
// them, and FixState follows.
func TestSourceReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for _, chunk := range []string{
			rmcAt(1) + "\r\n" + rmcAt(2) + "\r\n" + rmcAt(3) + "\r\n",
			rmcAt(3) + "\r\n" + rmcAt(4) + "\r\n", // the receiver repeats its last epoch
		} {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(chunk))
			c.Close()
		}
	}()
	dev, err := serial.Parse("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var counters edge.Counters
	src := &gps.Source{Device: dev, Counters: &counters, Backoff: edge.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}}
	var _ edge.FixReporter = src
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan edge.Record, 100)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	ev := func(typ telemetry.EventType) step { return step{kind: edge.KindEvent, event: typ} }
	pos := func(s int) step { return step{kind: edge.KindPosition, sec: s} }
	expect(t, ctx, out, []step{
		ev(telemetry.EventDeviceConnected), ev(telemetry.EventGPSFixAcquired), pos(1), pos(2), pos(3),
		ev(telemetry.EventGPSFixLost), ev(telemetry.EventDeviceDisconnected),
		// The repeated epoch is dropped; the ender learned on the first
		// connection closes each epoch at once.
		ev(telemetry.EventDeviceConnected), ev(telemetry.EventGPSFixAcquired), pos(4),
		ev(telemetry.EventGPSFixLost), ev(telemetry.EventDeviceDisconnected),
	})
	st := src.FixState()
	if st.Mode != telemetry.ModeNoFix || st.NoFixSince.IsZero() || !st.LastFix.Equal(time.Date(2017, 1, 10, 0, 10, 4, 0, time.UTC)) {
		t.Errorf("FixState after the device went away = %+v", st)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	c := counters.Snapshot()
	if c["gps.opens"] < 2 || c["gps.reconnects"] < 1 || c["gps.repeated_epochs"] != 1 || c["gps.bytes"] == 0 {
		t.Errorf("counters %v", c)
	}
}

// fakeUART stands in for a serial port, which no test machine has: a receiver
// sending RMC epochs at rate baud, read through a port set to another rate,
// gives bytes that are not NMEA. It ends after limit epochs.
type fakeUART struct {
	mu    sync.Mutex
	baud  int // the port's rate
	rate  int // the receiver's
	sec   *int
	limit int
	buf   []byte
	sets  []int // SetBaud calls
}

func (u *fakeUART) SetBaud(b int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.baud = b
	u.sets = append(u.sets, b)
	u.buf = nil
	return nil
}

func (u *fakeUART) Read(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.buf) == 0 {
		if *u.sec >= u.limit {
			return 0, io.EOF
		}
		*u.sec++
		line := []byte(rmcAt(*u.sec) + "\r\n")
		if u.baud != u.rate {
			for i := range line { // framing errors: high bits set, never a '$'
				line[i] = line[i]<<1 | 0x81
			}
		}
		u.buf = line
	}
	n := copy(p, u.buf)
	u.buf = u.buf[n:]
	return n, nil
}

func (u *fakeUART) Write(p []byte) (int, error) { return len(p), nil }
func (u *fakeUART) Close() error                { return nil }

// fakeSerial is an edge.Device whose ports are fakeUARTs opened at 9600.
type fakeSerial struct {
	mu    sync.Mutex
	rate  int
	sec   int
	ports []*fakeUART
}

func (d *fakeSerial) Open(context.Context) (io.ReadWriteCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := &fakeUART{baud: 9600, rate: d.rate, sec: &d.sec, limit: d.sec + 30}
	d.ports = append(d.ports, u)
	return u, nil
}

func (d *fakeSerial) String() string { return "fake://uart" }

// TestBaudDetection: a receiver at 38400 behind a port opened at 9600 is
// found by trying the configured rates in turn, and the rate it locked on is
// where the next session starts.
func TestBaudDetection(t *testing.T) {
	dev := &fakeSerial{rate: 38400}
	var counters edge.Counters
	src := &gps.Source{Device: dev, Counters: &counters, Bauds: []int{9600, 4800, 38400, 115200}, HuntBytes: 300,
		Backoff: edge.Backoff{Min: time.Millisecond, Max: time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan edge.Record, 200)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	positions, opens := 0, 0
	for opens < 3 {
		select {
		case r := <-out:
			if r.Kind == edge.KindPosition {
				positions++
			}
			if r.Kind == edge.KindEvent && r.Event.Type == telemetry.EventDeviceConnected {
				opens++
			}
		case <-ctx.Done():
			t.Fatalf("%d sessions, %d positions before the deadline", opens, positions)
		}
	}
	cancel()
	<-done
	dev.mu.Lock()
	first, second := dev.ports[0], dev.ports[1]
	dev.mu.Unlock()
	if want := []int{9600, 4800, 38400}; fmt.Sprint(first.sets) != fmt.Sprint(want) {
		t.Errorf("first session set %v, want %v", first.sets, want)
	}
	if want := []int{38400}; fmt.Sprint(second.sets) != fmt.Sprint(want) {
		t.Errorf("second session set %v, want %v", second.sets, want)
	}
	c := counters.Snapshot()
	if c["gps.baud_switches"] != 2 || c["gps.baud_locks"] < 2 || positions == 0 {
		t.Errorf("positions %d, counters %v", positions, c)
	}
}

// bufferedPort is a serial port (or a pty) that already holds a backlog of
// valid NMEA at the rate the port is opened with, and hands it over in reads as
// large as the caller asks for, as a pty does with what the simulator wrote
// while the agent was down. SetBaud drops the backlog, as a real port's
// input flush does.
type bufferedPort struct {
	mu   sync.Mutex
	buf  []byte
	sets []int
}

func (b *bufferedPort) SetBaud(baud int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sets) > 0 {
		b.buf = nil // a change of rate flushes the input
	}
	b.sets = append(b.sets, baud)
	return nil
}

func (b *bufferedPort) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *bufferedPort) Write(p []byte) (int, error) { return len(p), nil }
func (b *bufferedPort) Close() error                { return nil }

type bufferedDevice struct{ port *bufferedPort }

func (d *bufferedDevice) Open(context.Context) (io.ReadWriteCloser, error) { return d.port, nil }
func (d *bufferedDevice) String() string                                   { return "fake://buffered" }

// TestBaudDetectionKeepsBacklog: a backlog of valid sentences at the first
// rate, read in one large chunk, locks that rate; hunting must not count the
// chunk against the window before its sentences are parsed, switch rate and
// flush the rest of the backlog away (a loss found by the kill -9 chaos test).
func TestBaudDetectionKeepsBacklog(t *testing.T) {
	const epochs = 59 // over 4 KiB of RMC (rmcAt makes seconds 1 to 59)
	var backlog []byte
	for s := 1; s <= epochs; s++ {
		backlog = append(backlog, rmcAt(s)+"\r\n"...)
	}
	port := &bufferedPort{buf: backlog}
	var counters edge.Counters
	src := &gps.Source{Device: &bufferedDevice{port}, Counters: &counters, Bauds: []int{9600, 4800, 38400},
		Backoff: edge.Backoff{Min: time.Hour, Max: time.Hour}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan edge.Record, 2*epochs)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	positions := 0
	for positions < epochs {
		select {
		case r := <-out:
			if r.Kind == edge.KindPosition {
				positions++
			}
		case <-ctx.Done():
			port.mu.Lock()
			t.Fatalf("%d of %d positions from the backlog; SetBaud calls %v; counters %v", positions, epochs, port.sets, counters.Snapshot())
		}
	}
	cancel()
	<-done
	port.mu.Lock()
	defer port.mu.Unlock()
	if fmt.Sprint(port.sets) != "[9600]" {
		t.Errorf("SetBaud calls %v, want only the initial [9600]", port.sets)
	}
}
