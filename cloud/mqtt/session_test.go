package mqtt_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

const deadline = 30 * time.Second

// fixture is one test's private slice of the real services: a database, a
// Redis prefix, a topic namespace, and an "agent" client that publishes
// batches and collects acks.
type fixture struct {
	t        *testing.T
	mqttURL  string
	ns       telemetry.Namespace
	dbURL    string
	db       *postgres.DB
	sql      *pgx.Conn
	live     *redis.LiveState
	agent    paho.Client
	acks     chan *telemetrypb.Ack
	clientID string
}

func newFixture(t *testing.T) *fixture {
	return newFixtureVia(t, "")
}

// newFixtureVia opens the database through addr (host:port) instead of
// directly when addr is not empty.
func newFixtureVia(t *testing.T, addr string) *fixture {
	return newFixtureOn(t, addr, "")
}

// newFixtureOn is newFixtureVia on the broker at mqttURL, when not empty,
// instead of the shared one.
func newFixtureOn(t *testing.T, addr, mqttURL string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, acks: make(chan *telemetrypb.Ack, 1000), clientID: "fgtest-cloud-" + testenv.ID()}
	var ns string
	f.mqttURL, ns = testenv.MQTT(t)
	if mqttURL != "" {
		f.mqttURL = mqttURL
	}
	f.ns = telemetry.Namespace(ns)
	f.dbURL = testenv.Postgres(t)
	if err := postgres.Migrate(ctx, f.dbURL); err != nil {
		t.Fatal(err)
	}
	dbURL := f.dbURL
	if addr != "" {
		dbURL = strings.Replace(dbURL, "127.0.0.1:5432", addr, 1)
	}
	f.db = postgres.NewDB(dbURL)
	if err := f.db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	var err error
	if f.sql, err = pgx.Connect(ctx, f.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sql.Close(context.Background()) })
	redisURL, prefix := testenv.Redis(t)
	f.live = redis.NewLiveState(redisURL, prefix)
	if err := f.live.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.live.Close() })

	f.agent = paho.NewClient(paho.NewClientOptions().AddBroker(f.mqttURL).SetClientID("fgtest-agent-" + testenv.ID()).SetCleanSession(true))
	if err := waitToken(f.agent.Connect()); err != nil {
		t.Fatalf("agent connect: %v", err)
	}
	t.Cleanup(func() { f.agent.Disconnect(100) })
	err = waitToken(f.agent.Subscribe(f.ns.Filter(telemetry.KindAck), 1, func(_ paho.Client, m paho.Message) {
		var a telemetrypb.Ack
		if err := telemetry.Decode(m.Payload(), &a); err != nil {
			t.Errorf("undecodable ack on %s: %v", m.Topic(), err)
			return
		}
		if want, _ := f.ns.Topic(a.GetVehicleId(), telemetry.KindAck); m.Topic() != want {
			t.Errorf("ack for %s on topic %s", a.GetVehicleId(), m.Topic())
		}
		f.acks <- &a
	}))
	if err != nil {
		t.Fatalf("agent subscribe: %v", err)
	}
	return f
}

func waitToken(tok paho.Token) error {
	if !tok.WaitTimeout(deadline) {
		return fmt.Errorf("no answer from the broker in %s", deadline)
	}
	return tok.Error()
}

// ingester is the pipeline and the session together, as cloud-server
// wires them.
type ingester struct {
	*ingest.Pipeline
	sess *mqtt.Session
}

// start runs a pipeline and its session until the test ends, then clears the
// session's persistent state from the broker.
func (f *fixture) start(modify ...func(*ingester)) (*ingester, func()) {
	t := f.t
	t.Helper()
	sess := mqtt.NewSession(f.mqttURL, f.clientID)
	sess.Namespace = f.ns
	sess.RetryMin, sess.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	pl := ingest.New(f.db, sess)
	pl.Namespace, pl.Live, pl.Flow = f.ns, f.live, sess
	pl.RetryMin, pl.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	in := &ingester{pl, sess}
	for _, m := range modify {
		m(in)
	}
	sess.Deliver = pl.Receive
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	if err := sess.Open(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			sess.Close()
		})
	}
	t.Cleanup(func() {
		stop()
		clearSession(t, f.mqttURL, f.clientID)
	})
	poll(t, "session subscribed", sess.Subscribed)
	return in, stop
}

// clearSession removes a persistent session from the broker.
func clearSession(t *testing.T, url, clientID string) {
	if err := mqtt.RemoveSession(context.Background(), url, clientID); err != nil {
		t.Errorf("clear session %s: %v", clientID, err)
	}
}

