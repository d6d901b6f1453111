// Package mqtt is the cloud's ingest from the broker, with paho: a shared,
// persistent QoS 1 subscription to every vehicle's batches, manual MQTT
// acknowledgements, and the protocol's acks on down/ack, each sent only after
// the records it names are committed to PostgreSQL. It is the only package
// that imports paho.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Ingester consumes batches from the broker and stores them. Create it with
// NewIngester, adjust its fields, then call Run once.
//
// For each message, in this order: decode (undecodable: a dead letter),
// validate (refused records: a dead letter), commit to the IngestStore
// (retried with backoff while the store is unavailable, never skipped), update
// the LiveState (a failure is logged and counted, not retried: PostgreSQL is
// the truth), publish the Ack on the vehicle's down/ack topic and wait for the
// broker's PUBACK, and only then acknowledge the MQTT message. A message that
// is not acknowledged stays with the broker, which delivers it again after a
// reconnect; a replayed batch is acknowledged again without rewriting rows.
type Ingester struct {
	URL        string              // tcp://host:1883
	ClientID   string              // stable across restarts, so the broker keeps the session
	Namespace  telemetry.Namespace // topic root, telemetry.DefaultNamespace in production
	ShareGroup string              // shared subscription group; replicas in one group split the load

	Store cloud.IngestStore
	Live  cloud.LiveState // nil: no live state
	// StatusStore and CommandStore, when set, receive the agents' statuses
	// and command results (status.go).
	StatusStore  cloud.StatusService
	CommandStore cloud.CommandService
	Logger       *slog.Logger
	Now          func() time.Time

	// Workers is how many messages are processed at once, and QueueLen how
	// many received messages may wait for a worker. When both are full the
	// receiving paho goroutines block, the broker stops sending (its
	// in-flight window for this client is full of unacknowledged messages)
	// and the backlog stays in the broker: memory stays bounded.
	Workers  int
	QueueLen int

	RetryMin, RetryMax time.Duration // backoff between store or publish attempts
	PublishTimeout     time.Duration // wait for the broker's PUBACK of one ack
	ConnectTimeout     time.Duration // one connection attempt
	// DrainTimeout bounds how long messages in flight may take to finish
	// after Run's context is done; what is not finished then is left
	// unacknowledged (the broker redelivers it).
	DrainTimeout time.Duration
	// EphemeralSession says ClientID will never be used again (it holds the
	// process id). The broker would keep such a session forever and, with a
	// shared subscription, keep handing it a share of the messages, which
	// then wait there until the agents resend them; so Run removes the
	// session after a graceful shutdown. A stable ClientID is better.
	EphemeralSession bool

	mu         sync.Mutex // guards client
	client     paho.Client
	queue      chan paho.Message
	stopping   chan struct{}
	subscribed atomic.Bool
	stats      counters
}

// NewIngester returns an Ingester with the defaults: the default namespace,
// share group "ingest", 4 workers.
func NewIngester(url, clientID string, store cloud.IngestStore) *Ingester {
	return &Ingester{
		URL: url, ClientID: clientID, Namespace: telemetry.DefaultNamespace, ShareGroup: "ingest",
		Store: store, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Workers: 4, QueueLen: 4,
		RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second,
		PublishTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second, DrainTimeout: 10 * time.Second,
	}
}

// Stats counts what the Ingester did since it started.
type Stats struct {
	Received      int64 // messages taken from the broker
	Acked         int64 // messages acknowledged to the broker
	Inserted      int64 // records newly written
	DeadLetters   int64 // dead letters written
	Rejected      int64 // records refused by validation
	StoreRetries  int64 // failed commit attempts that were retried
	AckRetries    int64 // failed ack publish attempts that were retried
	LiveFailures  int64 // live state updates that failed
	Undecodable   int64 // payloads that did not decode
	AcksPublished int64 // protocol acks the broker confirmed
}

type counters struct {
	received, acked, inserted, deadLetters, rejected, storeRetries, ackRetries, liveFailures, undecodable, acksPublished atomic.Int64
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (in *Ingester) Stats() Stats {
	c := &in.stats
	return Stats{
		Received: c.received.Load(), Acked: c.acked.Load(), Inserted: c.inserted.Load(),
		DeadLetters: c.deadLetters.Load(), Rejected: c.rejected.Load(), StoreRetries: c.storeRetries.Load(),
		AckRetries: c.ackRetries.Load(), LiveFailures: c.liveFailures.Load(), Undecodable: c.undecodable.Load(),
		AcksPublished: c.acksPublished.Load(),
	}
}

// Ping returns nil while the Ingester is connected and subscribed, and an
// error with code EUNAVAILABLE otherwise.
func (in *Ingester) Ping(context.Context) error {
	in.mu.Lock()
	c := in.client
	in.mu.Unlock()
	if c == nil || !c.IsConnectionOpen() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker at %s", redactURL(in.URL))
	}
	if !in.subscribed.Load() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "connected to the broker at %s but not subscribed yet", redactURL(in.URL))
	}
	return nil
}

