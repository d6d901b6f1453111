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
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// The OBD tests here run the simulator's ELM327 in this process on a real
// pseudo-terminal (the simulator's own transport) and the agent's obd
// package, or the obd-probe binary, on the other side of it, opened by
// edge/serial as a serial port is. The two sides share no code: what the
// agent decodes is checked against what the simulator says it sent.

// liveECU is the simulated engine computer, its model advanced with real
// time (times speed).
type liveECU struct {
	v     *firmwaresim.Vehicle
	t0    time.Time
	start time.Time
	speed float64
}

func (e *liveECU) State() firmwaresim.State {
	return e.v.AdvanceTo(e.start.Add(time.Duration(float64(time.Since(e.t0)) * e.speed)))
}

// simAdapter is an ELM327 emulation served on a pty, with the samples it
// sent, by PID, in order.
type simAdapter struct {
	*elm327.Adapter
	Path string

	mu      sync.Mutex
	samples map[byte][]float64
}

func startAdapter(t *testing.T, opts ...elm327.Option) *simAdapter {
	t.Helper()
	return startAdapterOn(t, nil, opts...)
}

// startAdapterOn is startAdapter with the adapter's side of the pty passed
// through line, if not nil, as a faulty link would.
func startAdapterOn(t *testing.T, line func(io.ReadWriter) io.ReadWriter, opts ...elm327.Option) *simAdapter {
	t.Helper()
	route, err := firmwaresim.RouteByName("monaco-loop")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: route, Seed: 7, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	p, err := transport.OpenPTY("", 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &simAdapter{Adapter: elm327.NewAdapter(&liveECU{v: v, t0: time.Now(), start: start, speed: 10}, opts...),
		Path: p.Addr(), samples: map[byte][]float64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var rw io.ReadWriter = p
	if line != nil {
		rw = line(p)
	}
	go func() {
		done <- s.Serve(ctx, rw, func(x elm327.Sample) {
			s.mu.Lock()
			s.samples[x.PID] = append(s.samples[x.PID], x.Value)
			s.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		p.Close()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("adapter: %v", err)
		}
	})
	return s
}

func (s *simAdapter) sent() map[byte][]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneSamples(s.samples)
}

func cloneSamples(m map[byte][]float64) map[byte][]float64 {
	out := make(map[byte][]float64, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// agentRun is an obd.Source running against a device, with what it sent.
type agentRun struct {
	Counters edge.Counters
	notify   chan struct{} // a record arrived

	mu      sync.Mutex
	samples map[byte][]float64
	events  []telemetry.Event
	n       int // samples
}

func runSource(t *testing.T, path string, tune func(*obd.Source)) *agentRun {
	t.Helper()
	dev, err := serial.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &agentRun{notify: make(chan struct{}, 1), samples: map[byte][]float64{}}
	src := &obd.Source{
		Device: dev, PIDs: []byte{0x0C, 0x0D, 0x05}, Interval: 10 * time.Millisecond,
		Timeout: 500 * time.Millisecond, OffInterval: 50 * time.Millisecond,
		Backoff:    edge.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		BusBackoff: edge.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond},
		Counters:   &r.Counters,
	}
	if tune != nil {
		tune(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan edge.Record)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	go func() {
		for rec := range out {
			r.mu.Lock()
			switch rec.Kind {
			case edge.KindOBD:
				pid := byte(rec.OBD.PID)
				if rec.OBD.Mode() != 1 {
					t.Errorf("a sample of mode %02X", rec.OBD.Mode())
				}
				r.samples[pid] = append(r.samples[pid], rec.OBD.Value)
				r.n++
			case edge.KindEvent:
				r.events = append(r.events, rec.Event)
			}
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("source: %v", err)
		}
		close(out)
	})
	return r
}

func (r *agentRun) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *agentRun) got() map[byte][]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneSamples(r.samples)
}

func (r *agentRun) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, strings.TrimPrefix(e.Type.String(), "EVENT_TYPE_")+" "+e.Code+" "+e.Detail)
	}
	return out
}

// until waits for cond, checked at every record and every few milliseconds
// (the adapter's own counters change between records), for at most within.
func (r *agentRun) until(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-r.notify:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; counters %v", what, within, r.Counters.Snapshot())
		}
	}
}

// caughtUp returns what the adapter sent once it has as many samples of each
// PID as got (it records a sample just after writing the reply, so the agent
// may be first), or after a few seconds whatever it has.
func (s *simAdapter) caughtUp(got map[byte][]float64) map[byte][]float64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent := s.sent()
		behind := false
		for pid, vs := range got {
			behind = behind || len(sent[pid]) < len(vs)
		}
		if !behind || time.Now().After(deadline) {
			return sent
		}
		time.Sleep(time.Millisecond)
	}
}

