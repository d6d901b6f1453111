package uplink_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Every test runs in a synctest bubble: time is fake and moves only when
// every goroutine of the bubble waits, so a rule about time is checked to
// the nanosecond in microseconds of real time.

const vehicle = "veh-0001"

// message is one batch as the connection received it.
type message struct {
	kind  telemetry.Kind
	batch *telemetry.Batch
	at    time.Time
}

// conn is a Conn that keeps what it is given, decoded.
type conn struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []message
	fail error // returned by Publish when set
}

func (c *conn) Publish(_ context.Context, kind telemetry.Kind, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	b, err := telemetry.DecodeBatchOn(vehicle, payload)
	if err != nil {
		c.t.Errorf("published batch does not decode: %v", err)
		return nil
	}
	if v := payload[0] >> 4; (kind == telemetry.KindBatch) != (v == 1) || (kind == telemetry.KindBatchV2) != (v == 2) {
		c.t.Errorf("version %d batch for topic kind %q", v, kind)
	}
	c.msgs = append(c.msgs, message{kind, b, time.Now()})
	return nil
}

// take returns the messages published since the last take.
func (c *conn) take() []message {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// world is one test's sender, outbox and connection.
type world struct {
	t      *testing.T
	outbox *memory.Outbox
	s      *uplink.Sender
	conn   *conn
	ctr    edge.Counters
	stop   func() error
}

func newWorld(t *testing.T, cfg uplink.Config) *world {
	t.Helper()
	w := &world{t: t, outbox: memory.NewOutbox(1, 0), conn: &conn{t: t}}
	cfg.VehicleID = vehicle
	s, err := uplink.New(cfg, w.outbox, nil, &w.ctr)
	if err != nil {
		t.Fatal(err)
	}
	w.s = s
	return w
}

// run starts the sender on w.conn; stop (also at the end of the test) ends
// it and returns what Run returned.
func (w *world) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.s.Run(ctx, w.conn) }()
	w.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	w.t.Cleanup(func() { w.stop() })
	synctest.Wait()
}

// add appends n records of kind (fixes or OBD samples) and notifies.
func (w *world) add(n int, kind edge.Kind) {
	w.t.Helper()
	recs := make([]edge.Record, n)
	for i := range recs {
		ms := time.Now().UnixMilli() + int64(i)
		if kind == edge.KindPosition {
			recs[i] = edge.PositionRecord(telemetry.Position{UnixMs: ms, LatE7: 437384000 + int32(i), LonE7: 74246000})
		} else {
			recs[i] = edge.OBDRecord(telemetry.OBDSample{UnixMs: ms, PID: 0x010C, Value: 800})
		}
	}
	if err := w.outbox.Append(context.Background(), recs); err != nil {
		w.t.Fatal(err)
	}
	w.s.Notify()
	synctest.Wait()
}

// ack acknowledges the ranges as committed, saying the cloud reads version.
func (w *world) ack(version uint32, rs ...telemetry.SeqRange) {
	w.t.Helper()
	a := telemetry.NewAck(vehicle, w.outbox.StreamID(), rs, nil, "")
	a.Version = version
	if err := w.s.Ack(context.Background(), a); err != nil {
		w.t.Fatal(err)
	}
	synctest.Wait()
}

// sent returns the seq ranges of each batch published since the last call.
func (w *world) sent() [][]telemetry.SeqRange {
	var out [][]telemetry.SeqRange
	for _, m := range w.conn.take() {
		out = append(out, m.batch.SeqRanges())
	}
	return out
}

func (w *world) wantSent(want ...[]telemetry.SeqRange) {
	w.t.Helper()
	if diff := cmp.Diff(want, w.sent()); diff != "" {
		w.t.Errorf("batches published (-want +got):\n%s", diff)
	}
}