var _ cloud.Pinger = (*Ingester)(nil)

// Filter returns the shared subscription filter the Ingester subscribes to.
func (in *Ingester) Filter() string {
	return in.Namespace.SharedFilter(in.ShareGroup, telemetry.KindBatch)
}

// Run connects (retrying until it succeeds or ctx is done), subscribes, and
// processes messages until ctx is done. Then it stops taking messages, lets
// those in flight finish (at most DrainTimeout), disconnects and returns nil.
// The subscription is kept in the broker's session, so messages published
// while the server is down wait there. Run returns an error only for a
// configuration it cannot use.
func (in *Ingester) Run(ctx context.Context) error {
	if err := in.Namespace.Valid(); err != nil {
		return cloud.Errorf(cloud.EINVALID, "MQTT namespace: %w", err)
	}
	if in.ClientID == "" || in.ShareGroup == "" || in.Store == nil || in.Workers < 1 || in.QueueLen < 0 {
		return cloud.Errorf(cloud.EINVALID, "ingester needs a client id, a share group, a store and at least one worker")
	}
	in.queue = make(chan paho.Message, in.QueueLen)
	in.stopping = make(chan struct{})

	opts := paho.NewClientOptions().
		AddBroker(in.URL).
		SetClientID(in.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		// Each message's handler runs in its own goroutine and blocks until a
		// worker takes it: blocking paho's router instead would also block
		// the PUBACKs our own ack publishes wait for (a deadlock).
		SetOrderMatters(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(in.ConnectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(in.RetryMax).
		SetConnectRetry(true).
		SetConnectRetryInterval(in.RetryMax/5 + in.RetryMin).
		SetDefaultPublishHandler(in.receive). // a persistent session's queued messages may come before SUBACK
		SetOnConnectHandler(func(c paho.Client) { in.subscribe(ctx, c) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			in.subscribed.Store(false)
			in.Logger.Warn("MQTT connection lost", "url", redactURL(in.URL), "err", err)
		})
	client := paho.NewClient(opts)
	in.mu.Lock()
	in.client = client
	in.mu.Unlock()
	tok := client.Connect() // with ConnectRetry, completes once connected
	select {
	case <-tok.Done():
	case <-ctx.Done():
	}

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	for range in.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.work(workCtx)
		}()
	}
	<-ctx.Done()
	close(in.stopping)
	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(in.DrainTimeout):
		in.Logger.Warn("messages in flight did not finish in time; they stay with the broker", "drain_timeout", in.DrainTimeout)
		cancelWork()
		<-drained
	}
	client.Disconnect(250)
	if in.EphemeralSession {
		in.removeSession()
	}
	return nil
}

// removeSession connects once more with ClientID and a clean session, which
// makes the broker drop the persistent session and its subscription.
func (in *Ingester) removeSession() {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(in.URL).SetClientID(in.ClientID).
		SetCleanSession(true).SetConnectTimeout(in.ConnectTimeout))
	tok := c.Connect()
	if !tok.WaitTimeout(in.ConnectTimeout) || tok.Error() != nil {
		in.Logger.Warn("could not remove the MQTT session; the broker keeps it", "client_id", in.ClientID, "err", tok.Error())
		return
	}
	c.Disconnect(250)
}

// subscribe (re)subscribes after every connection, retrying until it works
// or the connection or ctx goes away.
func (in *Ingester) subscribe(ctx context.Context, c paho.Client) {
	filter := in.Filter()
	for attempt := 1; c.IsConnectionOpen() && ctx.Err() == nil; attempt++ {
		tok := c.Subscribe(filter, 1, in.receive)
		err := wait(ctx, tok, in.PublishTimeout)
		if err == nil {
			if st, ok := tok.(*paho.SubscribeToken); ok && st.Result()[filter] > 1 {
				err = fmt.Errorf("broker refused the subscription (return code %#x)", st.Result()[filter])
			}
		}
		if err == nil {
			in.subscribed.Store(true)
			in.Logger.Info("subscribed", "filter", filter, "client_id", in.ClientID)
			in.subscribeExtra(ctx, c)
			return
		}
		in.Logger.Warn("subscribe failed", "filter", filter, "attempt", attempt, "err", err)
		if !sleep(ctx, in.backoff(attempt)) {
			return
		}
	}
}

