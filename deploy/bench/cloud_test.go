package bench_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// cloudEnv is the cloud half of a benchmark, in process: its own database,
// Redis prefix and topic namespace on the machine's services, and an Ingester
// (the real one, as cloud-server wires it) running until the benchmark ends.
type cloudEnv struct {
	dbURL   string
	db      *postgres.DB
	sql     *pgxpool.Pool // the benchmark's own look behind the API
	mqttURL string
	ns      telemetry.Namespace
	in      *ingest.Pipeline
	sess    *mqtt.Session
}

// startCloud starts the cloud half; modify may change the Ingester (its store,
// its batching) before it runs.
func startCloud(tb testing.TB, modify ...func(*cloudEnv)) *cloudEnv {
	tb.Helper()
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	c := &cloudEnv{dbURL: testenv.Postgres(tb)}
	must(postgres.Migrate(ctx, c.dbURL))
	c.db = postgres.NewDB(c.dbURL)
	must(c.db.Open(ctx))
	tb.Cleanup(func() { c.db.Close() })
	sql, err := pgxpool.New(ctx, c.dbURL)
	must(err)
	c.sql = sql
	tb.Cleanup(sql.Close)
	live := redis.NewLiveState(testenv.Redis(tb))
	must(live.Open(ctx))
	tb.Cleanup(func() { live.Close() })
	var ns string
	c.mqttURL, ns = testenv.MQTT(tb)
	c.ns = telemetry.Namespace(ns)

	clientID := "fgbench-cloud-" + testenv.ID()
	c.sess = mqtt.NewSession(c.mqttURL, clientID)
	c.sess.Namespace = c.ns
	c.in = ingest.New(c.db, c.sess)
	c.in.Namespace, c.in.Live, c.in.Flow = c.ns, live, c.sess
	for _, m := range modify {
		m(c)
	}
	c.sess.Deliver = c.in.Receive
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.in.Run(rctx) }()
	must(c.sess.Open(rctx))
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("ingester: %v", err)
		}
		c.sess.Close()
		if err := mqtt.RemoveSession(ctx, c.mqttURL, clientID); err != nil {
			tb.Errorf("remove the ingester's session: %v", err)
		}
	})
	testenv.Eventually(tb, time.Minute, "ingester subscribed", func() error { return c.sess.Ping(ctx) })
	return c
}

// connect connects a paho client or fails the benchmark.
func connect(tb testing.TB, opts *paho.ClientOptions) paho.Client {
	tb.Helper()
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		tb.Fatalf("connect to the broker: %v", tok.Error())
	}
	return c
}

// count runs a count(*) query on the cloud's database.
func (c *cloudEnv) count(tb testing.TB, query string) int {
	tb.Helper()
	var n int
	if err := c.sql.QueryRow(context.Background(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// ackWatch is an MQTT client that receives every Ack of a namespace, as the
// agents would, and counts them.
type ackWatch struct {
	client   paho.Client
	acks     atomic.Int64
	rejected atomic.Int64 // acks that reject records
	last     atomic.Int64 // unix ns of the last ack
	slots    atomic.Pointer[chan struct{}]
}

func watchAcks(tb testing.TB, url string, ns telemetry.Namespace) *ackWatch {
	tb.Helper()
	w := &ackWatch{}
	w.client = connect(tb, paho.NewClientOptions().AddBroker(url).SetClientID("fgbench-acks-"+testenv.ID()).SetOrderMatters(false))
	tb.Cleanup(func() { w.client.Disconnect(100) })
	tok := w.client.Subscribe(ns.Filter(telemetry.KindAck), 1, func(_ paho.Client, m paho.Message) {
		var a telemetrypb.Ack
		if err := telemetry.Decode(m.Payload(), &a); err != nil {
			tb.Errorf("undecodable ack: %v", err)
			return
		}
		if len(a.GetRejected()) > 0 {
			w.rejected.Add(1)
		}
		w.last.Store(time.Now().UnixNano())
		w.acks.Add(1)
		if s := w.slots.Load(); s != nil {
			<-*s
		}
	})
	if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		tb.Fatalf("subscribe to the acks: %v", tok.Error())
	}
	return w
}

// message is one pre-encoded batch for a topic.
type message struct {
	topic   string
	payload []byte
}

// publishAll publishes msgs at QoS 1 from publishers clients, each taking an
// equal share in order, with at most window messages not yet acked in all
// (agents keep a few batches in flight; the broker's queue for the ingester
// is bounded), and returns the time from the first publish to the last Ack.
func publishAll(tb testing.TB, url string, w *ackWatch, msgs []message, publishers, window int) time.Duration {
	tb.Helper()
	slots := make(chan struct{}, window)
	start := w.acks.Load()
	w.slots.Store(&slots)
	defer w.slots.Store(nil)
	clients := make([]paho.Client, publishers)
	for i := range clients {
		clients[i] = connect(tb, paho.NewClientOptions().AddBroker(url).SetClientID("fgbench-pub-"+testenv.ID()))
		defer clients[i].Disconnect(100)
	}
	began := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(msgs); j += publishers {
				slots <- struct{}{}
				tok := c.Publish(msgs[j].topic, 1, false, msgs[j].payload)
				go func() {
					if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
						failed.Store(fmt.Errorf("publish %s: %v", msgs[j].topic, tok.Error()))
					}
				}()
			}
		}()
	}
	wg.Wait()
	testenv.Eventually(tb, 10*time.Minute, "every message acked", func() error {
		if n := w.acks.Load() - start; n < int64(len(msgs)) {
			return fmt.Errorf("%d of %d acked", n, len(msgs))
		}
		return nil
	})
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatalf("publish: %v", err)
	}
	return time.Unix(0, w.last.Load()).Sub(began)
}
