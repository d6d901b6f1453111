package obd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
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
	if os.Getenv("OBD_TRACE") != "" {
		a.t.Logf("%d %q → %q", a.next, req, s.reply)
	}
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

// done reports whether every step of the transcript was played.
func (a *adapter) done() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next == len(a.steps)
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

// describe writes a record in the tests' shorthand.
func describe(r edge.Record) string {
	switch r.Kind {
	case edge.KindOBD:
		return fmt.Sprintf("sample %04X %g", r.OBD.PID, r.OBD.Value)
	case edge.KindEvent:
		s := "event " + strings.TrimPrefix(r.Event.Type.String(), "EVENT_TYPE_") + " " + r.Event.Code
		if r.Event.Detail != "" {
			s += " " + r.Event.Detail
		}
		return s
	}
	return r.Kind.String()
}

func TestTranscripts(t *testing.T) {
	tests := []struct {
		file     string
		pids     []byte
		info     bool // read the VIN and trouble codes
		want     []string
		counters map[string]uint64
	}{
		{
			file: "can11_genuine.txt", pids: []byte{0x0C, 0x0D, 0x05}, info: true,
			want: []string{
				"event VIN_READ WP0ZZZ99ZTS390000",
				"event DTC_SET P0133 stored", "event DTC_SET P0301 stored",
				"sample 010C 1726", "sample 010D 50", "sample 0105 83",
				"event IGNITION_ON obd rpm 1726",
				"sample 010C 1726.25", "sample 010D 51", "sample 0105 84",
			},
			counters: map[string]uint64{
				"obd.samples": 6, "obd.searching": 1, "obd.vin_reads": 1, "obd.dtc_reads": 2,
				"obd.errors.negative_response": 1,
			},
		},
		{
			file: "clone_v21.txt", pids: []byte{0x0C, 0x0D, 0x05}, info: true,
			want: []string{
				"event VIN_READ WP0ZZZ99ZTS390000",
				"sample 010C 1000", "sample 010D 0", "sample 0105 215",
				"event IGNITION_ON obd rpm 1000",
				"sample 010C 1000", "sample 010D 0", "sample 0105 215",
			},
			counters: map[string]uint64{
				"obd.samples": 6, "obd.searching": 1, "obd.multi_fallbacks": 1, "obd.stale_prompts": 1,
				"obd.garbage_bytes": 2, "obd.dtc_reads": 1,
				"obd.errors.no_data": 1, "obd.errors.unknown_command": 1,
			},
		},
		{
			file: "legacy_iso9141.txt", pids: []byte{0x0C, 0x0D, 0x05}, info: true,
			want: []string{
				"event VIN_READ WP0ZZZ99ZTS390000",
				"event DTC_SET C1234 stored", "event DTC_SET P0171 stored", "event DTC_SET P0301 stored",
				"event DTC_SET P0302 stored", "event DTC_SET U0158 stored",
				"sample 010C 1726", "sample 010D 50", "sample 0105 83",
				"event IGNITION_ON obd rpm 1726",
			},
			counters: map[string]uint64{"obd.samples": 3, "obd.errors.no_data": 2, "obd.dtc_reads": 1},
		},
		{
			file: "errors.txt", pids: []byte{0x0C, 0x0D, 0x05},
			want: []string{
				"sample 0105 83",
				"sample 0105 83",
				"sample 010C 1726", "sample 0105 83",
				"event IGNITION_ON obd rpm 1726",
				"sample 0105 83",
				"sample 010C 1726", "sample 010D 50",
				"sample 010C 1726",
				"sample 010D 50", "sample 0105 83",
			},
			counters: map[string]uint64{
				"obd.samples": 10, "obd.searching": 2, "obd.retries": 5, "obd.backoffs": 4,
				"obd.dropped_lines": 2, "obd.garbage_bytes": 4, "obd.settings_refused": 1,
				"obd.errors.no_data": 1, "obd.errors.unknown_command": 2, "obd.errors.can_error": 1,
				"obd.errors.bus_init": 1, "obd.errors.bus_busy": 1, "obd.errors.fb_error": 1,
				"obd.errors.data_error": 2, "obd.errors.stopped": 1, "obd.errors.unable_to_connect": 1,
				"obd.errors.buffer_full": 1, "obd.errors.searching": 1, "obd.errors.short_reply": 1,
				"obd.errors.garbage": 1, "obd.errors.negative_response": 1, "obd.errors.mismatch": 1,
			},
		},
		{
			file: "reinit.txt", pids: []byte{0x0C},
			want: []string{
				"sample 010C 1726", "event IGNITION_ON obd rpm 1726",
				"sample 010C 1726.25", "sample 010C 1726.5", "sample 010C 1726.75", "sample 010C 1727",
			},
			counters: map[string]uint64{
				"obd.samples": 5, "obd.reinits": 3, "obd.resyncs": 1, "obd.late_replies": 1, "obd.stale_prompts": 0,
				"obd.settings_refused": 4, "obd.searching": 4,
				"obd.errors.timeout": 1, "obd.errors.lv_reset": 1, "obd.errors.err94": 1, "obd.errors.act_alert": 1,
				"obd.errors.unknown_command": 4,
			},
		},
		{
			// Item 8: ATDPN not answered in time leaves the protocol
			// unknown; the session carries on.
			file: "atdpn_silent.txt", pids: []byte{0x0C},
			want: []string{"sample 010C 1000", "event IGNITION_ON obd rpm 1000"},
			counters: map[string]uint64{"obd.samples": 1, "obd.errors.timeout": 4, "obd.resyncs": 3,
				"obd.unknown_protocol": 1, "obd.searching": 1},
		},
		{
			file: "late_replies.txt", pids: []byte{0x0C, 0x0D, 0x05}, info: true,
			want: []string{
				"event VIN_READ WP0ZZZ99ZTS390000",
				"event DTC_SET P0133 stored",
				"sample 010C 1000", "sample 010D 0", "sample 0105 215",
				"event IGNITION_ON obd rpm 1000",
				"sample 010D 1", "sample 0105 214",
				"sample 010D 2", "sample 0105 212",
			},
			counters: map[string]uint64{
				"obd.samples": 7, "obd.searching": 1, "obd.multi_fallbacks": 1, "obd.vin_reads": 1, "obd.dtc_reads": 1,
				"obd.resyncs": 5, "obd.late_replies": 4, "obd.stale_prompts": 1,
				"obd.errors.timeout": 5, "obd.errors.no_data": 1, "obd.errors.unknown_command": 2, "obd.errors.mismatch": 1,
			},
		},
		{
			file: "silent_adapter.txt", pids: []byte{0x0C},
			want:     []string{"sample 010C 1000", "event IGNITION_ON obd rpm 1000"},
			counters: map[string]uint64{"obd.samples": 1, "obd.errors.timeout": 3, "obd.resyncs": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var counters edge.Counters
			a := loadTranscript(t, tt.file)
			src := obd.Source{
				Device:          &device{a: a},
				PIDs:            tt.pids,
				Interval:        time.Millisecond,
				Timeout:         200 * time.Millisecond, // only the silent replies wait for it
				VoltageInterval: time.Hour,
				BusBackoff:      edge.Backoff{Min: time.Millisecond, Max: time.Millisecond},
				Counters:        &counters,
				Now:             func() time.Time { return clock },
			}
			if !tt.info {
				src.NoVIN, src.DTCInterval = true, -1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out := make(chan edge.Record, 100)
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, out) }()
			var got []string
		loop:
			for {
				select {
				case r := <-out:
					if r.UnixMs() != clock.UnixMilli() {
						t.Errorf("%s stamped %d, want the agent clock %d", describe(r), r.UnixMs(), clock.UnixMilli())
					}
					switch {
					case r.Kind == edge.KindEvent && r.Event.Type.String() == "EVENT_TYPE_DEVICE_DISCONNECTED":
						break loop
					case r.Kind == edge.KindEvent && r.Event.Type.String() == "EVENT_TYPE_DEVICE_CONNECTED":
					default:
						got = append(got, describe(r))
					}
				case <-ctx.Done():
					t.Fatalf("no disconnect within the deadline; records so far %q", got)
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
			if !a.done() {
				t.Errorf("the session stopped before the end of the transcript (step %d of %d)", a.next, len(a.steps))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
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
		noBanner         bool
	}{
		{"no banner", "ATZ\t\"\\r\\rOBDII\\r\\r>\"\nATZ\t\"\\r\\rOBDII\\r\\r>\"\n", true},
		{"automatic protocol refused", "ATZ\t\"ELM327 v1.5\\r\\r>\"\nATE0\t\"?\\r\\r>\"\nATL0\t\"?\\r\\r>\"\n" +
			"ATS0\t\"?\\r\\r>\"\nATH1\t\"?\\r\\r>\"\nATSP0\t\"?\\r\\r>\"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseTranscript(t, tt.name, []byte(tt.transcript))
			s := obd.NewSession(a, nil)
			s.ResetTimeout = 100 * time.Millisecond
			defer a.Close()
			defer s.Close()
			info, err := s.Init(context.Background())
			if err == nil {
				t.Fatalf("Init succeeded with %+v", info)
			}
			if errors.Is(err, obd.ErrNoBanner) != tt.noBanner {
				t.Errorf("Init = %v; ErrNoBanner %v", err, tt.noBanner)
			}
		})
	}
}

// The session learns the adapter and the protocol as obd-probe prints them.
func TestSessionInfo(t *testing.T) {
	a := loadTranscript(t, "can11_genuine.txt")
	s := obd.NewSession(a, nil)
	defer a.Close()
	defer s.Close()
	ctx := context.Background()
	info, err := s.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Voltage(ctx); err != nil || v != 14.2 {
		t.Errorf("Voltage = %v, %v", v, err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	info = s.Info()
	want := obd.Info{Adapter: "ELM327 v1.5", Format: obd.Format{Protocol: obd.ProtoCAN11_500, Headers: true}, Protocol: "ISO 15765-4 (CAN 11/500)"}
	if info != want {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
	pids, err := s.Supported(ctx)
	wantPIDs := []byte{0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x11, 0x13, 0x14, 0x15, 0x1C,
		0x21, 0x2F, 0x31, 0x33, 0x42, 0x46, 0x5C, 0x5E}
	if err != nil || !cmp.Equal(wantPIDs, pids) {
		t.Errorf("Supported = % X, %v", pids, err)
	}
	if vin, err := s.VIN(ctx); err != nil || vin != "WP0ZZZ99ZTS390000" {
		t.Errorf("VIN = %q, %v", vin, err)
	}
	if codes, err := s.DTCs(ctx, obd.DTCStored); err != nil || !cmp.Equal([]string{"P0133", "P0301"}, codes) {
		t.Errorf("stored DTCs = %q, %v", codes, err)
	}
}