// receive is paho's message handler: it hands the message to a worker,
// waiting while all are busy, or leaves it unacknowledged when Run is
// stopping.
func (in *Ingester) receive(_ paho.Client, m paho.Message) {
	if in.route(m) {
		return
	}
	select {
	case in.queue <- m:
	case <-in.stopping:
	}
}

func (in *Ingester) work(ctx context.Context) {
	for {
		select {
		case <-in.stopping:
			return
		default:
		}
		select {
		case <-in.stopping:
			return
		case m := <-in.queue:
			in.stats.received.Add(1)
			if in.handle(ctx, m) {
				m.Ack()
				in.stats.acked.Add(1)
			}
		}
	}
}

// handle processes one message and reports whether it may be acknowledged:
// false only when ctx ended before the message was fully dealt with.
func (in *Ingester) handle(ctx context.Context, m paho.Message) bool {
	received := in.Now()
	topic, payload := m.Topic(), m.Payload()
	log := in.Logger.With("topic", topic)
	vehicle, kind, err := in.Namespace.Parse(topic)
	if err == nil && kind != telemetry.KindBatch {
		err = fmt.Errorf("kind %q is not %q", kind, telemetry.KindBatch)
	}
	if err != nil {
		log.Warn("message on an unexpected topic: dead letter", "err", err)
		return in.deadLetter(ctx, cloud.DeadLetter{Topic: topic, Payload: payload, Reason: "topic: " + err.Error(), ReceivedAt: received})
	}
	b, err := telemetry.DecodeBatch(payload)
	if err != nil {
		in.stats.undecodable.Add(1)
		log.Warn("undecodable batch: dead letter", "vehicle_id", vehicle, "bytes", len(payload), "err", err)
		return in.deadLetter(ctx, cloud.DeadLetter{Topic: topic, VehicleID: vehicle, Payload: payload, Reason: "decode: " + err.Error(), ReceivedAt: received})
	}
	v := cloud.ValidateBatch(b, vehicle, received)
	c := &cloud.Commit{ReceivedAt: received}
	if v.Accepted != nil {
		c.Batches = []*telemetry.Batch{v.Accepted}
	}
	if !v.OK() {
		in.stats.rejected.Add(int64(len(v.Rejected)))
		log.Warn("records refused: dead letter", "vehicle_id", vehicle, "stream_id", fmt.Sprintf("%016x", b.StreamID),
			"rejected", len(v.Rejected), "reason", v.Reason())
		c.DeadLetters = []cloud.DeadLetter{{Topic: topic, VehicleID: vehicle, StreamID: b.StreamID, Payload: payload, Reason: v.Reason(), ReceivedAt: received}}
	}
	var committed []telemetry.SeqRange
	if v.Accepted != nil {
		committed = v.Accepted.SeqRanges()
	}
	rejected, reason := v.RejectedRanges(), v.Reason()

	res, err := in.commit(ctx, c)
	if cloud.ErrorCode(err) == cloud.EINVALID {
		// The database refused data that passed validation: keep the whole
		// message as a dead letter rather than retry it forever.
		reason = "refused by the database: " + cloud.ErrorMessage(err)
		log.Error("database refused a validated batch: dead letter", "vehicle_id", vehicle, "err", err)
		committed, rejected = nil, b.SeqRanges()
		c = &cloud.Commit{ReceivedAt: received, DeadLetters: []cloud.DeadLetter{{
			Topic: topic, VehicleID: vehicle, StreamID: b.StreamID, Payload: payload, Reason: reason, ReceivedAt: received}}}
		res, err = in.commit(ctx, c)
	}
	if err != nil {
		return false // ctx is done; the broker keeps the message
	}
	in.stats.inserted.Add(res.Inserted)

	if in.Live != nil && v.Accepted != nil && len(v.Accepted.Positions) > 0 {
		if err := in.Live.UpdateLatest(ctx, []cloud.VehicleState{latestState(v.Accepted, received)}); err != nil {
			in.stats.liveFailures.Add(1)
			log.Warn("live state update failed; PostgreSQL has the data", "vehicle_id", vehicle, "err", err)
		}
	}
	if len(committed) == 0 && len(rejected) == 0 {
		return true // an empty batch: nothing to acknowledge to the agent
	}
	ack, err := telemetry.Encode(telemetry.NewAck(vehicle, b.StreamID, committed, rejected, reason), false)
	if err != nil {
		log.Error("encode ack", "err", err) // cannot happen for a valid Ack; the agent will resend
		return true
	}
	ackTopic, _ := in.Namespace.Topic(vehicle, telemetry.KindAck) // vehicle came from Parse: valid
	return in.publish(ctx, ackTopic, ack) == nil
}