func poll(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testenv.Eventually(t, deadline, what, func() error { return testenv.True(ok()) })
}

func (f *fixture) publish(vehicle string, payload []byte) {
	f.t.Helper()
	topic, err := f.ns.Topic(vehicle, telemetry.KindBatch)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := waitToken(f.agent.Publish(topic, 1, false, payload)); err != nil {
		f.t.Fatalf("publish: %v", err)
	}
}

func (f *fixture) publishBatch(topicVehicle string, b *telemetry.Batch) {
	f.t.Helper()
	p, err := telemetry.EncodeBatch(b, true)
	if err != nil {
		f.t.Fatal(err)
	}
	f.publish(topicVehicle, p)
}

func (f *fixture) ack() *telemetrypb.Ack {
	f.t.Helper()
	select {
	case a := <-f.acks:
		return a
	case <-time.After(deadline):
		f.t.Fatalf("no ack within %s", deadline)
		return nil
	}
}

func (f *fixture) noAckYet() {
	f.t.Helper()
	select {
	case a := <-f.acks:
		f.t.Fatalf("unexpected ack %v", a)
	default:
	}
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.sql.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func batch(vehicle string, stream uint64, first uint64, n int) *telemetry.Batch {
	b := &telemetry.Batch{VehicleID: vehicle, StreamID: stream}
	// Later seqs are later in time, even within one second.
	at := time.Now().Add(-time.Minute).Truncate(time.Second).Add(time.Duration(first) * time.Millisecond)
	for i := range n {
		b.Positions = append(b.Positions, telemetry.Position{
			Seq: first + uint64(2*i), UnixMs: at.Add(time.Duration(i) * time.Second).UnixMilli(),
			LatE7: 437384166 + int32(i), LonE7: 74246333, Has: telemetry.HasSpeed, SpeedMmps: 13891,
		})
		b.OBD = append(b.OBD, telemetry.OBDSample{Seq: first + uint64(2*i+1), UnixMs: at.Add(time.Duration(i)*time.Second).UnixMilli() + 412, PID: 0x010C, Value: 1303.75})
	}
	return b
}

func ranges(rs []*telemetrypb.SeqRange) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%d-%d", r.GetFirst(), r.GetLast()))
	}
	return strings.Join(s, ",")
}

func TestAckOnlyAfterCommitAndReplay(t *testing.T) {
	f := newFixture(t)
	in, _ := f.start()
	b := batch("veh-001", 0xfeed, 1, 30)

	for round := 1; round <= 2; round++ {
		f.publishBatch("veh-001", b)
		a := f.ack()
		// The ack has arrived: every record it names must already be committed.
		if got := f.count("SELECT count(*) FROM positions WHERE vehicle_id = 'veh-001'"); got != 30 {
			t.Errorf("round %d: %d positions in PostgreSQL when the ack arrived, want 30", round, got)
		}
		if got := f.count("SELECT count(*) FROM obd_samples WHERE vehicle_id = 'veh-001'"); got != 30 {
			t.Errorf("round %d: %d OBD samples in PostgreSQL when the ack arrived, want 30", round, got)
		}
		if a.GetVehicleId() != "veh-001" || a.GetStreamId() != 0xfeed || ranges(a.GetCommitted()) != "1-60" || len(a.GetRejected()) != 0 {
			t.Errorf("round %d: ack %v", round, a)
		}
	}
	poll(t, "both messages acknowledged to the broker", func() bool { return in.Stats().Acked == 2 })
	if s := in.Stats(); s.Inserted != 60 || s.Rows[ingest.KindDeadLetter] != 0 {
		t.Errorf("stats %+v: want 60 inserted (the replay inserts nothing), no dead letters", s)
	}
	// The live state is written in the background, after the commit.
	poll(t, "the newest fix, seq 59, in the live state", func() bool {
		st, err := f.live.Latest(context.Background(), "veh-001")
		return err == nil && st.Position.Seq == 59
	})
	if f.count("SELECT count(*) FROM dead_letters") != 0 {
		t.Error("dead letters written for a good batch")
	}
}

