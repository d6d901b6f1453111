package edge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func openOutbox(t *testing.T) *bolt.Outbox {
	t.Helper()
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func depth(t *testing.T, o edge.Outbox) edge.OutboxStats {
	t.Helper()
	st, err := o.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCollectorGroupCommit(t *testing.T) {
	o := openOutbox(t)
	committed := make(chan int, 10)
	c := edge.Collector{
		Outbox:        o,
		FlushInterval: time.Hour, // only the record count and the shutdown flush
		MaxRecords:    100,
		OnCommit:      func(r []edge.Record) { committed <- len(r) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan edge.Record)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, in) }()
	for i := range 250 {
		in <- edge.PositionRecord(telemetry.Position{UnixMs: int64(i)})
	}
	// The first record finds the outbox idle and goes at once (with any
	// other already waiting); the others wait for the next commit slot (an
	// hour away) or for 100 to be waiting.
	if n := <-committed; n < 1 || n > 50 {
		t.Errorf("a first commit of %d records, want the few waiting", n)
	}
	for range 2 {
		if n := <-committed; n != 100 {
			t.Errorf("a commit of %d records, want 100", n)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	st := depth(t, o)
	if st.Depth != 250 || st.Commits != 4 {
		t.Errorf("after shutdown: depth %d in %d commits, want 250 in 4", st.Depth, st.Commits)
	}
	recs, err := o.Unsent(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Seq() != uint64(i+1) || r.UnixMs() != int64(i) {
			t.Fatalf("record %d: seq %d time %d; arrival order lost", i, r.Seq(), r.UnixMs())
		}
	}
}

func TestCollectorFlushesOnInterval(t *testing.T) {
	o := openOutbox(t)
	c := edge.Collector{Outbox: o, FlushInterval: 10 * time.Millisecond, MaxRecords: 1000}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan edge.Record, 10)
	go c.Run(ctx, in)
	for i := range 5 {
		in <- edge.OBDRecord(telemetry.OBDSample{UnixMs: int64(i), PID: 0x010D})
	}
	testenv.Eventually(t, 10*time.Second, "5 records in the outbox", func() error { return testenv.True(depth(t, o).Depth == 5) })
	if st := depth(t, o); st.Commits > 5 {
		t.Errorf("%d commits for 5 records", st.Commits)
	}
}

// TestCollectorCommitPace: a record after a quiet spell is committed at
// once, with what else is already waiting; one sooner waits until the last
// commit is FlushInterval old; never more than one commit an interval.
func TestCollectorCommitPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := memory.NewOutbox(1, 0)
		var commits []time.Duration // when, since the start
		var sizes []int
		start := time.Now()
		c := edge.Collector{Outbox: o, FlushInterval: 200 * time.Millisecond,
			OnCommit: func(r []edge.Record) { commits, sizes = append(commits, time.Since(start)), append(sizes, len(r)) }}
		ctx, cancel := context.WithCancel(context.Background())
		in := make(chan edge.Record, 100)
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, in) }()
		send := func(n int) {
			for range n {
				in <- edge.OBDRecord(telemetry.OBDSample{PID: 0x010C})
			}
		}
		send(8) // an OBD reply's samples, in one go: committed at 0
		synctest.Wait()
		time.Sleep(50 * time.Millisecond)
		send(1) // 50 ms after a commit: waits until 200 ms
		time.Sleep(100 * time.Millisecond)
		send(1) // joins it
		time.Sleep(850 * time.Millisecond)
		send(1) // at 1 s, long after the last commit: at once
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
		want := []time.Duration{0, 200 * time.Millisecond, time.Second}
		if !slices.Equal(commits, want) || !slices.Equal(sizes, []int{8, 2, 1}) {
			t.Errorf("commits at %v of %v records; want at %v of [8 2 1]", commits, sizes, want)
		}
	})
}

func TestCollectorHoldsRecordsWhileOutboxFails(t *testing.T) {
	o := openOutbox(t)
	c := edge.Collector{Outbox: o, FlushInterval: time.Millisecond, MaxRecords: 10}
	if err := o.Close(); err != nil { // every Append now fails
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan edge.Record, 10)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, in) }()
	in <- edge.EventRecord(telemetry.Event{Type: telemetry.EventAgentStarted})
	cancel()
	err := <-done
	if !errors.Is(err, edge.ErrOutboxClosed) {
		t.Errorf("Run = %v; want the records it could not store reported", err)
	}
}

// flaky fails every Append while fail is set.
type flaky struct {
	*bolt.Outbox
	fail atomic.Bool
}

func (f *flaky) Append(ctx context.Context, recs []edge.Record) error {
	if f.fail.Load() {
		return errors.New("write outbox.db: no space left on device")
	}
	return f.Outbox.Append(ctx, recs)
}

// While appends fail, the Collector holds at most MaxPending records,
// dropping the oldest (counted), reads on (the sources never block), and
// says it is failing; once appends work, the newest are stored after an
// event that says how many went.
func TestCollectorDropsOldestWhileAppendsFail(t *testing.T) {
	o := &flaky{Outbox: openOutbox(t)}
	o.fail.Store(true)
	var counters edge.Counters
	c := &edge.Collector{Outbox: o, FlushInterval: time.Millisecond, MaxRecords: 5, MaxPending: 10, Counters: &counters}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan edge.Record)
	go c.Run(ctx, in)
	for i := range 30 {
		in <- edge.PositionRecord(telemetry.Position{UnixMs: int64(i)}) // never blocks for long
	}
	testenv.Eventually(t, 10*time.Second, "20 dropped", func() error {
		return testenv.True(counters.Snapshot()["collector.dropped"] == 20)
	})
	if c.Failing() == nil {
		t.Error("Failing = nil while appends fail")
	}
	o.fail.Store(false)
	// The stored records are visible before Append returns to the
	// Collector, which only then clears Failing: wait for both.
	testenv.Eventually(t, 10*time.Second, "the records stored and Failing cleared", func() error {
		if d := depth(t, o).Depth; d != 11 {
			return fmt.Errorf("depth %d, want 11", d)
		}
		if err := c.Failing(); err != nil {
			return fmt.Errorf("Failing = %v after appends recovered", err)
		}
		return testenv.True(true)
	})
	recs, err := o.Unsent(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if e := recs[0].Event; recs[0].Kind != edge.KindEvent || e.Type != telemetry.EventRecordsDropped || e.Code != "append_failed" || e.Value != 20 {
		t.Errorf("first record %+v, want the drop event", recs[0])
	}
	for i, r := range recs[1:] {
		if r.UnixMs() != int64(20+i) {
			t.Errorf("record %d at %d, want the newest ten (from 20)", i+1, r.UnixMs())
		}
	}
}
