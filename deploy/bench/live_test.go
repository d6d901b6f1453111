package bench_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// server is the real cloud-server binary running on the machine's services
// with a database, Redis prefix and topic namespace of its own.
type server struct {
	api     cloudapi.Client
	mqttURL string
	ns      telemetry.Namespace
	proc    *testenv.Proc
}

func startServer(tb testing.TB, bin, dir string) *server {
	tb.Helper()
	redisURL, prefix := testenv.Redis(tb)
	mqttURL, ns := testenv.MQTT(tb)
	port := testenv.FreePort(tb)
	clientID := "fgbench-server-" + testenv.ID()
	s := &server{api: cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}, mqttURL: mqttURL, ns: telemetry.Namespace(ns)}
	tb.Cleanup(func() { // after the server has stopped (cleanups run last first)
		if err := mqtt.RemoveSession(context.Background(), mqttURL, clientID); err != nil {
			tb.Errorf("remove the server's session: %v", err)
		}
	})
	s.proc = testenv.StartProcess(tb, dir, "cloud-server", filepath.Join(bin, "cloud-server"), []string{
		"DATABASE_URL=" + testenv.Postgres(tb), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=" + clientID,
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=warn",
	}, "run")
	e2e.WaitReady(tb, time.Minute, s.api, s.proc)
	s.api.Token = e2e.Token(tb, s.proc)
	return s
}

// startAgent writes an agent configuration (the defaults, plus extra YAML)
// and runs the real edge-agent binary with it until the benchmark ends.
func startAgent(tb testing.TB, bin, dir string, s *server, vehicle, extra string) *testenv.Proc {
	tb.Helper()
	tb.Cleanup(func() { e2e.ForgetAgent(tb, s.mqttURL, s.ns, vehicle) })
	cfg := filepath.Join(dir, vehicle+".yaml")
	yaml := fmt.Sprintf("vehicle_id: %s\ndata_dir: %s\nmqtt:\n  url: %s\n  namespace: %s\nlog:\n  level: warn\n%s",
		vehicle, filepath.Join(dir, vehicle+"-data"), s.mqttURL, s.ns, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return testenv.StartProcess(tb, dir, "edge-agent-"+vehicle, filepath.Join(bin, "edge-agent"), nil, "run", "--config", cfg)
}

// liveWatch follows one vehicle on the broker, beside the cloud's
// subscriptions (which get their own copies): when the batch holding each
// fix time (ms) reached the broker, with its seq and protocol version, and
// when the cloud's Ack of each seq came, which the cloud publishes only once
// the record is committed in PostgreSQL.
type liveWatch struct {
	mu      sync.Mutex
	batched map[int64]time.Time // fix time → its batch at the broker
	seqOf   map[int64]uint64    // fix time → seq
	v1      map[int64]bool      // fix time → its batch was in protocol version 1
	acked   []ackedRange        // in arrival order
}

type ackedRange struct {
	r  telemetry.SeqRange
	at time.Time
}

func watchLive(tb testing.TB, s *server, vehicle string) *liveWatch {
	tb.Helper()
	w := &liveWatch{batched: map[int64]time.Time{}, seqOf: map[int64]uint64{}, v1: map[int64]bool{}}
	c := connect(tb, paho.NewClientOptions().AddBroker(s.mqttURL).SetClientID("fgbench-obs-"+testenv.ID()).SetOrderMatters(false))
	tb.Cleanup(func() { c.Disconnect(100) })
	onBatch := func(_ paho.Client, m paho.Message) {
		at := time.Now()
		b, err := telemetry.DecodeBatchOn(vehicle, m.Payload())
		if err != nil {
			tb.Errorf("batch on %s: %v", m.Topic(), err)
			return
		}
		_, kind, _ := s.ns.Parse(m.Topic())
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range b.Positions {
			if _, ok := w.batched[p.UnixMs]; !ok {
				w.batched[p.UnixMs], w.seqOf[p.UnixMs], w.v1[p.UnixMs] = at, p.Seq, kind == telemetry.KindBatch
			}
		}
	}
	onAck := func(_ paho.Client, m paho.Message) {
		at := time.Now()
		var a telemetrypb.Ack
		if err := telemetry.Decode(m.Payload(), &a); err != nil {
			tb.Errorf("ack on %s: %v", m.Topic(), err)
			return
		}
		committed, _ := telemetry.AckRanges(&a)
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, r := range committed {
			w.acked = append(w.acked, ackedRange{r, at})
		}
	}
	for _, sub := range []struct {
		kind telemetry.Kind
		f    paho.MessageHandler
	}{{telemetry.KindBatch, onBatch}, {telemetry.KindBatchV2, onBatch}, {telemetry.KindAck, onAck}} {
		topic, err := s.ns.Topic(vehicle, sub.kind)
		if err != nil {
			tb.Fatal(err)
		}
		if tok := c.Subscribe(topic, 1, sub.f); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			tb.Fatalf("subscribe to %s: %v", topic, tok.Error())
		}
	}
	return w
}

// inV1 returns how many of the fixes (by time) first reached the broker in
// a batch of protocol version 1.
func (w *liveWatch) inV1(fixes []time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range fixes {
		if w.v1[f.UnixMilli()] {
			n++
		}
	}
	return n
}

