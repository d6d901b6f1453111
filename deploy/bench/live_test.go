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

// sighting is one answer of the API: when it came and the vehicle's
// position time then.
type sighting struct {
	at, fix time.Time
}

// watcher polls GET /api/v1/vehicles/{id} every interval and keeps what it
// sees.
type watcher struct {
	mu   sync.Mutex
	seen []sighting
	stop chan struct{}
	done chan struct{}
}

func watchVehicle(s *server, vehicle string, interval time.Duration) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			var v struct {
				Position *struct {
					Time time.Time `json:"time"`
				} `json:"position"`
			}
			if err := s.api.Get(context.Background(), "/api/v1/vehicles/"+vehicle, &v); err == nil && v.Position != nil {
				w.mu.Lock()
				w.seen = append(w.seen, sighting{time.Now(), v.Position.Time})
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// latest returns the newest position time seen, zero before the first.
func (w *watcher) latest() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return time.Time{}
	}
	return w.seen[len(w.seen)-1].fix
}

// sightings stops the watcher and returns what it saw, in order.
func (w *watcher) sightings() []sighting {
	close(w.stop)
	<-w.done
	return w.seen
}

// The live latency workload: fixes at 5 Hz for 20 s (FLEETGATE_FULL=1:
// 5 minutes), the API polled every 10 ms.
const (
	liveRate = 5
	livePoll = 10 * time.Millisecond
)

// latency is how long one fix took from the serial port to the API, and the
// part of it spent before the agent's batch reached the broker.
type latency struct {
	total, agent time.Duration
}

// watchBatches subscribes to a vehicle's batches (beside the cloud's shared
// subscription, which gets its own copy) and returns when the batch holding
// each fix time (ms) reached the broker.
func watchBatches(tb testing.TB, s *server, vehicle string) func(ms int64) (time.Time, bool) {
	tb.Helper()
	var mu sync.Mutex
	arrived := map[int64]time.Time{}
	topic, err := s.ns.Topic(vehicle, telemetry.KindBatch)
	if err != nil {
		tb.Fatal(err)
	}
	c := connect(tb, paho.NewClientOptions().AddBroker(s.mqttURL).SetClientID("fgbench-obs-"+testenv.ID()).SetOrderMatters(false))
	tb.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		at := time.Now()
		b, err := telemetry.DecodeBatch(m.Payload())
		if err != nil {
			tb.Errorf("batch on %s: %v", m.Topic(), err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range b.Positions {
			if _, ok := arrived[p.UnixMs]; !ok {
				arrived[p.UnixMs] = at
			}
		}
	})
	if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		tb.Fatalf("subscribe to %s: %v", topic, tok.Error())
	}
	return func(ms int64) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		at, ok := arrived[ms]
		return at, ok
	}
}

// liveLatencies writes fixes to a pty the agent reads, as a receiver would,
// and returns for each how long after its write it was the vehicle's
// position in the API (or a newer one was).
func liveLatencies(tb testing.TB, bin string, s *server, extra string, n int) []latency {
	tb.Helper()
	dir := tb.TempDir()
	port, err := transport.OpenPTY("", 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer port.Close()
	vehicle := "live-" + testenv.ID()
	agent := startAgent(tb, bin, dir, s, vehicle, fmt.Sprintf("gps:\n  port: %s\n%s", port.Addr(), extra))
	d := bench.NewDrive(7)
	step := time.Second / liveRate
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
	// Warm up: until a first fix is visible (agent connected, cloud acking).
	ctx := context.Background()
	testenv.Eventually(tb, time.Minute, "a first fix in the API", func() error {
		write()
		var v map[string]any
		return s.api.Get(ctx, "/api/v1/vehicles/"+vehicle, &v)
	}, agent, s.proc)

	w := watchVehicle(s, vehicle, livePoll)
	published := watchBatches(tb, s, vehicle)
	fixes, written := make([]time.Time, n), make([]time.Time, n)
	for i := range n {
		fixes[i], written[i] = write()
	}
	testenv.Eventually(tb, time.Minute, "the last fix in the API", func() error {
		if at := w.latest(); at.Before(fixes[n-1]) {
			return fmt.Errorf("position at %s, last fix at %s", at, fixes[n-1])
		}
		return nil
	}, agent, s.proc)
	obs := w.sightings()
	out := make([]latency, 0, n)
	j := 0
	for i := range n {
		for j < len(obs) && obs[j].fix.Before(fixes[i]) {
			j++
		}
		if j == len(obs) {
			tb.Fatalf("fix %d (%s) never seen by the watcher", i, fixes[i])
		}
		at, ok := published(fixes[i].UnixMilli())
		if !ok {
			tb.Fatalf("fix %d (%s) never seen in a batch", i, fixes[i])
		}
		out = append(out, latency{total: obs[j].at.Sub(written[i]), agent: at.Sub(written[i])})
	}
	return out
}

// BenchmarkLiveLatency measures the time from a fix written to a serial
// port (a pty the real edge-agent binary reads) to that fix being the
// vehicle's position in the API of the real cloud-server binary
// (target p99 ≤ 250 ms): 5 fixes a second for 20 s, the API polled every
// 10 ms (which adds up to 10 ms). Once with the agent's default uplink
// settings, once with batches closed after 200 ms instead of 1 s. The
// agent's part is until its batch reaches the broker; the cloud's is the
// rest (ingest, commit, API).
func BenchmarkLiveLatency(b *testing.B) {
	bin := testenv.Binaries(b)
	s := startServer(b, bin, b.TempDir())
	n := 20 * liveRate
	if os.Getenv("FLEETGATE_FULL") == "1" {
		n = 300 * liveRate
	}
	for _, tt := range []struct{ name, extra string }{
		{"agent-defaults", ""},
		{"batch_max_age=200ms", "uplink:\n  batch_max_age: 200ms\n"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var lat []latency
			for b.Loop() {
				lat = liveLatencies(b, bin, s, tt.extra, n)
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
		})
	}
}

// percentile returns the p-quantile (0 to 1, nearest rank) of ds in ms.
func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(math.Ceil(p*float64(len(s))))-1].Microseconds()) / 1000
}
