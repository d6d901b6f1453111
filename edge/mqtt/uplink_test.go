package mqtt_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// fixture is one test's uplink world: a real outbox, the shared Mosquitto
// under the test's own namespace, a vehicle id of its own, and a test client
// that watches the vehicle's topics.
type fixture struct {
	t       *testing.T
	url     string
	ns      telemetry.Namespace
	vehicle string
	outbox  *bolt.Outbox
	obs     paho.Client
	batches chan *telemetry.Batch
	status  chan *telemetrypb.Status
	ctr     edge.Counters
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url, ns := testenv.MQTT(t)
	f := &fixture{
		t: t, url: url, ns: telemetry.Namespace(ns), vehicle: "veh-" + testenv.ID(),
		batches: make(chan *telemetry.Batch, 100), status: make(chan *telemetrypb.Status, 100),
	}
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	f.outbox = o

	f.obs = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("obs-" + testenv.ID()).SetOrderMatters(true))
	f.wait(f.obs.Connect())
	t.Cleanup(func() { f.obs.Disconnect(100) })
	f.wait(f.obs.Subscribe(f.topic(telemetry.KindBatch), 1, func(_ paho.Client, m paho.Message) {
		b, err := telemetry.DecodeBatch(m.Payload())
		if err != nil {
			t.Errorf("batch does not decode: %v", err)
			return
		}
		f.batches <- b
	}))
	f.wait(f.obs.Subscribe(f.topic(telemetry.KindStatus), 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			return // the cleanup clearing the retained status
		}
		var s telemetrypb.Status
		if err := telemetry.Decode(m.Payload(), &s); err != nil {
			t.Errorf("status does not decode: %v", err)
			return
		}
		f.status <- &s
	}))
	t.Cleanup(func() {
		// Leave nothing on the shared broker: the retained status and the
		// persistent session of the agent's client id.
		f.wait(f.obs.Publish(f.topic(telemetry.KindStatus), 1, true, []byte{}))
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetgate-edge-" + f.vehicle).SetCleanSession(true))
		f.wait(c.Connect())
		c.Disconnect(100)
	})
	return f
}

func (f *fixture) topic(k telemetry.Kind) string {
	s, err := f.ns.Topic(f.vehicle, k)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) wait(tok paho.Token) {
	f.t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		f.t.Fatal("paho: no answer within 10s")
	}
	if err := tok.Error(); err != nil {
		f.t.Fatal(err)
	}
}

// start runs an uplink with cfg (URL, vehicle and namespace filled in) until
// the test ends.
func (f *fixture) start(cfg mqtt.Config) *mqtt.Uplink {
	f.t.Helper()
	if cfg.URL == "" {
		cfg.URL = f.url
	}
	cfg.VehicleID, cfg.Namespace = f.vehicle, f.ns
	cfg.Backoff = edge.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	u, err := mqtt.New(cfg, f.outbox, nil, &f.ctr)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			f.t.Errorf("Run = %v", err)
		}
	})
	return u
}

