package mqtt_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
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
	batches chan topicBatch
	status  chan *telemetrypb.Status
	ctr     edge.Counters
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url, ns := testenv.MQTT(t)
	f := &fixture{
		t: t, url: url, ns: telemetry.Namespace(ns), vehicle: "veh-" + testenv.ID(),
		batches: make(chan topicBatch, 100), status: make(chan *telemetrypb.Status, 100),
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
	onBatch := func(_ paho.Client, m paho.Message) {
		b, err := telemetry.DecodeBatchOn(f.vehicle, m.Payload())
		if err != nil {
			t.Errorf("batch on %s does not decode: %v", m.Topic(), err)
			return
		}
		f.batches <- topicBatch{m.Topic(), b}
	}
	f.wait(f.obs.Subscribe(f.topic(telemetry.KindBatch), 1, onBatch))
	f.wait(f.obs.Subscribe(f.topic(telemetry.KindBatchV2), 1, onBatch))
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

// topicBatch is a batch and the topic it came on.
type topicBatch struct {
	topic string
	*telemetry.Batch
}

// start runs an uplink with cfg (URL and namespace filled in) and a Sender
// with sc until the test ends.
func (f *fixture) start(cfg mqtt.Config, sc uplink.Config) (*mqtt.Uplink, *uplink.Sender) {
	f.t.Helper()
	if cfg.URL == "" {
		cfg.URL = f.url
	}
	cfg.Namespace = f.ns
	cfg.Backoff = edge.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	sc.VehicleID = f.vehicle
	s, err := uplink.New(sc, f.outbox, nil, &f.ctr)
	if err != nil {
		f.t.Fatal(err)
	}
	u, err := mqtt.New(cfg, f.vehicle, s, nil, &f.ctr)
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
	return u, s
}

func (f *fixture) append(recs ...edge.Record) {
	f.t.Helper()
	if err := f.outbox.Append(context.Background(), recs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) nextBatch() topicBatch {
	f.t.Helper()
	select {
	case b := <-f.batches:
		return b
	case <-time.After(20 * time.Second):
		f.t.Fatal("no batch within 20s")
	}
	return topicBatch{}
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

// ack publishes an Ack on down/ack as the cloud does; version says which
// Batch version the cloud reads.
func (f *fixture) ack(version uint32, committed, rejected []telemetry.SeqRange) {
	f.t.Helper()
	a := telemetry.NewAck(f.vehicle, f.outbox.StreamID(), committed, rejected, "test")
	a.Version = version
	p, err := telemetry.Encode(a, false)
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

func seqs(b topicBatch) []telemetry.SeqRange { return b.SeqRanges() }

// TestBatchStaysUntilAcked: records go as a batch (version 1 until the
// cloud says more), the broker's PUBACK deletes nothing, the cloud's Ack
// does, committed or rejected.
func TestBatchStaysUntilAcked(t *testing.T) {
	f := newFixture(t)
	fix := telemetry.Position{UnixMs: 1795773600000, LatE7: 437384166, LonE7: 74246333, Has: telemetry.HasSpeed, SpeedMmps: 13891}
	f.append(edge.PositionRecord(fix),
		edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773600412, PID: 0x010C, Value: 1303.75}),
		edge.PositionRecord(telemetry.Position{UnixMs: 1795773601000, LatE7: 437384200, LonE7: 74246400}))
	u, s := f.start(mqtt.Config{}, uplink.Config{AckTimeout: time.Minute})

	if st := f.nextStatus(); !st.GetOnline() || st.GetVehicleId() != f.vehicle || st.GetStreamId() != f.outbox.StreamID() {
		t.Errorf("first status = %v, want online with the vehicle and stream", st)
	}
	b := f.nextBatch()
	if b.topic != f.topic(telemetry.KindBatch) || b.VehicleID != f.vehicle || b.StreamID != f.outbox.StreamID() || len(b.Positions) != 2 || len(b.OBD) != 1 {
		t.Fatalf("batch on %s = %+v", b.topic, b.Batch)
	}
	fix.Seq = 1
	if b.Positions[0] != fix || b.OBD[0].Seq != 2 || b.OBD[0].Value != 1303.75 {
		t.Errorf("batch contents %+v %+v", b.Positions[0], b.OBD[0])
	}
	f.waitFor("the PUBACK", func() bool { return f.ctr.Snapshot()["uplink.pubacks"] >= 1 })
	if d := f.depth(); d != 3 {
		t.Fatalf("outbox depth %d after PUBACK, want 3", d)
	}
	if !u.Connected() {
		t.Error("Connected() = false")
	}
	f.ack(0, []telemetry.SeqRange{{First: 1, Last: 2}}, []telemetry.SeqRange{{First: 3, Last: 3}})
	f.waitFor("the ack to empty the outbox", func() bool { return f.depth() == 0 })

	f.append(edge.EventRecord(telemetry.Event{UnixMs: 1795773602000, Type: telemetry.EventIgnitionOff}))
	s.Notify()
	if b := f.nextBatch(); len(b.Events) != 1 || b.Events[0].Seq != 4 {
		t.Errorf("second batch = %+v", b.Batch)
	}
}

// TestVersion2: once an Ack says the cloud reads version 2, batches go in
// version 2 on the vehicle's own topic, and decode to the same records.
func TestVersion2(t *testing.T) {
	f := newFixture(t)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	_, s := f.start(mqtt.Config{}, uplink.Config{})
	if b := f.nextBatch(); b.topic != f.topic(telemetry.KindBatch) {
		t.Fatalf("first batch on %s, want version 1's topic", b.topic)
	}
	f.ack(2, []telemetry.SeqRange{{First: 1, Last: 1}}, nil)
	f.waitFor("the ack", func() bool { return f.depth() == 0 })
	p := telemetry.Position{UnixMs: 1795773601000, LatE7: 437384000, LonE7: 74246000, Has: telemetry.HasAlt | telemetry.HasSpeed, AltCm: 5000, SpeedMmps: 13900}
	f.append(edge.PositionRecord(p))
	s.Notify()
	b := f.nextBatch()
	p.Seq = 2
	if b.topic != f.topic(telemetry.KindBatchV2) || b.VehicleID != f.vehicle || len(b.Positions) != 1 || b.Positions[0] != p {
		t.Fatalf("batch on %s: %+v; want version 2 on %s with %+v", b.topic, b.Batch, f.topic(telemetry.KindBatchV2), p)
	}
}

// TestLastWillAndResendAfterReconnect: a cut connection gives the offline
// will; the agent reconnects by itself, says it is online and sends the
// unacked record again without waiting for the ack timeout.
func TestLastWillAndResendAfterReconnect(t *testing.T) {
	f := newFixture(t)
	p := testenv.StartProxy(t, testenv.MQTTAddr, testenv.ProxyOptions{})
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	f.start(mqtt.Config{URL: p.URL()}, uplink.Config{AckTimeout: time.Hour})
	if s := f.nextStatus(); !s.GetOnline() {
		t.Fatalf("status %v, want online", s)
	}
	if b := f.nextBatch(); seqs(b)[0] != (telemetry.SeqRange{First: 1, Last: 1}) {
		t.Fatalf("batch %v", seqs(b))
	}
	p.Cut() // the broker sees the connection die without a DISCONNECT
	if s := f.nextStatus(); s.GetOnline() || s.GetVehicleId() != f.vehicle {
		t.Fatalf("after the cut: status %v, want the offline last will", s)
	}
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
	s, err := uplink.New(uplink.Config{VehicleID: f.vehicle}, f.outbox, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := mqtt.New(mqtt.Config{URL: f.url, Namespace: f.ns}, f.vehicle, s, nil, nil)
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
	s, err := uplink.New(uplink.Config{VehicleID: "veh-1"}, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg     mqtt.Config
		vehicle string
	}{
		{mqtt.Config{URL: "tcp://127.0.0.1:1883", Namespace: "fleet/v1"}, "bad id"},
		{mqtt.Config{URL: "http://127.0.0.1:1883", Namespace: "fleet/v1"}, "veh-1"},
		{mqtt.Config{URL: "tcp://127.0.0.1:1883", Namespace: "fleet/+"}, "veh-1"},
		{mqtt.Config{URL: "", Namespace: "fleet/v1"}, "veh-1"},
	} {
		if _, err := mqtt.New(tc.cfg, tc.vehicle, s, nil, nil); err == nil {
			t.Errorf("New(%+v, %q) accepted", tc.cfg, tc.vehicle)
		}
	}
}

type fixState edge.FixState

func (s fixState) FixState() edge.FixState { return edge.FixState(s) }

// TestStatusReport: the retained status (compressed when that is smaller)
// carries the outbox, the fix state and the counters, and comes at once
// when asked.
func TestStatusReport(t *testing.T) {
	f := newFixture(t)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	f.ctr.Add("gps.bad_checksum", 3)
	since := time.UnixMilli(1795773000000)
	u, _ := f.start(mqtt.Config{StatusInterval: time.Hour,
		Status: uplink.StatusInfo{AgentVersion: "test", Fix: fixState{Mode: telemetry.ModeNoFix, NoFixSince: since}}},
		uplink.Config{MinBatchAge: time.Hour})
	s := f.nextStatus()
	if !s.GetOnline() || s.GetOutboxDepth() != 1 || s.GetNextSeq() != 2 || s.GetFixMode() != uint32(telemetry.ModeNoFix) ||
		s.GetNoFixSinceUnixMs() != since.UnixMilli() || s.GetCounters()["gps.bad_checksum"] != 3 || s.GetAgentVersion() != "test" {
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
