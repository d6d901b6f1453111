package obd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
)

// fakeCar is a small scripted ELM327 and vehicle for tests that run for
// minutes of fake time: CAN 11/500, no headers (it refuses ATH1), spaces off.
// Its replies are written here by hand from the data sheet's formats; it
// shares nothing with the simulator.
type fakeCar struct {
	mu       sync.Mutex
	running  bool
	vin      string
	stored   []string          // DTC bytes as hex, e.g. "0301"
	data     map[byte]string   // Mode 01 PID → data bytes (hex)
	bitmaps  map[string]string // "0100" → "BE3EB811"
	requests []string
}

func newFakeCar() *fakeCar {
	return &fakeCar{
		running: true,
		vin:     "WP0ZZZ99ZTS390000",
		data:    map[byte]string{0x0C: "1AF8", 0x0D: "32", 0x05: "7B"},
		// 0100: 05 0A 0C 0D (0000 1000 | 0101 1000 | 0 | 0); no next range.
		bitmaps: map[string]string{"0100": "08580000"},
	}
}

func (c *fakeCar) set(f func(c *fakeCar)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// count returns how many requests started with prefix.
func (c *fakeCar) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (c *fakeCar) reply(cmd string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, cmd)
	volts := "12.4V"
	if c.running {
		volts = "14.2V"
	}
	switch cmd {
	case "ATZ":
		return "\r\rELM327 v1.5"
	case "ATH1":
		return "?"
	case "ATI":
		return "ELM327 v1.5"
	case "ATRV":
		return volts
	case "ATDPN":
		return "A6"
	case "ATDP":
		return "AUTO, ISO 15765-4 (CAN 11/500)"
	}
	if strings.HasPrefix(cmd, "AT") {
		return "OK"
	}
	if !c.running {
		return "NO DATA"
	}
	if b, ok := c.bitmaps[cmd]; ok {
		return "41" + cmd[2:] + b
	}
	switch cmd {
	case "0902":
		hex := "490201" + fmt.Sprintf("%X", c.vin)
		return "014\r0:" + hex[:12] + "\r1:" + hex[12:26] + "\r2:" + hex[26:]
	case "03":
		return "43" + fmt.Sprintf("%02X", len(c.stored)) + strings.Join(c.stored, "")
	case "07", "0A":
		return "4" + cmd[1:] + "00"
	}
	if !strings.HasPrefix(cmd, "01") || len(cmd) < 4 {
		return "NO DATA"
	}
	resp := "41"
	for i := 2; i+1 < len(cmd); i += 2 {
		var pid byte
		fmt.Sscanf(cmd[i:i+2], "%02X", &pid)
		if d, ok := c.data[pid]; ok {
			resp += cmd[i:i+2] + d
		}
	}
	switch n := len(resp) / 2; {
	case n == 1:
		return "NO DATA"
	case n <= 7:
		return resp
	default: // ISO-TP without headers: length, then indexed frames
		out := fmt.Sprintf("%03X\r0:%s", n, resp[:12])
		for i, rest := 1, resp[12:]; rest != ""; i++ {
			k := min(14, len(rest))
			out += fmt.Sprintf("\r%X:%s", i%16, rest[:k])
			rest = rest[k:]
		}
		return out
	}
}

// fakeConn is one opened port to a fakeCar.
type fakeConn struct {
	car    *fakeCar
	out    chan []byte
	mu     sync.Mutex
	closed bool
	buf    []byte
}

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, io.ErrClosedPipe
	}
	f.buf = append(f.buf, p...)
	for {
		i := slices.Index(f.buf, '\r')
		if i < 0 {
			return len(p), nil
		}
		cmd := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		select {
		case f.out <- []byte(f.car.reply(cmd) + "\r\r>"):
		default:
			return 0, io.ErrClosedPipe
		}
	}
}

