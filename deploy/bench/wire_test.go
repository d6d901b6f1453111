package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// wireAgent is the agent's real uplink (sending policy and MQTT connection)
// on an in-memory outbox, against the shared broker, with an observer that
// sees its batches and answers as the cloud.
type wireAgent struct {
	t       *testing.T
	ns      telemetry.Namespace
	vehicle string
	outbox  *memory.Outbox
	sender  *uplink.Sender
	ctr     edge.Counters
	obs     paho.Client
	msgs    chan paho.Message
}

func startWireAgent(t *testing.T, keepAlive time.Duration) *wireAgent {
	t.Helper()
	url, ns := testenv.MQTT(t)
	w := &wireAgent{t: t, ns: telemetry.Namespace(ns), vehicle: "wire-" + testenv.ID(), outbox: memory.NewOutbox(1, 0),
		msgs: make(chan paho.Message, 100)}
	w.obs = connect(t, paho.NewClientOptions().AddBroker(url).SetClientID("fgbench-obs-"+testenv.ID()))
	t.Cleanup(func() { w.obs.Disconnect(100) })
	for _, k := range []telemetry.Kind{telemetry.KindBatch, telemetry.KindBatchV2, telemetry.KindStatus} {
		if tok := w.obs.Subscribe(w.topic(k), 1, func(_ paho.Client, m paho.Message) { w.msgs <- m }); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	var err error
	if w.sender, err = uplink.New(uplink.Config{VehicleID: w.vehicle}, w.outbox, nil, &w.ctr); err != nil {
		t.Fatal(err)
	}
	up, err := mqtt.New(mqtt.Config{URL: url, Namespace: w.ns, StatusInterval: time.Hour, KeepAlive: keepAlive}, w.vehicle, w.sender, nil, &w.ctr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("uplink: %v", err)
		}
		e2e.ForgetAgent(t, url, w.ns, w.vehicle)
	})
	return w
}

func (w *wireAgent) topic(k telemetry.Kind) string {
	s, err := w.ns.Topic(w.vehicle, k)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// next returns the next message the observer got on a topic of kind.
func (w *wireAgent) next(k telemetry.Kind) paho.Message {
	w.t.Helper()
	for {
		select {
		case m := <-w.msgs:
			if m.Topic() == w.topic(k) {
				return m
			}
		case <-time.After(time.Minute):
			w.t.Fatalf("nothing on %s within a minute", w.topic(k))
		}
	}
}

// wire returns the bytes the agent's connection sent and received so far.
func (w *wireAgent) wire() (sent, received int) {
	c := w.ctr.Snapshot()
	return int(c["uplink.wire_bytes_sent"]), int(c["uplink.wire_bytes_received"])
}

// expect waits until the agent's connection has sent and received exactly
// the bytes given since (sent0, received0), and fails if it goes past them.
// A negative sent is not checked.
func (w *wireAgent) expect(what string, sent0, received0, sent, received int) {
	w.t.Helper()
	testenv.Eventually(w.t, time.Minute, what, func() error {
		s, r := w.wire()
		if sent < 0 {
			s, sent0, sent = 0, 0, 0
		}
		if s-sent0 > sent || r-received0 > received {
			w.t.Fatalf("%s: %d bytes sent and %d received, the model says %d and %d", what, s-sent0, r-received0, sent, received)
		}
		if s-sent0 != sent || r-received0 != received {
			return fmt.Errorf("%d of %d bytes sent, %d of %d received", s-sent0, sent, r-received0, received)
		}
		return nil
	})
}

// TestWireModel checks the MQTT packet sizes the byte figures are computed
// with (bench.PublishBytes and the rest) against the bytes the agent's own
// connection counts on a real broker: the CONNACK, SUBACK and status PUBACK
// of a connection, a batch of each protocol version and its PUBACK, the
// cloud's Ack and the agent's PUBACK of it.
func TestWireModel(t *testing.T) {
	w := startWireAgent(t, time.Hour)
	status := w.next(telemetry.KindStatus)
	_, suback := bench.SubscribeBytes(w.topic(telemetry.KindAck), w.topic(telemetry.KindCmd))
	w.expect("CONNACK, SUBACK and the status's PUBACK", 0, 0, -1, bench.ConnackBytes+suback+bench.PubackBytes)
	s0, r0 := w.wire()
	// What went first is the CONNECT (its will is an offline status, whose
	// size the observer cannot see), the SUBSCRIBE and the online status.
	subscribe, _ := bench.SubscribeBytes(w.topic(telemetry.KindAck), w.topic(telemetry.KindCmd))
	connect := s0 - subscribe - bench.PublishBytes(status.Topic(), len(status.Payload()), 1)
	if will := connect - bench.ConnectBytes("fleetgate-edge-"+w.vehicle, status.Topic(), 0); will <= 0 || will > len(status.Payload())+16 {
		t.Errorf("%d bytes sent before the first batch leave a will of %d bytes; the online status has %d", s0, will, len(status.Payload()))
	}

	for i, kind := range []telemetry.Kind{telemetry.KindBatch, telemetry.KindBatchV2} {
		if err := w.outbox.Append(context.Background(), []edge.Record{edge.PositionRecord(bench.NewDrive(1).Next(time.Now().Truncate(time.Second), time.Second))}); err != nil {
			t.Fatal(err)
		}
		w.sender.Notify()
		b := w.next(kind)
		w.expect(fmt.Sprintf("a batch on %s and its PUBACK", kind), s0, r0, bench.PublishBytes(b.Topic(), len(b.Payload()), 1), bench.PubackBytes)
		s0, r0 = w.wire()
		ack := telemetry.NewAck(w.vehicle, w.outbox.StreamID(), []telemetry.SeqRange{{First: uint64(i + 1), Last: uint64(i + 1)}}, nil, "")
		ack.Version = 2
		p, err := telemetry.Encode(ack, false)
		if err != nil {
			t.Fatal(err)
		}
		if tok := w.obs.Publish(w.topic(telemetry.KindAck), 1, false, p); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			t.Fatalf("publish ack: %v", tok.Error())
		}
		w.expect("the cloud's Ack and its PUBACK", s0, r0, bench.PubackBytes, bench.PublishBytes(w.topic(telemetry.KindAck), len(p), 1))
		s0, r0 = w.wire()
	}
}