func (w *world) depth() uint64 {
	st, err := w.outbox.Stats(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Depth
}

func r(first, last uint64) telemetry.SeqRange { return telemetry.SeqRange{First: first, Last: last} }
func rs(first, last uint64) []telemetry.SeqRange {
	return []telemetry.SeqRange{r(first, last)}
}

// An idle link costs no latency: a record goes the moment it is appended.
func TestSendsAtOnceWhenNothingInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.run()
		start := time.Now()
		w.add(1, edge.KindPosition)
		msgs := w.conn.take()
		if len(msgs) != 1 || msgs[0].batch.SeqRanges()[0] != r(1, 1) || !msgs[0].at.Equal(start) {
			t.Fatalf("published %+v, want seq 1 at once", msgs)
		}
		w.ack(0, r(1, 1))
		if d := w.depth(); d != 0 {
			t.Errorf("outbox depth %d after the ack", d)
		}
		w.add(1, edge.KindPosition)
		w.wantSent(rs(2, 2))
	})
}

// While a live batch awaits its ack, new records gather into the next batch,
// which the ack closes.
func TestGathersWhileAckPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.run()
		w.add(1, edge.KindPosition)
		w.wantSent(rs(1, 1))
		w.add(2, edge.KindOBD)
		time.Sleep(300 * time.Millisecond)
		w.add(1, edge.KindPosition)
		w.wantSent() // nothing: seq 1 is in flight
		w.ack(0, r(1, 1))
		w.wantSent(rs(2, 4))
		if rtt := w.s.RTT(); rtt != 300*time.Millisecond {
			t.Errorf("RTT %v, want 300ms", rtt)
		}
	})
}

// With NoDelay (load tests against a broker alone) a partial batch does not
// wait for the previous one's ack.
func TestNoDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{NoDelay: true, MinBatchAge: time.Second})
		w.run()
		w.add(1, edge.KindPosition)
		time.Sleep(1500 * time.Millisecond) // seq 1 went at 1s, no ack
		w.add(1, edge.KindPosition)
		time.Sleep(time.Second)
		synctest.Wait()
		w.wantSent(rs(1, 1), rs(2, 2))
	})
}

// A batch that reaches BatchMaxRecords goes without waiting for the ack,
// while the window has room; the partial rest waits.
func TestClosedBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{BatchMaxRecords: 5, Inflight: 3})
		w.run()
		w.add(1, edge.KindOBD)
		w.add(12, edge.KindOBD)
		w.wantSent(rs(1, 1), rs(2, 6), rs(7, 11)) // 12-13 are a partial batch, live in flight
		w.add(5, edge.KindOBD)
		w.wantSent() // 12-16 is full, but the window (3) is full
		w.ack(0, r(1, 1))
		w.wantSent(rs(12, 16))
		w.ack(0, r(2, 16))
		w.wantSent(rs(17, 18))
	})
}

// At most Inflight batches await their ack; each ack lets one more go.
func TestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{BatchMaxRecords: 10, HistoryBatchRecords: 10, Inflight: 2})
		w.add(35, edge.KindOBD) // a backlog without fixes: nothing goes first
		w.run()
		w.wantSent(rs(1, 10), rs(11, 20))
		if n := w.ctr.Snapshot()["uplink.batches"]; n != 2 {
			t.Errorf("%d batches published with a window of 2", n)
		}
		w.ack(0, r(1, 10))
		w.wantSent(rs(21, 30))
		w.ack(0, r(11, 30))
		w.wantSent(rs(31, 35))
	})
}

// The metered-link knob: a partial batch waits until its first record has
// waited MinBatchAge; a full one goes at once.
func TestMinBatchAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{MinBatchAge: time.Minute, BatchMaxRecords: 100})
		w.run()
		start := time.Now()
		w.add(1, edge.KindPosition)
		time.Sleep(30 * time.Second)
		w.add(8, edge.KindOBD)
		time.Sleep(29*time.Second + 999*time.Millisecond)
		synctest.Wait()
		w.wantSent()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		msgs := w.conn.take()
		if len(msgs) != 1 || msgs[0].batch.Len() != 9 || msgs[0].at.Sub(start) != time.Minute {
			t.Fatalf("published %d batches; want the 9 records in one, a minute after the first", len(msgs))
		}
		w.ack(0, r(1, 9))
		w.add(100, edge.KindOBD)
		w.wantSent(rs(10, 109)) // full: at once
		if err := w.s.SetMinBatchAge(0); err != nil {
			t.Fatal(err)
		}
		w.ack(0, r(10, 109))
		w.add(1, edge.KindOBD)
		w.wantSent(rs(110, 110))
		for _, bad := range []time.Duration{-time.Second, uplink.MaxMinBatchAge + 1} {
			if w.s.SetMinBatchAge(bad) == nil {
				t.Errorf("SetMinBatchAge(%v) accepted", bad)
			}
		}
	})
}