// inOrder checks that every value the agent recorded is one the adapter
// sent, PID by PID and in the same order: nothing invented, nothing taken
// from an error reply or another ECU. With exact, the agent must also have
// every value but the last few the adapter sent as it was being stopped.
func inOrder(t *testing.T, agent, sim map[byte][]float64, exact bool) {
	t.Helper()
	for pid, got := range agent {
		want := sim[pid]
		i := 0
		for _, v := range got {
			for i < len(want) && want[i] != v {
				if exact {
					t.Errorf("PID %02X: the agent skipped %v (sample %d)", pid, want[i], i)
					return
				}
				i++
			}
			if i == len(want) {
				t.Errorf("PID %02X: the agent recorded %v, which the adapter did not send in that order\nagent %v\nsent  %v", pid, v, got, want)
				return
			}
			i++
		}
		if exact && len(want)-i > 2 {
			t.Errorf("PID %02X: the agent has %d samples, the adapter sent %d", pid, len(got), len(want))
		}
	}
	for pid, want := range sim {
		if len(agent[pid]) == 0 && len(want) > 2 {
			t.Errorf("PID %02X: the adapter sent %d samples, the agent recorded none", pid, len(want))
		}
	}
}

// Each adapter profile on each kind of bus: what the agent records is
// exactly what the adapter sent, and the VIN and trouble codes arrive.
func TestOBDSourceOnProfiles(t *testing.T) {
	t.Parallel()
	for _, p := range elm327.Profiles() {
		for _, proto := range []byte{6, 7, 3} {
			t.Run(fmt.Sprintf("%s/protocol %d", p.Name, proto), func(t *testing.T) {
				t.Parallel()
				vin := "1D4GP00R55B123456"
				sim := startAdapter(t, elm327.WithProfile(p), elm327.WithProtocol(proto), elm327.WithVIN(vin),
					elm327.WithDTCs([]string{"P0301", "U0158"}, []string{"P0420"}, nil))
				run := runSource(t, sim.Path, func(s *obd.Source) {
					s.PIDs = []byte{0x0C, 0x0D, 0x05, 0x0A, 0x2F}
					s.Polls = []obd.Poll{{PID: 0xA6, Every: 100 * time.Millisecond}}
				})
				run.until(t, 60*time.Second, "60 samples", func() bool { return run.count() >= 60 })
				got := run.got()
				sent := sim.caughtUp(got)
				run.until(t, 10*time.Second, "the events", func() bool { return len(run.eventList()) >= 5 })
				inOrder(t, got, sent, true)
				events := run.eventList()
				for _, want := range []string{"VIN_READ " + vin + " ", "DTC_SET P0301 stored", "DTC_SET U0158 stored",
					"DTC_SET P0420 pending", "IGNITION_ON obd rpm"} {
					if !slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, want) }) {
						t.Errorf("no event %q in %q", want, events)
					}
				}
				if n := len(got[0xA6]); n == 0 || n > len(got[0x0C]) {
					t.Errorf("%d odometer samples (every 100 ms) for %d engine speed samples (every 10 ms)", n, len(got[0x0C]))
				}
				if len(got[0x0A]) != 0 {
					t.Errorf("PID 0A (never answered) has values %v", got[0x0A])
				}
				c := run.Counters.Snapshot()
				if want := map[bool]uint64{true: 1}[p.FirstPIDOnly && proto != 3]; c["obd.multi_fallbacks"] != want {
					t.Errorf("obd.multi_fallbacks = %d, want %d", c["obd.multi_fallbacks"], want)
				}
				if p.BufferFullEvery > 0 && proto != 3 && (c["obd.errors.buffer_full"] == 0 || c["obd.retries"] != 0) {
					// Retried as single requests (not counted as retries),
					// and multi-PID requests go on (checked above).
					t.Errorf("BUFFER FULL every %d long replies: obd.errors.buffer_full = %d, obd.retries = %d",
						p.BufferFullEvery, c["obd.errors.buffer_full"], c["obd.retries"])
				}
				if slices.Contains(p.Unanswered, 0x0A) && c["obd.unanswered_pids"] != 1 {
					t.Errorf("obd.unanswered_pids = %d (0A is claimed and never answered)", c["obd.unanswered_pids"])
				}
			})
		}
	}
}
