package obd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// adapter replays a transcript from testdata: each line is a request and the
// raw bytes the adapter answers (a Go string literal), or "-" for silence.
// Replies are delivered in two reads to exercise reassembly. A request that
// is not the next one in the transcript fails the test; a request past its
// end closes the stream (Read returns io.EOF), like an unplugged adapter.
type adapter struct {
	t     *testing.T
	steps []step
	out   chan []byte

	mu     sync.Mutex
	next   int
	closed bool
}

type step struct {
	req   string
	reply []byte // nil: silence
}

func loadTranscript(t *testing.T, name string) *adapter {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parseTranscript(t, name, b)
}

func parseTranscript(t *testing.T, name string, b []byte) *adapter {
	t.Helper()
	a := &adapter{t: t, out: make(chan []byte, 4)}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		req, reply, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s:%d: no tab", name, n)
		}
		s := step{req: req}
		if reply != "-" {
			r, err := strconv.Unquote(reply)
			if err != nil {
				t.Fatalf("%s:%d: reply: %v", name, n, err)
			}
			s.reply = []byte(r)
		}
		a.steps = append(a.steps, s)
	}
	return a
}

func (a *adapter) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, io.ErrClosedPipe
	}
	req, ok := strings.CutSuffix(string(p), "\r")
	if !ok {
		a.t.Errorf("request %q does not end in CR", p)
	}
	if a.next == len(a.steps) {
		a.closed = true
		close(a.out)
		return len(p), nil
	}
	s := a.steps[a.next]
	a.next++
	if req != s.req {
		a.t.Errorf("request %d = %q, transcript says %q", a.next, req, s.req)
	}
	if s.reply != nil {
		half := len(s.reply) / 2
		a.out <- s.reply[:half]
		a.out <- s.reply[half:]
	}
	return len(p), nil
}

func (a *adapter) Read(p []byte) (int, error) {
	b, ok := <-a.out
	if !ok {
		return 0, io.EOF
	}
	return copy(p, b), nil // replies are short: one read holds a chunk
}

func (a *adapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.out)
	}
	return nil
}

// device hands out the transcript once; a second Open waits for the end.
type device struct {
	a      *adapter
	opened bool
}

func (d *device) Open(ctx context.Context) (io.ReadWriteCloser, error) {
	if !d.opened {
		d.opened = true
		return d.a, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (d *device) String() string { return "transcript" }

var clock = time.Date(2026, 11, 27, 10, 0, 0, 412e6, time.UTC)

func TestTranscripts(t *testing.T) {
	pids := []byte{0x0C, 0x0D, 0x05}
	tests := []struct {
		file     string
		want     []telemetry.OBDSample
		counters map[string]uint64
	}{
		{
			file: "init_echo_on.txt",
			want: []telemetry.OBDSample{
				{PID: 0x010C, Value: 1726}, {PID: 0x010D, Value: 50}, {PID: 0x0105, Value: 83},
			},
			counters: map[string]uint64{"obd.samples": 3, "obd.searching": 1},
		},
		{
			file: "clone_echo_stays.txt",
			want: []telemetry.OBDSample{
				{PID: 0x010C, Value: 1000}, {PID: 0x010D, Value: 0}, {PID: 0x0105, Value: 215},
			},
			counters: map[string]uint64{"obd.samples": 3},
		},
		{
			file: "error_replies.txt",
			want: []telemetry.OBDSample{
				{PID: 0x0105, Value: 83}, {PID: 0x010C, Value: 1726}, {PID: 0x010D, Value: 50},
			},
			counters: map[string]uint64{
				"obd.samples":                  3,
				"obd.searching":                2,
				"obd.errors.no_data":           1,
				"obd.errors.unknown_command":   1,
				"obd.errors.can_error":         1,
				"obd.errors.unable_to_connect": 1,
				"obd.errors.bus_init":          1,
				"obd.errors.stopped":           1,
				"obd.errors.buffer_full":       1,
				"obd.errors.mismatch":          1,
				"obd.errors.short_reply":       1,
				"obd.errors.err":               1,
				"obd.errors.lv_reset":          1,
				"obd.errors.data_error":        1,
				"obd.errors.searching":         1,
				"obd.errors.garbage":           1,
			},
		},
		{
			file:     "silent_adapter.txt",
			want:     []telemetry.OBDSample{{PID: 0x010C, Value: 1000}},
			counters: map[string]uint64{"obd.samples": 1, "obd.errors.timeout": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var counters edge.Counters
			src := obd.Source{
				Device:   &device{a: loadTranscript(t, tt.file)},
				PIDs:     pids,
				Interval: time.Millisecond,
				Timeout:  200 * time.Millisecond, // only the silent transcript waits for it
				Counters: &counters,
				Now:      func() time.Time { return clock },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out := make(chan edge.Record, 100)
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, out) }()
			var got []telemetry.OBDSample
		loop:
			for {
				select {
				case r := <-out:
					switch {
					case r.Kind == edge.KindOBD:
						got = append(got, r.OBD)
					case r.Kind == edge.KindEvent && r.Event.Type == telemetry.EventDeviceDisconnected:
						break loop
					}
				case <-ctx.Done():
					t.Fatalf("no disconnect within the deadline; samples so far %v", got)
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
			for i := range tt.want {
				tt.want[i].UnixMs = clock.UnixMilli()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
			snap := counters.Snapshot()
			for k, v := range tt.counters {
				if snap[k] != v {
					t.Errorf("counter %s = %d, want %d", k, snap[k], v)
				}
			}
			for k, v := range snap {
				if strings.HasPrefix(k, "obd.errors.") && tt.counters[k] != v {
					t.Errorf("unexpected counter %s = %d", k, v)
				}
			}
		})
	}
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		name, transcript string
	}{
		{"no banner", "ATZ\t\"\\r\\rOBDII\\r\\r>\"\n"},
		{"setting refused", "ATZ\t\"ELM327 v1.5\\r\\r>\"\nATE0\t\"?\\r\\r>\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseTranscript(t, tt.name, []byte(tt.transcript))
			s := obd.NewSession(a, nil)
			defer a.Close()
			defer s.Close()
			if banner, err := s.Init(context.Background()); err == nil {
				t.Errorf("Init succeeded with banner %q", banner)
			}
		})
	}
}