// committed returns when the fix of time ms reached the broker and when
// the cloud acknowledged it as committed.
func (w *liveWatch) committed(ms int64) (batched, acked time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq, ok := w.seqOf[ms]
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	for _, a := range w.acked {
		if a.r.Contains(seq) {
			return w.batched[ms], a.at, true
		}
	}
	return w.batched[ms], time.Time{}, false
}

// latency is how long one fix took from the serial port to its commit in
// PostgreSQL, and the part of it spent before the agent's batch reached the
// broker.
type latency struct {
	total, agent time.Duration
}

// liveLatencies writes n fixes at rate to a pty the agent (with the extra
// YAML over the defaults) reads, as a receiver would, and returns for each
// how long after its epoch was written the cloud's Ack said it was
// committed.
func liveLatencies(tb testing.TB, bin string, s *server, extra string, rate, n int) []latency {
	tb.Helper()
	dir := tb.TempDir()
	port, err := transport.OpenPTY("", 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer port.Close()
	vehicle := "live-" + testenv.ID()
	w := watchLive(tb, s, vehicle)
	// The defaults, but for the local HTTP endpoint, whose fixed port
	// parallel runs would fight over.
	agent := startAgent(tb, bin, dir, s, vehicle, fmt.Sprintf("gps:\n  port: %s\nhttp:\n  listen: \"\"\n%s", port.Addr(), extra))
	d := bench.NewDrive(7)
	step := time.Second / time.Duration(rate)
	next := time.Now().Truncate(time.Second).Add(time.Second)
	write := func() (time.Time, time.Time) { // the fix's time, and when its epoch was written
		time.Sleep(time.Until(next))
		p := d.Next(next, step)
		p.Quality, p.SatsUsed, p.HDOPc = 1, 9, 90
		if _, err := port.Write(bench.Sentences(p)); err != nil {
			tb.Fatal(err)
		}
		fix := next
		next = next.Add(step)
		return fix, time.Now()
	}
	// Warm up: until a fix is committed (agent connected, cloud acking).
	testenv.Eventually(tb, time.Minute, "a first fix committed", func() error {
		fix, _ := write()
		time.Sleep(500 * time.Millisecond)
		_, _, ok := w.committed(fix.UnixMilli())
		return testenv.True(ok)
	}, agent, s.proc)

	fixes, written := make([]time.Time, n), make([]time.Time, n)
	for i := range n {
		fixes[i], written[i] = write()
	}
	out := make([]latency, n)
	testenv.Eventually(tb, time.Minute, "every fix committed", func() error {
		for i, f := range fixes {
			batched, acked, ok := w.committed(f.UnixMilli())
			if !ok {
				return fmt.Errorf("fix %d of %d (%s) not acknowledged yet", i+1, n, f.Format(time.RFC3339Nano))
			}
			out[i] = latency{total: acked.Sub(written[i]), agent: batched.Sub(written[i])}
		}
		return nil
	}, agent, s.proc)
	// The figures are for what the chain sends: once the warm-up's first
	// Ack has said the cloud reads version 2, the agent sends nothing else.
	if n := w.inV1(fixes); n > 0 {
		tb.Fatalf("%d of the %d fixes measured went in protocol version 1: the agent did not switch to version 2", n, len(fixes))
	}
	return out
}

// BenchmarkLiveLatency measures the time from a fix written to a serial
// port (a pty the real edge-agent binary reads) to the cloud's Ack saying
// it is committed in PostgreSQL (the real cloud-server binary publishes it
// after the commit), with the agent's defaults (but for its local HTTP
// endpoint, off): p50 and p99 (target p99 ≤ 250 ms) at 1 Hz for 100 s and at
// 10 Hz for 30 s (FLEETGATE_FULL=1: 10 and 5 minutes). Every fix measured
// goes in protocol version 2, as the agent sends once the cloud's first Ack
// says it reads it (the warm-up's). The agent's part ends
// when its batch reaches the broker; the cloud's is the rest (ingest,
// commit, Ack).
func BenchmarkLiveLatency(b *testing.B) {
	bin := testenv.Binaries(b)
	s := startServer(b, bin, b.TempDir())
	full := os.Getenv("FLEETGATE_FULL") == "1"
	for _, tt := range []struct {
		name       string
		rate       int
		span, full time.Duration
	}{
		{"1Hz", 1, 100 * time.Second, 10 * time.Minute},
		{"10Hz", 10, 30 * time.Second, 5 * time.Minute},
	} {
		b.Run(tt.name, func(b *testing.B) {
			span := tt.span
			if full {
				span = tt.full
			}
			var lat []latency
			for b.Loop() {
				lat = liveLatencies(b, bin, s, "", tt.rate, tt.rate*int(span/time.Second))
			}
			total, agent, cloud := make([]time.Duration, len(lat)), make([]time.Duration, len(lat)), make([]time.Duration, len(lat))
			for i, l := range lat {
				total[i], agent[i], cloud[i] = l.total, l.agent, l.total-l.agent
			}
			b.ReportMetric(percentile(total, 0.50), "ms-p50")
			b.ReportMetric(percentile(total, 0.99), "ms-p99")
			b.ReportMetric(percentile(total, 1), "ms-max")
			b.ReportMetric(percentile(agent, 0.99), "ms-p99-agent")
			b.ReportMetric(percentile(cloud, 0.99), "ms-p99-cloud")
			b.ReportMetric(float64(len(lat)), "fixes")

		})
	}
}

// percentile returns the p-quantile (0 to 1, nearest rank) of ds in ms.
func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(math.Ceil(p*float64(len(s))))-1].Microseconds()) / 1000
}
