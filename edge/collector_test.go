package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
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
	if st.Depth != 250 || st.Commits != 3 {
		t.Errorf("after shutdown: depth %d in %d commits, want 250 in 3", st.Depth, st.Commits)
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
	testenv.Eventually(t, 10*time.Second, "the records stored", func() error { return testenv.True(depth(t, o).Depth == 11) })
	if c.Failing() != nil {
		t.Errorf("Failing = %v after appends recovered", c.Failing())
	}
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