func (f *fakeConn) Read(p []byte) (int, error) {
	b, ok := <-f.out
	if !ok {
		return 0, io.EOF
	}
	return copy(p, b), nil
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.out)
	}
	return nil
}

// fakeDevice opens the car current at the time of Open.
type fakeDevice struct {
	mu   sync.Mutex
	car  *fakeCar
	conn *fakeConn
}

func (d *fakeDevice) Open(context.Context) (io.ReadWriteCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn = &fakeConn{car: d.car, out: make(chan []byte, 16)}
	return d.conn, nil
}

func (d *fakeDevice) String() string { return "fake" }

// unplug closes the open port, as pulling the adapter out does; plug puts
// another car behind the next Open.
func (d *fakeDevice) unplug(next *fakeCar) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.car = next
	d.conn.Close()
}

// run starts src in the bubble and returns its records channel and a stop
// function that cancels it and checks it returned ctx's error.
func run(t *testing.T, src *obd.Source) (<-chan edge.Record, func()) {
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan edge.Record, 100000)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	return out, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}
}

func drain(out <-chan edge.Record) []string {
	var got []string
	for {
		select {
		case r := <-out:
			got = append(got, describe(r))
		default:
			return got
		}
	}
}

func countPrefix(rs []string, prefix string) int {
	n := 0
	for _, r := range rs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// Each PID is polled at its own interval; PIDs due together share a request.
func TestPerPIDIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar()
		src := &obd.Source{
			Device: &fakeDevice{car: car},
			PIDs:   []byte{0x05}, Interval: 10 * time.Second,
			Polls: []obd.Poll{{PID: 0x0C, Every: 100 * time.Millisecond}, {PID: 0x0D, Every: time.Second}},
			NoVIN: true, DTCInterval: -1,
		}
		out, stop := run(t, src)
		time.Sleep(20*time.Second - time.Millisecond)
		stop()
		got := drain(out)
		for _, c := range []struct {
			pid    string
			lo, hi int
		}{{"010C", 200, 200}, {"010D", 20, 20}, {"0105", 2, 2}} {
			if n := countPrefix(got, "sample "+c.pid+" "); n < c.lo || n > c.hi {
				t.Errorf("%d samples of %s in 20 s, want %d", n, c.pid, c.lo)
			}
		}
		// In configuration order: PIDs first, then Polls.
		if n := car.count("01050C0D"); n != 2 {
			t.Errorf("%d requests 01050C0D (all three due at 0 s and 10 s), want 2", n)
		}
		if n := car.count("010C0D"); n != 18 {
			t.Errorf("%d requests 010C0D, want 18 (the other whole seconds)", n)
		}
	})
}

// With the engine off the polling backs off to one look every OffInterval;
// the ignition events come at the changes.
func TestIgnitionBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar()
		src := &obd.Source{
			Device: &fakeDevice{car: car},
			PIDs:   []byte{0x0C, 0x0D}, Interval: 100 * time.Millisecond,
			NoVIN: true, DTCInterval: -1,
		}
		out, stop := run(t, src)
		defer stop()
		time.Sleep(5 * time.Second)
		if got := drain(out); countPrefix(got, "event IGNITION_ON obd rpm 1726") != 1 {
			t.Fatalf("no ignition on: %q", got)
		}
		car.set(func(c *fakeCar) { c.running = false })
		time.Sleep(2 * time.Second)
		got := drain(out)
		if countPrefix(got, "event IGNITION_OFF") != 1 {
			t.Fatalf("no ignition off after 2 s of NO DATA: %q", got)
		}
		before := car.count("01")
		time.Sleep(5 * time.Minute)
		// One look every 30 s: 010C (the engine speed is polled) and ATRV.
		if n := car.count("01") - before; n < 9 || n > 11 {
			t.Errorf("%d Mode 01 requests in 5 min with the engine off, want 10", n)
		}
		if got := drain(out); len(got) != 0 {
			t.Errorf("records while off: %q", got)
		}
		car.set(func(c *fakeCar) { c.running = true })
		time.Sleep(35 * time.Second) // the next look comes within 30 s
		got = drain(out)
		if countPrefix(got, "event IGNITION_ON obd rpm 1726") != 1 || countPrefix(got, "sample 010D") < 10 {
			t.Errorf("after the engine started again: %q", got)
		}
	})
}