// After an outage the newest fix goes first, alone; then the backlog oldest
// first without it.
func TestNewestFixFirstAfterOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{BatchMaxRecords: 5, HistoryBatchRecords: 10, Inflight: 8})
		w.add(25, edge.KindPosition)
		w.add(1, edge.KindOBD)
		w.run()
		w.wantSent(rs(25, 25), rs(1, 10), rs(11, 20), []telemetry.SeqRange{r(21, 24), r(26, 26)})
		if n := w.ctr.Snapshot()["uplink.newest_first"]; n != 1 {
			t.Errorf("uplink.newest_first = %d", n)
		}
	})
}

// A backlog of one batch or less is no outage: it goes as it is.
func TestSmallBacklogInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{BatchMaxRecords: 5})
		w.add(5, edge.KindPosition)
		w.run()
		w.wantSent(rs(1, 5))
	})
}

// Live records take the first free slot of the window before the backlog:
// while history fills the window, a new fix waits for one ack, then goes
// before the next history batch.
func TestLivePreemptsHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{BatchMaxRecords: 10, HistoryBatchRecords: 10, Inflight: 2})
		w.add(100, edge.KindOBD)
		w.run()
		w.wantSent(rs(1, 10), rs(11, 20))
		w.add(1, edge.KindPosition) // seq 101, live
		w.wantSent()
		w.ack(0, r(1, 10))
		w.wantSent(rs(101, 101))
		w.ack(0, r(11, 20))
		w.wantSent(rs(21, 30))
		// With room in the window, a live record goes at once though history
		// is in flight.
		w.ack(0, r(101, 101))
		w.wantSent(rs(31, 40))
		w.ack(0, r(21, 30))
		w.wantSent(rs(41, 50))
		w.add(1, edge.KindPosition) // 102: the window is full again
		w.ack(0, r(31, 40))
		w.wantSent(rs(102, 102))
	})
}

// When the oldest batch in flight has had no ack for AckTimeout, every
// unacked record goes again.
func TestResendAfterAckTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{AckTimeout: 30 * time.Second})
		w.run()
		w.add(1, edge.KindPosition)
		time.Sleep(10 * time.Second)
		w.add(2, edge.KindPosition)
		w.wantSent(rs(1, 1))
		time.Sleep(20*time.Second - time.Millisecond)
		synctest.Wait()
		w.wantSent()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		w.wantSent(rs(1, 3))
		if n := w.ctr.Snapshot()["uplink.ack_timeouts"]; n != 1 {
			t.Errorf("uplink.ack_timeouts = %d", n)
		}
		w.ack(0, r(1, 3))
		if d := w.depth(); d != 0 {
			t.Errorf("depth %d after the ack", d)
		}
	})
}

// A new connection sends every unacked record again, at once.
func TestResendOnNewConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.run()
		w.add(3, edge.KindPosition)
		w.wantSent(rs(1, 3))
		w.ack(0, r(1, 1))
		if err := w.stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		w.run()
		w.wantSent(rs(2, 3))
	})
}

// Acks delete what they cover, committed or rejected; an ack for another
// stream or vehicle deletes nothing.
func TestAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.run()
		w.add(4, edge.KindPosition)
		for _, a := range []*telemetrypb.Ack{
			telemetry.NewAck(vehicle, w.outbox.StreamID()+1, rs(1, 4), nil, ""),
			telemetry.NewAck("veh-0002", w.outbox.StreamID(), rs(1, 4), nil, ""),
		} {
			w.s.Ack(context.Background(), a)
		}
		synctest.Wait()
		if d, n := w.depth(), w.ctr.Snapshot()["uplink.acks_foreign"]; d != 4 || n != 2 {
			t.Errorf("after foreign acks: depth %d, uplink.acks_foreign %d; want 4 and 2", d, n)
		}
		w.s.Ack(context.Background(), telemetry.NewAck(vehicle, w.outbox.StreamID(), rs(1, 2), rs(3, 3), "lat out of range"))
		synctest.Wait()
		c := w.ctr.Snapshot()
		if d := w.depth(); d != 1 || c["uplink.records_acked"] != 3 || c["uplink.records_rejected"] != 1 {
			t.Errorf("depth %d, counters %v", d, c)
		}
	})
}