func (f *fixture) append(recs ...edge.Record) {
	f.t.Helper()
	if err := f.outbox.Append(context.Background(), recs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) nextBatch() *telemetry.Batch {
	f.t.Helper()
	select {
	case b := <-f.batches:
		return b
	case <-time.After(20 * time.Second):
		f.t.Fatal("no batch within 20s")
	}
	return nil
}

func (f *fixture) nextStatus() *telemetrypb.Status {
	f.t.Helper()
	select {
	case s := <-f.status:
		return s
	case <-time.After(20 * time.Second):
		f.t.Fatal("no status within 20s")
	}
	return nil
}

func (f *fixture) ack(committed, rejected []telemetry.SeqRange) {
	f.t.Helper()
	p, err := telemetry.Encode(telemetry.NewAck(f.vehicle, f.outbox.StreamID(), committed, rejected, "test"), false)
	if err != nil {
		f.t.Fatal(err)
	}
	f.wait(f.obs.Publish(f.topic(telemetry.KindAck), 1, false, p))
}

func (f *fixture) depth() uint64 {
	st, err := f.outbox.Stats(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return st.Depth
}

func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seqs(b *telemetry.Batch) []telemetry.SeqRange { return b.SeqRanges() }

func TestBatchStaysUntilAcked(t *testing.T) {
	f := newFixture(t)
	fix := telemetry.Position{UnixMs: 1795773600000, LatE7: 437384166, LonE7: 74246333, Has: telemetry.HasSpeed, SpeedMmps: 13891}
	f.append(edge.PositionRecord(fix),
		edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773600412, PID: 0x010C, Value: 1303.75}),
		edge.PositionRecord(telemetry.Position{UnixMs: 1795773601000, LatE7: 437384200, LonE7: 74246400}))
	u := f.start(mqtt.Config{BatchMaxAge: 50 * time.Millisecond, AckTimeout: time.Minute})

	if s := f.nextStatus(); !s.GetOnline() || s.GetVehicleId() != f.vehicle || s.GetStreamId() != f.outbox.StreamID() {
		t.Errorf("first status = %v, want online with the vehicle and stream", s)
	}
	b := f.nextBatch()
	if b.VehicleID != f.vehicle || b.StreamID != f.outbox.StreamID() || len(b.Positions) != 2 || len(b.OBD) != 1 {
		t.Fatalf("batch = %+v", b)
	}
	fix.Seq = 1
	if b.Positions[0] != fix || b.OBD[0].Seq != 2 || b.OBD[0].Value != 1303.75 {
		t.Errorf("batch contents %+v %+v", b.Positions[0], b.OBD[0])
	}
	// The broker has acknowledged the PUBLISH: that deletes nothing.
	f.waitFor("the PUBACK", func() bool { return f.ctr.Snapshot()["uplink.pubacks"] >= 1 })
	if d := f.depth(); d != 3 {
		t.Fatalf("outbox depth %d after PUBACK, want 3", d)
	}
	if !u.Connected() {
		t.Error("Connected() = false")
	}
	// Committed and rejected ranges both release records.
	f.ack([]telemetry.SeqRange{{First: 1, Last: 2}}, []telemetry.SeqRange{{First: 3, Last: 3}})
	f.waitFor("the ack to empty the outbox", func() bool { return f.depth() == 0 })

	// New records flow in a new batch once notified.
	f.append(edge.EventRecord(telemetry.Event{UnixMs: 1795773602000, Type: telemetry.EventIgnitionOff}))
	u.Notify()
	if b := f.nextBatch(); len(b.Events) != 1 || b.Events[0].Seq != 4 {
		t.Errorf("second batch = %+v", b)
	}
}

func TestBatchesBySizeAndWindow(t *testing.T) {
	f := newFixture(t)
	recs := make([]edge.Record, 35)
	for i := range recs {
		recs[i] = edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773600000 + int64(i), PID: 0x010D, Value: float64(i)})
	}
	f.append(recs...)
	f.start(mqtt.Config{BatchMaxRecords: 10, HistoryBatchRecords: 10, Inflight: 2, BatchMaxAge: time.Hour, AckTimeout: time.Minute})
	b1, b2 := f.nextBatch(), f.nextBatch()
	if got := append(seqs(b1), seqs(b2)...); len(got) != 2 || got[0] != (telemetry.SeqRange{First: 1, Last: 10}) || got[1] != (telemetry.SeqRange{First: 11, Last: 20}) {
		t.Fatalf("first two batches %v", got)
	}
	// The uplink fills its window in one pass: had it ignored the limit,
	// 21-30 would already be counted by the time 11-20 arrived here.
	if n := f.ctr.Snapshot()["uplink.batches"]; n != 2 {
		t.Fatalf("%d batches published with a window of 2 and no ack", n)
	}
	f.ack([]telemetry.SeqRange{{First: 1, Last: 10}}, nil)
	if b := f.nextBatch(); seqs(b)[0] != (telemetry.SeqRange{First: 21, Last: 30}) {
		t.Errorf("third batch %v, want 21-30", seqs(b))
	}
	// 31-35 is a partial batch, held for BatchMaxAge (1h).
	if n := f.ctr.Snapshot()["uplink.batches"]; n != 3 {
		t.Errorf("%d batches after one ack, want 3", n)
	}
}

func TestResendAfterAckTimeout(t *testing.T) {
	f := newFixture(t)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	f.start(mqtt.Config{BatchMaxAge: 10 * time.Millisecond, AckTimeout: 300 * time.Millisecond})
	first, again := f.nextBatch(), f.nextBatch()
	if seqs(first)[0] != (telemetry.SeqRange{First: 1, Last: 1}) || seqs(again)[0] != seqs(first)[0] {
		t.Fatalf("batches %v then %v, want seq 1 twice", seqs(first), seqs(again))
	}
	if n := f.ctr.Snapshot()["uplink.ack_timeouts"]; n < 1 {
		t.Errorf("uplink.ack_timeouts = %d", n)
	}
	f.ack([]telemetry.SeqRange{{First: 1, Last: 1}}, nil)
	f.waitFor("the ack to empty the outbox", func() bool { return f.depth() == 0 })
}