// TestWireModelKeepalive: an idle connection pings, PINGREQ and PINGRESP.
func TestWireModelKeepalive(t *testing.T) {
	w := startWireAgent(t, time.Second)
	w.next(telemetry.KindStatus)
	_, suback := bench.SubscribeBytes(w.topic(telemetry.KindAck), w.topic(telemetry.KindCmd))
	handshake := bench.ConnackBytes + suback + bench.PubackBytes
	var s0 int
	testenv.Eventually(t, time.Minute, "the handshake", func() error {
		var r int
		s0, r = w.wire()
		return testenv.True(r == handshake)
	})
	testenv.Eventually(t, time.Minute, "two pings", func() error {
		s, r := w.wire()
		ds, dr := s-s0, r-handshake
		if dr%bench.PingrespBytes != 0 || ds%bench.PingreqBytes != 0 || ds < dr || ds > dr+bench.PingreqBytes {
			t.Fatalf("%d bytes sent and %d received since the handshake: not PINGREQs and their PINGRESPs", ds, dr)
		}
		return testenv.True(dr >= 2*bench.PingrespBytes)
	})
}

// BenchmarkWireBytes reports what a fix costs on the wire (the whole MQTT
// PUBLISH: fixed header, topic, packet identifier, payload) beside what
// the same costs in the other encodings: sent alone, as a caught-up agent
// sends it (wire_bytes_lone_fix; vehicle veh-0001, default namespace, a seq
// of a few days' driving), and in a batch of 60 at 1 Hz, as a backlog goes
// (wire_bytes_per_fix). Codec 8 is over TCP, without MQTT: a packet of its
// records with no IO element.
func BenchmarkWireBytes(b *testing.B) {
	const vehicle, n = "veh-0001", 60
	topic := func(k telemetry.Kind) string {
		t, err := telemetry.DefaultNamespace.Topic(vehicle, k)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	d := bench.NewDrive(5)
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	batch := &telemetry.Batch{VehicleID: vehicle, StreamID: 0x1234567890abcdef}
	var c8 []codec8Record
	for i := range n {
		p := d.Next(base.Add(time.Duration(i)*time.Second), time.Second)
		p.Seq = uint64(1_000_000 + 9*i) // a fix and 8 OBD samples a second, for a few days
		batch.Positions = append(batch.Positions, p)
		c8 = append(c8, codec8Record{TimestampMs: uint64(p.UnixMs), LonE7: p.LonE7, LatE7: p.LatE7, AltM: int16(p.AltCm / 100),
			Angle: uint16(p.CourseCdeg / 100), Sats: byte(p.SatsUsed), SpeedKmh: uint16(p.SpeedMmps * 36 / 10000)})
	}
	lone := &telemetry.Batch{VehicleID: vehicle, StreamID: batch.StreamID, Positions: batch.Positions[:1]}
	var v2Lone, v2Batch []byte
	for b.Loop() {
		var err error
		if v2Lone, err = telemetry.EncodeBatchV2(lone, true); err != nil {
			b.Fatal(err)
		}
		if v2Batch, err = telemetry.EncodeBatchV2(batch, true); err != nil {
			b.Fatal(err)
		}
	}
	v1Lone, err := telemetry.EncodeBatch(lone, true)
	if err != nil {
		b.Fatal(err)
	}
	v1Batch, err := telemetry.EncodeBatch(batch, true)
	if err != nil {
		b.Fatal(err)
	}
	jsonLone, _ := json.Marshal(map[string]any{"vehicle_id": vehicle, "stream_id": batch.StreamID, "records": jsonRecords(lone)})
	jsonAll, _ := json.Marshal(map[string]any{"vehicle_id": vehicle, "stream_id": batch.StreamID, "records": jsonRecords(batch)})
	gz, zs := jsonBatch(batch)
	perFix := func(payload int) float64 {
		return float64(bench.PublishBytes(topic(telemetry.KindBatch), payload, 1)) / n
	}

	b.ReportMetric(float64(bench.PublishBytes(topic(telemetry.KindBatchV2), len(v2Lone), 1)), "B/lone-fix")
	b.ReportMetric(float64(bench.PublishBytes(topic(telemetry.KindBatch), len(v1Lone), 1)), "B/lone-fix-v1")
	b.ReportMetric(float64(bench.PublishBytes(topic(telemetry.KindBatch), len(jsonLone), 1)), "B/lone-fix-json")
	b.ReportMetric(float64(len(codec8Packet(c8[:1]))), "B/lone-fix-codec8")
	b.ReportMetric(float64(bench.PublishBytes(topic(telemetry.KindBatchV2), len(v2Batch), 1))/n, "B/fix")
	b.ReportMetric(perFix(len(v1Batch)), "B/fix-v1")
	b.ReportMetric(perFix(len(jsonAll)), "B/fix-json")
	b.ReportMetric(perFix(gz), "B/fix-json-gzip")
	b.ReportMetric(perFix(zs), "B/fix-json-zstd")
	b.ReportMetric(float64(len(codec8Packet(c8)))/n, "B/fix-codec8")
}