// Version 1 until an ack says the cloud reads version 2; back to version 1
// after an ack timeout; never above MaxVersion.
func TestProtocolVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{AckTimeout: 10 * time.Second})
		w.run()
		w.add(1, edge.KindPosition)
		w.ack(2, r(1, 1))
		w.add(1, edge.KindPosition)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		var kinds []telemetry.Kind
		for _, m := range w.conn.take() {
			kinds = append(kinds, m.kind)
			if m.batch.VehicleID != vehicle {
				t.Errorf("batch of %q", m.batch.VehicleID)
			}
		}
		want := []telemetry.Kind{telemetry.KindBatch, telemetry.KindBatchV2, telemetry.KindBatch}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("topics (-want +got):\n%s", diff)
		}
		if n := w.ctr.Snapshot()["uplink.version_fallbacks"]; n != 1 || w.s.Version() != 1 {
			t.Errorf("version %d, uplink.version_fallbacks %d", w.s.Version(), n)
		}

		pinned := newWorld(t, uplink.Config{MaxVersion: 1})
		pinned.run()
		pinned.add(1, edge.KindPosition)
		pinned.ack(2, r(1, 1))
		pinned.add(1, edge.KindPosition)
		if m := pinned.conn.take(); len(m) != 2 || m[1].kind != telemetry.KindBatch {
			t.Errorf("MaxVersion 1 published %+v", m)
		}
	})
}

// A connection that refuses a batch ends Run with the error; the next Run
// sends it again.
func TestPublishError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.conn.fail = errors.New("connection closed")
		w.run()
		w.add(1, edge.KindPosition)
		if err := w.stop(); err == nil || !errors.Is(err, w.conn.fail) {
			t.Fatalf("Run = %v, want the publish error", err)
		}
		w.conn.fail = nil
		w.run()
		w.wantSent(rs(1, 1))
	})
}

func TestRunOnceAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.run()
		if err := w.s.Run(context.Background(), w.conn); !errors.Is(err, uplink.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	o := memory.NewOutbox(1, 0)
	for _, cfg := range []uplink.Config{
		{VehicleID: "bad id"},
		{VehicleID: ""},
		{VehicleID: vehicle, MinBatchAge: -time.Second},
		{VehicleID: vehicle, MinBatchAge: 2 * time.Hour},
	} {
		if _, err := uplink.New(cfg, o, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

type fix edge.FixState

func (f fix) FixState() edge.FixState { return edge.FixState(f) }

// The status report carries the outbox, the fix state, the round trip and
// every counter, the outbox's drop counters included.
func TestStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, uplink.Config{})
		w.ctr.Add("gps.bad_checksum", 3)
		started := time.Now()
		w.add(2, edge.KindPosition)
		time.Sleep(time.Minute)
		since := time.UnixMilli(1795773000000)
		s, err := w.s.Status(context.Background(), true, time.Now(),
			uplink.StatusInfo{AgentVersion: "v9", Started: started, Fix: fix{Mode: telemetry.ModeNoFix, NoFixSince: since}})
		if err != nil {
			t.Fatal(err)
		}
		want := &telemetrypb.Status{VehicleId: vehicle, Online: true, UnixMs: time.Now().UnixMilli(), AgentVersion: "v9",
			StreamId: w.outbox.StreamID(), NextSeq: 3, OutboxDepth: 2, OldestUnsentAgeMs: 60000, FixMode: 1,
			NoFixSinceUnixMs: since.UnixMilli(), UptimeMs: 60000,
			Counters: map[string]uint64{"gps.bad_checksum": 3, "outbox.dropped_thinned": 0, "outbox.dropped_oldest": 0, "outbox.dropped_expired": 0}}
		if diff := cmp.Diff(want, s, cmpProto); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})
}

var cmpProto = protocmp.Transform()