// proxy forwards TCP connections to the broker until cut closes them all,
// as a cellular link that drops would.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestLastWillAndResendAfterReconnect(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, testenv.MQTTAddr)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	f.start(mqtt.Config{URL: "tcp://" + p.l.Addr().String(), BatchMaxAge: 10 * time.Millisecond, AckTimeout: time.Hour})
	if s := f.nextStatus(); !s.GetOnline() {
		t.Fatalf("status %v, want online", s)
	}
	if b := f.nextBatch(); seqs(b)[0] != (telemetry.SeqRange{First: 1, Last: 1}) {
		t.Fatalf("batch %v", seqs(b))
	}
	p.cut() // the broker sees the connection die without a DISCONNECT
	if s := f.nextStatus(); s.GetOnline() || s.GetVehicleId() != f.vehicle {
		t.Fatalf("after the cut: status %v, want the offline last will", s)
	}
	// The agent reconnects by itself, says it is online, and sends the
	// unacknowledged record again without waiting for the ack timeout.
	if s := f.nextStatus(); !s.GetOnline() {
		t.Fatalf("after reconnecting: status %v, want online", s)
	}
	if b := f.nextBatch(); seqs(b)[0] != (telemetry.SeqRange{First: 1, Last: 1}) {
		t.Fatalf("resent batch %v", seqs(b))
	}
	if n := f.ctr.Snapshot()["uplink.connection_lost"]; n != 1 {
		t.Errorf("uplink.connection_lost = %d, want 1", n)
	}
}

func TestGracefulStopSaysOffline(t *testing.T) {
	f := newFixture(t)
	u, err := mqtt.New(mqtt.Config{URL: f.url, VehicleID: f.vehicle, Namespace: f.ns}, f.outbox, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	if s := f.nextStatus(); !s.GetOnline() {
		t.Fatalf("status %v", s)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if s := f.nextStatus(); s.GetOnline() {
		t.Errorf("status after stop %v, want offline", s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	o, err := bolt.Open(filepath.Join(t.TempDir(), "o.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, cfg := range []mqtt.Config{
		{URL: "tcp://127.0.0.1:1883", VehicleID: "bad id", Namespace: "fleet/v1"},
		{URL: "http://127.0.0.1:1883", VehicleID: "veh-1", Namespace: "fleet/v1"},
		{URL: "tcp://127.0.0.1:1883", VehicleID: "veh-1", Namespace: "fleet/+"},
		{URL: "", VehicleID: "veh-1", Namespace: "fleet/v1"},
	} {
		if _, err := mqtt.New(cfg, o, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestNewestFixFirstAfterOutage: with a backlog, the newest fix goes alone
// first, then the history oldest first, without it.
func TestNewestFixFirstAfterOutage(t *testing.T) {
	f := newFixture(t)
	recs := make([]edge.Record, 25)
	for i := range recs {
		recs[i] = edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000 + int64(i)*1000, LatE7: int32(i), LonE7: 1})
	}
	recs = append(recs, edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773630000, PID: 0x010C, Value: 900}))
	f.append(recs...)
	f.start(mqtt.Config{BatchMaxRecords: 5, HistoryBatchRecords: 10, Inflight: 8, BatchMaxAge: time.Hour, AckTimeout: time.Minute})
	var got []telemetry.SeqRange
	for range 4 {
		got = append(got, seqs(f.nextBatch())...)
	}
	// The last history batch is 21-24 and 26 (an OBD sample): 25 went first.
	want := []telemetry.SeqRange{{First: 25, Last: 25}, {First: 1, Last: 10}, {First: 11, Last: 20}, {First: 21, Last: 24}, {First: 26, Last: 26}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("batches (-want +got):\n%s", diff)
	}
}

type fixState edge.FixState

func (s fixState) FixState() edge.FixState { return edge.FixState(s) }

// TestStatusReport: the status carries the outbox, the fix state, the drop
// counters and the agent's counters, and comes at once when asked.
func TestStatusReport(t *testing.T) {
	f := newFixture(t)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	f.ctr.Add("gps.bad_checksum", 3)
	since := time.UnixMilli(1795773000000)
	u := f.start(mqtt.Config{BatchMaxAge: time.Hour, StatusInterval: time.Hour, Fix: fixState{Mode: telemetry.ModeNoFix, NoFixSince: since}})
	s := f.nextStatus()
	if !s.GetOnline() || s.GetOutboxDepth() != 1 || s.GetNextSeq() != 2 || s.GetFixMode() != uint32(telemetry.ModeNoFix) ||
		s.GetNoFixSinceUnixMs() != since.UnixMilli() || s.GetCounters()["gps.bad_checksum"] != 3 {
		t.Errorf("status %v", s)
	}
	if _, ok := s.GetCounters()["outbox.dropped_oldest"]; !ok {
		t.Errorf("status counters lack the outbox drop counters: %v", s.GetCounters())
	}
	u.ReportStatus(context.Background())
	if s := f.nextStatus(); !s.GetOnline() {
		t.Errorf("status on demand %v", s)
	}
}
