package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// publishStatus publishes vehicle's status (retained, as agents do).
func (f *fixture) publishStatus(vehicle string, online bool, at time.Time) {
	f.t.Helper()
	p, err := telemetry.Encode(&telemetrypb.Status{VehicleId: vehicle, Online: online, UnixMs: at.UnixMilli(), OutboxDepth: 1}, false)
	if err != nil {
		f.t.Fatal(err)
	}
	topic, _ := f.ns.Topic(vehicle, telemetry.KindStatus)
	if err := waitToken(f.agent.Publish(topic, 1, true, p)); err != nil {
		f.t.Fatalf("publish status: %v", err)
	}
}

// TestNoStallAfterADatabaseOutage is the ingest stall after a PostgreSQL
// outage, as it was
// reproduced: one replica with PostgreSQL behind a proxy, the proxy down, 30
// statuses published (more than the broker's in-flight window of 20), the
// proxy back after 8 s, then 5 batches. Statuses used to be given up on after
// five quick retries and left unacknowledged, each holding a slot of the
// window for good: the batches never came. Now every message is retried
// until committed: the statuses are stored, the batches acked.
func TestNoStallAfterADatabaseOutage(t *testing.T) {
	p := testenv.StartProxy(t, "127.0.0.1:5432", testenv.ProxyOptions{})
	f := newFixtureOn(t, p.Addr(), privateBroker(t, 20))
	in, _ := f.start()
	p.SetUp(false)
	at := time.Now().Truncate(time.Second)
	for i := range 30 {
		f.publishStatus(fmt.Sprintf("veh-s%02d", i), true, at)
	}
	time.Sleep(8 * time.Second)
	p.SetUp(true)
	poll(t, "the session subscribed after the outage", in.sess.Subscribed)
	for i := range 5 {
		id := fmt.Sprintf("veh-b%d", i)
		f.publishBatch(id, batch(id, 21, 1, 2))
	}
	f.acksFor(5)
	poll(t, "the 30 statuses stored", func() bool { return f.count("SELECT count(*) FROM device_status") == 30 })
	poll(t, "every message acknowledged", func() bool { s := in.Stats(); return s.Held == 0 && s.Acked >= 35 })
}

// TestSteppedBackReplicaLeavesTheWorkToTheOther: two replicas in one share
// group; the first loses its database. Past the grace it unsubscribes and
// says why on Ping, and every batch published meanwhile is committed by the
// second; once its database is back it subscribes again by itself.
func TestSteppedBackReplicaLeavesTheWorkToTheOther(t *testing.T) {
	p := testenv.StartProxy(t, "127.0.0.1:5432", testenv.ProxyOptions{})
	sick := newFixtureVia(t, p.Addr())
	a, _ := sick.start(func(in *ingester) { in.StepBackAfter = time.Second })
	// The healthy replica: same broker, namespace and database, its own id.
	healthy := *sick
	healthy.clientID = "fgtest-cloud-b-" + testenv.ID()
	healthy.db = openDB(t, sick.dbURL)
	b, _ := healthy.start()

	p.SetUp(false)
	// Batches until the sick replica has stepped back: those it took wait
	// for its database (their agents would resend them meanwhile).
	poll(t, "the sick replica stepped back", func() bool {
		sick.publishBatch("veh-x", batch("veh-x", 1, 1, 1))
		return a.Ping(context.Background()) != nil && !a.sess.Subscribed()
	})
	before := b.Stats().Received
	for i := range 20 {
		id := fmt.Sprintf("veh-t%d", i)
		sick.publishBatch(id, batch(id, 22, 1, 1))
	}
	poll(t, "the healthy replica took all 20", func() bool { return b.Stats().Received-before >= 20 })
	for i := range 20 {
		id := fmt.Sprintf("veh-t%d", i)
		poll(t, id+" stored", func() bool {
			return sick.count("SELECT count(*) FROM positions WHERE vehicle_id = $1", id) == 1
		})
	}
	if s := a.Stats(); !s.SteppedBack || s.StepBacks != 1 {
		t.Errorf("sick replica: %+v", s)
	}
	p.SetUp(true)
	poll(t, "the sick replica back and subscribed", func() bool { return a.Ping(context.Background()) == nil && a.sess.Subscribed() })
	poll(t, "the sick replica acknowledged what it held", func() bool { return a.Stats().Held == 0 })
}

// TestPausedSessionGetsNoNewMessages: Pause unsubscribes from the batches
// (a plain subscriber of the batches still sees them) but not from the
// command results; Resume subscribes again.
func TestPausedSessionGetsNoNewMessages(t *testing.T) {
	f := newFixture(t)
	in, _ := f.start()
	in.sess.Pause()
	poll(t, "unsubscribed", func() bool { return !in.sess.Subscribed() })
	seen := make(chan string, 10)
	watcher := paho.NewClient(paho.NewClientOptions().AddBroker(f.mqttURL).SetClientID("fgtest-watch-" + testenv.ID()))
	if err := waitToken(watcher.Connect()); err != nil {
		t.Fatal(err)
	}
	defer watcher.Disconnect(50)
	if err := waitToken(watcher.Subscribe(f.ns.Filter(telemetry.KindBatch), 1, func(_ paho.Client, m paho.Message) { seen <- m.Topic() })); err != nil {
		t.Fatal(err)
	}
	f.publishBatch("veh-p", batch("veh-p", 1, 1, 1))
	<-seen
	time.Sleep(500 * time.Millisecond)
	if n := in.Stats().Received; n != 0 {
		t.Fatalf("a paused session received %d messages", n)
	}
	// Command results stay subscribed: agents do not resend them.
	p, err := telemetry.Encode(&telemetrypb.CommandResult{Id: "c1", Ok: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := f.ns.Topic("veh-p", telemetry.KindCmdResult)
	if err := waitToken(f.agent.Publish(topic, 1, false, p)); err != nil {
		t.Fatal(err)
	}
	poll(t, "the command result taken while paused", func() bool { return in.Stats().Acked == 1 })
	in.sess.Resume()
	poll(t, "subscribed again", in.sess.Subscribed)
	f.publishBatch("veh-p", batch("veh-p", 1, 3, 1))
	f.ack()
	if s := in.Stats(); s.Received != 2 {
		t.Errorf("stats %+v", s)
	}
}

// openDB opens another pool on the database at url, closed when the test ends.
func openDB(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db := postgres.NewDB(url)
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