// Trouble codes that appear and go away become DTC set and cleared events;
// a VIN read after a reconnection that differs is a VIN change.
func TestDTCAndVINEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar()
		car.stored = []string{"0301"}
		dev := &fakeDevice{car: car}
		src := &obd.Source{
			Device: dev, PIDs: []byte{0x0C}, Interval: time.Second, DTCInterval: 10 * time.Second,
			Backoff: edge.Backoff{Min: time.Second, Max: time.Second},
		}
		out, stop := run(t, src)
		defer stop()
		time.Sleep(time.Second)
		car.set(func(c *fakeCar) { c.stored = []string{"0301", "0420"} })
		time.Sleep(10 * time.Second)
		car.set(func(c *fakeCar) { c.stored = nil })
		time.Sleep(10 * time.Second)
		other := newFakeCar()
		other.vin = "1D4GP00R55B123456"
		dev.unplug(other)
		time.Sleep(10 * time.Second)
		var events []string
		for _, r := range drain(out) {
			if strings.HasPrefix(r, "event DTC") || strings.HasPrefix(r, "event VIN") {
				events = append(events, r)
			}
		}
		want := []string{
			"event VIN_READ WP0ZZZ99ZTS390000",
			"event DTC_SET P0301 stored",
			"event DTC_SET P0420 stored",
			"event DTC_CLEARED P0301 stored",
			"event DTC_CLEARED P0420 stored",
			"event VIN_CHANGED 1D4GP00R55B123456 WP0ZZZ99ZTS390000",
		}
		if !slices.Equal(want, events) {
			t.Errorf("events %q\nwant %q", events, want)
		}
	})
}

// A PID the ECU claims but answers NO DATA is asked rarely after three
// misses, and the multi-PID requests carry on without it.
func TestUnansweredPID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar() // claims 0A, has no data for it
		var counters edge.Counters
		src := &obd.Source{
			Device: &fakeDevice{car: car}, PIDs: []byte{0x0C, 0x0A, 0x0D}, Interval: 100 * time.Millisecond,
			NoVIN: true, DTCInterval: -1, Counters: &counters,
		}
		out, stop := run(t, src)
		time.Sleep(5*time.Minute - time.Millisecond)
		stop()
		got := drain(out)
		asked := car.count("010A") + car.count("010C0A")
		// Three rounds with a multi-PID request and a single one each, a
		// fourth single at 0.3 s, then one a minute: 1:00.3 ... 4:00.3.
		if asked < 6 || asked > 12 {
			t.Errorf("0A asked %d times in 5 min", asked)
		}
		if n := counters.Snapshot()["obd.unanswered_pids"]; n != 1 {
			t.Errorf("obd.unanswered_pids = %d", n)
		}
		if n := countPrefix(got, "sample 010D"); n < 2990 {
			t.Errorf("%d samples of 0D in 5 min at 10 Hz", n)
		}
		if n := car.count("010C0D"); n < 2990 {
			t.Errorf("%d requests 010C0D: the multi-PID requests stopped", n)
		}
	})
}

// A configuration the decoder cannot serve stops Run at once.
func TestSourceConfigErrors(t *testing.T) {
	for _, src := range []*obd.Source{
		{Device: &fakeDevice{car: newFakeCar()}, PIDs: []byte{0xFF}},
		{Device: &fakeDevice{car: newFakeCar()}, Polls: []obd.Poll{{PID: 0x0C}}},
	} {
		if err := src.Run(context.Background(), make(chan edge.Record)); err == nil {
			t.Errorf("Run(%+v) = nil", src)
		}
	}
}