// TestBatchV2ReachesThePipeline: a batch in protocol version 2, published
// on the vehicle's own topic as an agent does once the cloud says it reads
// it, goes through the session's shared subscription to the pipeline: it is
// committed under the topic's vehicle and acknowledged with Ack.version 2,
// as is a version 1 batch. The v2 filter takes nothing else: a status, on
// a deeper topic, is received once.
func TestBatchV2ReachesThePipeline(t *testing.T) {
	f := newFixture(t)
	in, _ := f.start()
	b := batch("", 0xbeef, 1, 5) // version 2 carries no vehicle id
	p, err := telemetry.EncodeBatchV2(b, true)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := f.ns.Topic("veh-v2", telemetry.KindBatchV2)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitToken(f.agent.Publish(topic, 1, false, p)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	a := f.ack()
	if a.GetVehicleId() != "veh-v2" || a.GetStreamId() != 0xbeef || ranges(a.GetCommitted()) != "1-10" || len(a.GetRejected()) != 0 || a.GetVersion() != 2 {
		t.Errorf("ack of the version 2 batch: %v", a)
	}
	if n := f.count("SELECT count(*) FROM positions WHERE vehicle_id = 'veh-v2' AND stream_id = $1", int64(0xbeef)); n != 5 {
		t.Errorf("%d positions of veh-v2 stored, want 5", n)
	}
	if n := f.count("SELECT count(*) FROM obd_samples WHERE vehicle_id = 'veh-v2'"); n != 5 {
		t.Errorf("%d OBD samples of veh-v2 stored, want 5", n)
	}

	f.publishBatch("veh-v1", batch("veh-v1", 1, 1, 1))
	if a := f.ack(); a.GetVehicleId() != "veh-v1" || a.GetVersion() != 2 {
		t.Errorf("ack of the version 1 batch: %v", a)
	}
	status, err := telemetry.Encode(&telemetrypb.Status{VehicleId: "veh-v2", Online: true, UnixMs: time.Now().UnixMilli()}, false)
	if err != nil {
		t.Fatal(err)
	}
	statusTopic, _ := f.ns.Topic("veh-v2", telemetry.KindStatus)
	if err := waitToken(f.agent.Publish(statusTopic, 1, false, status)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	poll(t, "all three messages acknowledged to the broker", func() bool { return in.Stats().Acked == 3 })
	if s := in.Stats(); s.Received != 3 || s.ReceivedByVersion[ingest.Version2] != 1 || s.ReceivedByVersion[ingest.Version1] != 2 || s.Rows[ingest.KindDeadLetter] != 0 {
		t.Errorf("stats %+v: want 3 received (1 in version 2), no dead letter", s)
	}
}

func TestBadInputIsDeadLettered(t *testing.T) {
	f := newFixture(t)
	in, _ := f.start()

	// Garbage: a dead letter with the raw payload, MQTT-acked, no protocol ack.
	garbage := []byte{0x10, 0xff, 0xff, 0xff, 0x01}
	f.publish("veh-g", garbage)
	poll(t, "garbage acknowledged to the broker", func() bool { return in.Stats().Acked == 1 })
	var payload []byte
	var reason string
	if err := f.sql.QueryRow(context.Background(), "SELECT payload, reason FROM dead_letters WHERE vehicle_id = 'veh-g'").Scan(&payload, &reason); err != nil {
		t.Fatalf("dead letter of the garbage: %v", err)
	}
	if string(payload) != string(garbage) || !strings.HasPrefix(reason, "decode: ") {
		t.Errorf("dead letter payload %x reason %q", payload, reason)
	}

	// A batch claiming another vehicle: every record rejected, acked to the
	// topic's vehicle, nothing stored but the dead letter.
	f.publishBatch("veh-a", batch("veh-b", 7, 1, 3))
	a := f.ack()
	if a.GetVehicleId() != "veh-a" || len(a.GetCommitted()) != 0 || ranges(a.GetRejected()) != "1-6" || !strings.Contains(a.GetReason(), `"veh-b"`) {
		t.Errorf("ack for a foreign batch: %v", a)
	}
	if n := f.count("SELECT count(*) FROM positions"); n != 0 {
		t.Errorf("%d positions stored from a foreign batch", n)
	}
	if n := f.count("SELECT count(*) FROM dead_letters WHERE vehicle_id = 'veh-a' AND stream_id = 7 AND reason LIKE '%differs%'"); n != 1 {
		t.Errorf("%d dead letters for the foreign batch", n)
	}

	// One record out of range: the rest committed, that one rejected.
	b := batch("veh-c", 8, 1, 3)
	b.Positions[1].LatE7 = 950000000 // seq 3
	f.publishBatch("veh-c", b)
	a = f.ack()
	if ranges(a.GetCommitted()) != "1-2,4-6" || ranges(a.GetRejected()) != "3-3" || !strings.Contains(a.GetReason(), "latitude") {
		t.Errorf("ack for a batch with one bad record: %v", a)
	}
	if n := f.count("SELECT count(*) FROM positions WHERE vehicle_id = 'veh-c'"); n != 2 {
		t.Errorf("%d positions of veh-c stored, want 2", n)
	}
	if n := f.count("SELECT count(*) FROM dead_letters WHERE vehicle_id = 'veh-c'"); n != 1 {
		t.Errorf("%d dead letters for veh-c", n)
	}
	if s := in.Stats(); s.DeadLetters[ingest.ReasonDecode] != 1 || s.Rejected != 7 || s.Rows[ingest.KindDeadLetter] != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestDatabaseOutageDelaysAck(t *testing.T) {
	p := testenv.StartProxy(t, "127.0.0.1:5432", testenv.ProxyOptions{})
	f := newFixtureVia(t, p.Addr())
	in, _ := f.start()

	p.SetUp(false)
	f.publishBatch("veh-o", batch("veh-o", 3, 1, 5))
	poll(t, "commit retried while PostgreSQL is unreachable", func() bool { return in.Stats().StoreRetries >= 3 })
	f.noAckYet()
	if s := in.Stats(); s.Acked != 0 || s.AcksPublished != 0 {
		t.Fatalf("acknowledged while PostgreSQL was down: %+v", s)
	}
	if n := f.count("SELECT count(*) FROM positions"); n != 0 {
		t.Fatalf("%d rows stored through a closed proxy", n)
	}

	p.SetUp(true)
	a := f.ack()
	if ranges(a.GetCommitted()) != "1-10" {
		t.Errorf("ack after the outage: %v", a)
	}
	if n := f.count("SELECT count(*) FROM positions WHERE vehicle_id = 'veh-o'"); n != 5 {
		t.Errorf("%d positions after the outage, want 5", n)
	}
}

func TestRedisFailureDoesNotBlockAck(t *testing.T) {
	f := newFixture(t)
	f.live.Close() // every update now fails
	in, _ := f.start()
	f.publishBatch("veh-r", batch("veh-r", 4, 1, 2))
	a := f.ack()
	if ranges(a.GetCommitted()) != "1-4" {
		t.Errorf("ack %v", a)
	}
	poll(t, "the live state failure counted", func() bool { return in.Stats().LiveFailures == 1 })
}

func TestMessagesWaitInTheBrokerWhileDown(t *testing.T) {
	f := newFixture(t)
	_, stop := f.start()
	stop() // the server goes down; its session and subscription stay in the broker
	f.publishBatch("veh-w", batch("veh-w", 5, 1, 4))
	in, _ := f.start() // same client id: the broker hands over what it kept
	a := f.ack()
	if ranges(a.GetCommitted()) != "1-8" {
		t.Errorf("ack %v", a)
	}
	if n := f.count("SELECT count(*) FROM positions WHERE vehicle_id = 'veh-w'"); n != 4 {
		t.Errorf("%d positions, want 4", n)
	}
	if in.Stats().Received != 1 {
		t.Errorf("stats %+v", in.Stats())
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	s := mqtt.NewSession("tcp://127.0.0.1:1", "id")
	if err := s.Open(context.Background()); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("Open without Deliver: %v", err)
	}
	s = mqtt.NewSession("tcp://127.0.0.1:1", "id")
	s.Namespace, s.Deliver = "bad/+/ns", func(context.Context, ingest.Message) error { return nil }
	if err := s.Open(context.Background()); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("Open with a bad namespace: %v", err)
	}
}

// The COMMIT query pgx sends (simple protocol) and the server's answer,
// where TestDatabaseKilledMidBatch cuts PostgreSQL off.
var (
	commitQuery = []byte("commit\x00")
	commitDone  = []byte("COMMIT\x00")
)

func TestEphemeralSessionIsRemoved(t *testing.T) {
	f := newFixture(t)
	_, stop := f.start(func(in *ingester) { in.sess.EphemeralSession = true })
	stop()
	// A new process with a new id: had the old session stayed, the broker
	// would hand it every other message of the shared subscription.
	f.clientID = "fgtest-cloud-next-" + testenv.ID()
	f.start()
	for i := range 6 {
		f.publishBatch("veh-e", batch("veh-e", 5, uint64(1+10*i), 1))
	}
	for range 6 {
		f.ack()
	}
}