// deadLetter commits one dead letter and reports whether it was committed.
func (in *Ingester) deadLetter(ctx context.Context, d cloud.DeadLetter) bool {
	_, err := in.commit(ctx, &cloud.Commit{DeadLetters: []cloud.DeadLetter{d}, ReceivedAt: d.ReceivedAt})
	return err == nil
}

// commit stores c, retrying with backoff until it succeeds, the store refuses
// the data (EINVALID, returned), or ctx is done (ctx's error).
func (in *Ingester) commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := in.Store.Commit(ctx, c)
		if err == nil {
			in.stats.deadLetters.Add(int64(len(c.DeadLetters)))
			return res, nil
		}
		if cloud.ErrorCode(err) == cloud.EINVALID || ctx.Err() != nil {
			return res, errors.Join(err, ctx.Err())
		}
		in.stats.storeRetries.Add(1)
		d := in.backoff(attempt)
		if attempt&(attempt-1) == 0 { // log attempts 1, 2, 4, 8, ...: an outage does not flood the log
			in.Logger.Warn("commit failed; not acknowledging, will retry", "attempt", attempt, "backoff", d, "err", err)
		}
		if !sleep(ctx, d) {
			return res, ctx.Err()
		}
	}
}

// publish sends an ack at QoS 1 and waits for the broker's PUBACK, retrying
// with backoff until it is confirmed or ctx is done.
func (in *Ingester) publish(ctx context.Context, topic string, payload []byte) error {
	for attempt := 1; ; attempt++ {
		err := wait(ctx, in.client.Publish(topic, 1, false, payload), in.PublishTimeout)
		if err == nil {
			in.stats.acksPublished.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.stats.ackRetries.Add(1)
		d := in.backoff(attempt)
		if attempt&(attempt-1) == 0 {
			in.Logger.Warn("ack publish failed; will retry", "topic", topic, "attempt", attempt, "backoff", d, "err", err)
		}
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// latestState returns the newest position of b as a live state.
func latestState(b *telemetry.Batch, received time.Time) cloud.VehicleState {
	best := &b.Positions[0]
	for i := range b.Positions {
		if b.Positions[i].UnixMs >= best.UnixMs {
			best = &b.Positions[i]
		}
	}
	p := cloud.Position{VehicleID: b.VehicleID, StreamID: b.StreamID, Seq: best.Seq,
		Time: time.UnixMilli(best.UnixMs).UTC(), Lat: best.Lat(), Lon: best.Lon()}
	if best.Has&telemetry.HasSpeed != 0 {
		s := float64(best.SpeedMmps) / 1000
		p.SpeedMPS = &s
	}
	if best.Has&telemetry.HasCourse != 0 {
		c := float64(best.CourseCdeg) / 100
		p.CourseDeg = &c
	}
	return cloud.VehicleState{VehicleID: b.VehicleID, Position: p, UpdatedAt: received}
}

// backoff returns the wait before retry attempt+1: exponential from RetryMin
// to RetryMax, with ±50 % jitter so that replicas do not retry in step.
func (in *Ingester) backoff(attempt int) time.Duration {
	d := in.RetryMin << min(attempt-1, 30)
	if d <= 0 || d > in.RetryMax {
		d = in.RetryMax
	}
	return d/2 + rand.N(d)
}

// wait waits for a paho token, ctx or timeout, whichever comes first.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %s", timeout)
	}
}

// sleep waits for d or ctx, and reports whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Reachable returns nil when the broker at url accepts an MQTT connection
// (made with a clean session and a throwaway client id, then closed), and an
// error with code EUNAVAILABLE otherwise.
func Reachable(ctx context.Context, url string) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("fleetgate-check-%08x", rand.Uint32())).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetConnectRetry(false).SetAutoReconnect(false))
	if err := wait(ctx, c.Connect(), 10*time.Second); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "connect: %w", err)
	}
	c.Disconnect(100)
	return nil
}
