package gps_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// replugRig is a USB receiver that can be pulled out and plugged back in: a
// pty behind a stable symlink, as udev (or the simulator's --link-dir) gives
// one. Unplugging closes both sides, so the port vanishes; plugging makes a
// new pty and points the link at it atomically.
type replugRig struct {
	dir, link     string
	master, slave *os.File
}

func newReplugRig(tb testing.TB) *replugRig {
	dir := tb.TempDir()
	r := &replugRig{dir: dir, link: filepath.Join(dir, "gps")}
	tb.Cleanup(r.unplug)
	return r
}

func (r *replugRig) plug(tb testing.TB) {
	m, s, err := pty.Open()
	if err != nil {
		tb.Fatalf("pty.Open: %v", err)
	}
	r.master, r.slave = m, s
	tmp := filepath.Join(r.dir, "gps.new")
	if err := os.Symlink(s.Name(), tmp); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, r.link); err != nil {
		tb.Fatal(err)
	}
}

func (r *replugRig) unplug() {
	if r.master != nil {
		r.master.Close()
		r.slave.Close()
		r.master, r.slave = nil, nil
	}
}

// run starts a Source on the rig's link and returns its records.
func (r *replugRig) run(tb testing.TB, ctx context.Context, src *gps.Source) <-chan edge.Record {
	dev, err := serial.Parse(r.link)
	if err != nil {
		tb.Fatal(err)
	}
	src.Device = dev
	out := make(chan edge.Record, 1000)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	tb.Cleanup(func() {
		if err := <-done; err != context.Canceled && err != context.DeadlineExceeded {
			tb.Errorf("Run returned %v", err)
		}
	})
	return out
}

// awaitResume waits for the source to open the port again, then writes two
// epochs (RMC only: the first is closed by the second if the ender is not yet
// known) and waits for the position of the first. It returns false if that
// does not happen within 10 s.
func awaitResume(tb testing.TB, r *replugRig, out <-chan edge.Record, sec int) bool {
	deadline := time.After(10 * time.Second)
	want := time.Date(2017, 1, 10, 0, 10, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second).UnixMilli()
	connected := false
	for {
		select {
		case rec := <-out:
			if rec.Kind == edge.KindEvent && rec.Event.Type == telemetry.EventDeviceConnected && !connected {
				connected = true
				if _, err := r.master.Write([]byte(rmcLine(sec) + rmcLine(sec+1))); err != nil {
					tb.Fatalf("write: %v", err)
				}
			}
			if rec.Kind == edge.KindPosition && rec.Position.UnixMs == want {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// rmcLine is rmcAt for any second after 00:10:00, with its line end.
func rmcLine(sec int) string {
	t := time.Date(2017, 1, 10, 0, 10, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
	return withChecksum(fmt.Sprintf("GNRMC,%s.00,A,4404.13993,N,12118.86023,W,0.0,,100117,,,A", t.Format("150405"))) + "\r\n"
}

// TestReplug pulls the receiver out and plugs it back in 100 times through
// a real pty: each time the source finds the new port behind the link and
// its fixes resume. The deadline is generous; how long it takes is measured
// by BenchmarkReplug.
func TestReplug(t *testing.T) {
	r := newReplugRig(t)
	r.plug(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var counters edge.Counters
	out := r.run(t, ctx, &gps.Source{Counters: &counters, Backoff: edge.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}})
	const cycles = 100
	for i := range cycles {
		if !awaitResume(t, r, out, 2*i) {
			t.Fatalf("replug %d: no fix within 10s (counters %v)", i, counters.Snapshot())
		}
		r.unplug()
		r.plug(t)
	}
	cancel()
	if c := counters.Snapshot(); c["gps.reconnects"] < cycles-1 {
		t.Errorf("gps.reconnects = %d, want at least %d", c["gps.reconnects"], cycles-1)
	}
}

// BenchmarkReplug measures how long fixes take to resume after a receiver
// is pulled out and plugged straight back in, with the agent's backoff
// (200 ms to 2 s, reset after a session that ran: StableAfter is 1 ns since
// the sessions here last milliseconds). Reported: p50 and max seconds from
// the unplug to the first fix from the new port.
func BenchmarkReplug(b *testing.B) {
	r := newReplugRig(b)
	r.plug(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := r.run(b, ctx, &gps.Source{Backoff: edge.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}, StableAfter: time.Nanosecond})
	if !awaitResume(b, r, out, 0) {
		b.Fatal("no first fix")
	}
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		r.unplug()
		r.plug(b)
		if !awaitResume(b, r, out, 2*(i+1)) {
			b.Fatalf("replug %d: no fix within 10s", i)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	cancel()
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "s-to-resume-p50")
	b.ReportMetric(took[len(took)-1].Seconds(), "s-to-resume-max")
}
