// Package mqtt is the cloud's ingest from the broker, with paho: a shared,
// persistent QoS 1 subscription to every vehicle's batches, micro-batched
// commits to PostgreSQL with backpressure, manual MQTT acknowledgements, and
// the protocol's acks on down/ack, each sent only after the records it names
// are committed. It is the only package that imports paho.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
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
// Each message is decoded (undecodable: a dead letter) and validated (refused
// records: a dead letter) as it arrives, then waits in a queue of QueueLen
// messages. One batcher gathers queued messages into a micro-batch; Workers
// committers each write a micro-batch in one transaction (IngestStore.Commit:
// COPY into staging, INSERT … ON CONFLICT DO NOTHING), retried with backoff
// while the store is unavailable and never skipped. After the commit: the
// LiveState is updated in the background (a failure is logged and counted,
// never retried and never waited for: PostgreSQL is the truth); each
// message's Ack is published on its vehicle's down/ack topic, and only once
// the broker has confirmed that Ack (PUBACK) is that MQTT message
// acknowledged. A message that is not acknowledged stays with the broker,
// which delivers it again after a reconnect; a replayed batch is acknowledged
// again, with the same ranges, without rewriting rows.
//
// Micro-batch rules. A micro-batch closes at MaxBatchRows records or
// MaxBatchMessages messages, and waits there for a free committer. Before
// that it goes to a free committer as soon as either no message is queued
// (MaxBatchDelay 0, the default) or MaxBatchDelay has passed since its first
// message: while every committer is busy, a micro-batch keeps growing, so
// transactions get bigger exactly when the load is high.
//
// A poison message does not hold its micro-batch hostage: a message that does
// not decode or validate is a dead letter written in the same transaction as
// the others' records, and when the database refuses a micro-batch
// (EINVALID), it is split in halves and each half committed on its own, down
// to the message it refuses, which is then written as a dead letter alone.
//
// Backpressure. The process holds only messages it has not acknowledged, and
// decodes only those in the queue. When the committers are busy and the
// micro-batch is full, the batcher stops taking from the queue; when the
// queue is full, paho's message handlers block, each holding one undecoded
// message (paho runs each handler in its own goroutine, see Run); and the
// broker stops sending once its in-flight window for this client is full of
// unacknowledged messages (Mosquitto's max_inflight_messages, 20 by default,
// for MQTT 3.1.1 clients), so the backlog stays in the broker, in the
// session's queue (max_queued_messages; past it Mosquitto drops QoS 1
// messages, which the agents send again when no Ack comes). Mosquitto 2.0.11
// holds that window while nothing is acknowledged, but once PUBACKs flow it
// may release more of the session's queue than the window (measured: 8 in
// flight, one PUBACK, 15 delivered): so what the process holds is bounded by
// max_inflight_messages + max_queued_messages raw payloads, of which at most
// QueueLen are decoded, plus the micro-batches being gathered and committed.
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

	// Workers is how many micro-batches are committed at once.
	Workers int
	// QueueLen is how many decoded messages may wait for the batcher.
	QueueLen int
	// MaxBatchRows and MaxBatchMessages close a micro-batch (the message
	// that reaches MaxBatchRows is included whole).
	MaxBatchRows     int
	MaxBatchMessages int
	// MaxBatchDelay is how long a micro-batch keeps collecting while a
	// committer is free; 0 hands it over as soon as no message is queued.
	MaxBatchDelay time.Duration

	RetryMin, RetryMax time.Duration // backoff between store or publish attempts
	PublishTimeout     time.Duration // wait for the broker's PUBACK of one ack
	ConnectTimeout     time.Duration // one connection attempt
	LiveTimeout        time.Duration // bounds one LiveState update
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

	// OnCommit, when set, is called after every committed transaction with
	// what it held, from the committing goroutine (it must be quick); the
	// server feeds its metrics with it.
	OnCommit func(CommitInfo)

	mu         sync.Mutex // guards client
	client     paho.Client
	places     chan struct{} // one per message queued or being decoded for the queue
	queue      chan *item
	stopping   chan struct{}
	subscribed atomic.Bool
	stats      counters
	live       liveQueue
}

// CommitInfo describes one committed transaction.
type CommitInfo struct {
	Messages int           // messages whose records or dead letters it wrote
	Records  int           // records it wrote or found already stored
	Inserted int64         // records newly written
	Duration time.Duration // of the IngestStore.Commit call that succeeded
}

// NewIngester returns an Ingester with the defaults: the default namespace,
// share group "ingest", 2 workers, a queue of 64, micro-batches of up to
// 10,000 records or 1,000 messages handed over as soon as a worker is free.
func NewIngester(url, clientID string, store cloud.IngestStore) *Ingester {
	return &Ingester{
		URL: url, ClientID: clientID, Namespace: telemetry.DefaultNamespace, ShareGroup: "ingest",
		Store: store, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Workers: 2, QueueLen: 64, MaxBatchRows: 10000, MaxBatchMessages: 1000,
		RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second,
		PublishTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second, LiveTimeout: 2 * time.Second,
		DrainTimeout: 10 * time.Second,
	}
}

// Stats counts what the Ingester did since it started, and what it holds now.
type Stats struct {
	Received      int64 // messages taken from the broker
	Acked         int64 // messages acknowledged to the broker
	Records       int64 // records committed (newly written or already stored)
	Inserted      int64 // records newly written
	DeadLetters   int64 // dead letters written
	Rejected      int64 // records refused by validation or by the database
	Commits       int64 // transactions committed
	StoreRetries  int64 // failed commit attempts that were retried
	AckRetries    int64 // failed ack publish attempts that were retried
	LiveFailures  int64 // live state updates that failed
	Undecodable   int64 // payloads that did not decode
	AcksPublished int64 // protocol acks the broker confirmed

	QueueDepth int64 // messages queued for the batcher (or being decoded for it) now
	QueueMax   int64 // the most that ever were (never above QueueLen)
	Held       int64 // messages received and not yet acknowledged or given up, now
	HeldMax    int64 // the most ever held (bounded by the broker's in-flight window)
}

type counters struct {
	received, acked, records, inserted, deadLetters, rejected, commits, storeRetries, ackRetries,
	liveFailures, undecodable, acksPublished, queueMax, held, heldMax atomic.Int64
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (in *Ingester) Stats() Stats {
	c := &in.stats
	s := Stats{
		Received: c.received.Load(), Acked: c.acked.Load(), Records: c.records.Load(), Inserted: c.inserted.Load(),
		DeadLetters: c.deadLetters.Load(), Rejected: c.rejected.Load(), Commits: c.commits.Load(),
		StoreRetries: c.storeRetries.Load(), AckRetries: c.ackRetries.Load(), LiveFailures: c.liveFailures.Load(),
		Undecodable: c.undecodable.Load(), AcksPublished: c.acksPublished.Load(),
		QueueMax: c.queueMax.Load(), Held: c.held.Load(), HeldMax: c.heldMax.Load(),
	}
	in.mu.Lock()
	q := in.places
	in.mu.Unlock()
	if q != nil {
		s.QueueDepth = int64(len(q))
	}
	return s
}

// raise sets m to v if v is larger.
func raise(m *atomic.Int64, v int64) {
	for cur := m.Load(); v > cur && !m.CompareAndSwap(cur, v); cur = m.Load() {
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
// processes messages until ctx is done. Then it stops taking messages,
// commits and acknowledges those it holds (at most DrainTimeout),
// disconnects and returns nil. The subscription is kept in the broker's
// session, so messages published while the server is down wait there. Run
// returns an error only for a configuration it cannot use.
func (in *Ingester) Run(ctx context.Context) error {
	if err := in.Namespace.Valid(); err != nil {
		return cloud.Errorf(cloud.EINVALID, "MQTT namespace: %w", err)
	}
	if in.ClientID == "" || in.ShareGroup == "" || in.Store == nil || in.Workers < 1 || in.QueueLen < 1 ||
		in.MaxBatchRows < 1 || in.MaxBatchMessages < 1 {
		return cloud.Errorf(cloud.EINVALID, "ingester needs a client id, a share group, a store, and at least one worker, queue place, and row and message per micro-batch")
	}
	in.mu.Lock()
	in.places = make(chan struct{}, in.QueueLen)
	in.queue = make(chan *item, in.QueueLen)
	in.mu.Unlock()
	in.stopping = make(chan struct{})
	in.live.wake = make(chan struct{}, 1)

	opts := paho.NewClientOptions().
		AddBroker(in.URL).
		SetClientID(in.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		// Each message's handler runs in its own goroutine and blocks while
		// the queue is full: that is the backpressure. Blocking paho's
		// router instead (OrderMatters true) would stop paho reading the
		// connection, so the PUBACKs our own Ack publishes wait for would
		// never be read: a deadlock. The goroutines are bounded by what the
		// broker sends unacknowledged (see Ingester).
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

	// Work goes on after ctx is done, to finish what is held, until
	// DrainTimeout cancels workCtx.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	batches := make(chan []*item)
	var committers sync.WaitGroup
	committers.Add(in.Workers)
	for range in.Workers {
		go func() {
			defer committers.Done()
			for b := range batches {
				in.commitBatch(workCtx, b)
			}
		}()
	}
	go in.batch(workCtx, batches)
	liveDone := make(chan struct{})
	committed := make(chan struct{})
	go func() {
		defer close(liveDone)
		in.runLive(workCtx, committed)
	}()

	<-ctx.Done()
	close(in.stopping)
	drained := make(chan struct{})
	go func() {
		committers.Wait()
		close(committed)
		<-liveDone
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

// removeSession removes the persistent session of ClientID from the broker.
func (in *Ingester) removeSession() {
	ctx, cancel := context.WithTimeout(context.Background(), in.ConnectTimeout)
	defer cancel()
	if err := RemoveSession(ctx, in.URL, in.ClientID); err != nil {
		in.Logger.Warn("could not remove the MQTT session; the broker keeps it", "client_id", in.ClientID, "err", err)
	}
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

// item is one received message, decoded and validated, on its way through
// the queue, a micro-batch and a transaction to its acknowledgement.
type item struct {
	msg      paho.Message
	log      *slog.Logger
	vehicle  string           // from the topic; "" when the topic was wrong
	batch    *telemetry.Batch // decoded; nil when it did not decode
	received time.Time

	accepted  *telemetry.Batch  // records to store; nil when none
	dead      *cloud.DeadLetter // what was refused; nil when nothing
	committed []telemetry.SeqRange
	rejected  []telemetry.SeqRange
	reason    string
	protoAck  bool // an Ack goes to the agent (false when the ranges are unknown)
}

// records returns how many records of the message are to be stored.
func (it *item) records() int {
	if it.accepted == nil {
		return 0
	}
	return it.accepted.Len()
}

// receive is paho's message handler. It waits for a place in the queue (or
// leaves the message unacknowledged when Run is stopping), then decodes and
// validates the message and queues it for the batcher. Only queued messages
// are decoded: those waiting for a place hold just their payload.
func (in *Ingester) receive(_ paho.Client, m paho.Message) {
	if in.route(m) {
		return
	}
	in.stats.received.Add(1)
	raise(&in.stats.heldMax, in.stats.held.Add(1))
	select {
	case <-in.stopping:
		in.release(1)
		return
	default:
	}
	select {
	case in.places <- struct{}{}:
		raise(&in.stats.queueMax, int64(len(in.places)))
	case <-in.stopping:
		in.release(1)
		return
	}
	in.queue <- in.prepare(m) // never blocks: it has a place
}

// release forgets n messages that will not be acknowledged now: the broker
// keeps them and sends them again after a reconnect.
func (in *Ingester) release(n int) { in.stats.held.Add(-int64(n)) }

// prepare decodes and validates a message and says what to store and
// acknowledge for it.
func (in *Ingester) prepare(m paho.Message) *item {
	received := in.Now()
	topic, payload := m.Topic(), m.Payload()
	it := &item{msg: m, log: in.Logger.With("topic", topic), received: received}
	vehicle, kind, err := in.Namespace.Parse(topic)
	if err == nil && kind != telemetry.KindBatch {
		err = fmt.Errorf("kind %q is not %q", kind, telemetry.KindBatch)
	}
	if err != nil {
		it.log.Warn("message on an unexpected topic: dead letter", "err", err)
		it.dead = &cloud.DeadLetter{Topic: topic, Payload: payload, Reason: "topic: " + err.Error(), ReceivedAt: received}
		return it
	}
	it.vehicle = vehicle
	b, err := telemetry.DecodeBatch(payload)
	if err != nil {
		in.stats.undecodable.Add(1)
		it.log.Warn("undecodable batch: dead letter", "vehicle_id", vehicle, "bytes", len(payload), "err", err)
		it.dead = &cloud.DeadLetter{Topic: topic, VehicleID: vehicle, Payload: payload, Reason: "decode: " + err.Error(), ReceivedAt: received}
		return it
	}
	it.batch = b
	v := cloud.ValidateBatch(b, vehicle, received)
	it.accepted = v.Accepted
	if it.accepted != nil {
		it.committed = it.accepted.SeqRanges()
	}
	if !v.OK() {
		in.stats.rejected.Add(int64(len(v.Rejected)))
		it.log.Warn("records refused: dead letter", "vehicle_id", vehicle, "stream_id", fmt.Sprintf("%016x", b.StreamID),
			"rejected", len(v.Rejected), "reason", v.Reason())
		it.dead = &cloud.DeadLetter{Topic: topic, VehicleID: vehicle, StreamID: b.StreamID, Payload: payload, Reason: v.Reason(), ReceivedAt: received}
	}
	it.rejected, it.reason = v.RejectedRanges(), v.Reason()
	it.protoAck = len(it.committed) > 0 || len(it.rejected) > 0 // an empty batch needs no Ack
	return it
}

// refuse turns an item whose records the database refused into a dead letter
// of the whole message, all its records rejected.
func (in *Ingester) refuse(it *item, err error) {
	it.reason = "refused by the database: " + cloud.ErrorMessage(err)
	it.log.Error("database refused a validated batch: dead letter", "vehicle_id", it.vehicle, "err", err)
	in.stats.rejected.Add(int64(it.accepted.Len()))
	it.accepted, it.committed, it.rejected = nil, nil, it.batch.SeqRanges()
	it.dead = &cloud.DeadLetter{Topic: it.msg.Topic(), VehicleID: it.vehicle, StreamID: it.batch.StreamID,
		Payload: it.msg.Payload(), Reason: it.reason, ReceivedAt: it.received}
}

// batch gathers queued items into micro-batches and hands each to a
// committer on out (see Ingester for the rules). When Run is stopping it
// hands over what it holds and what is queued, then closes out.
func (in *Ingester) batch(ctx context.Context, out chan<- []*item) {
	defer close(out)
	var (
		cur   []*item
		rows  int
		timer = time.NewTimer(time.Hour)
		ready bool // MaxBatchDelay has passed since cur's first item
	)
	timer.Stop()
	defer timer.Stop()
	for {
		full := len(cur) >= in.MaxBatchMessages || rows >= in.MaxBatchRows
		var take <-chan *item
		if !full {
			take = in.queue
		}
		var give chan<- []*item
		if len(cur) > 0 && (full || ready || in.MaxBatchDelay <= 0 && len(in.places) == 0) {
			give = out
		}
		select {
		case it := <-take:
			<-in.places
			if len(cur) == 0 && in.MaxBatchDelay > 0 {
				timer.Reset(in.MaxBatchDelay)
			}
			cur = append(cur, it)
			rows += it.records()
		case give <- cur:
			cur, rows, ready = nil, 0, false
			timer.Stop()
		case <-timer.C:
			ready = true
		case <-in.stopping:
			for more := true; more; {
				select {
				case it := <-in.queue:
					<-in.places
					cur = append(cur, it)
				default:
					more = false
				}
			}
			if len(cur) == 0 {
				return
			}
			select {
			case out <- cur:
			case <-ctx.Done():
				in.release(len(cur))
			}
			return
		}
	}
}

// commitBatch commits a micro-batch, then acknowledges each of its messages.
// When ctx ends first, the messages not yet acknowledged are released.
func (in *Ingester) commitBatch(ctx context.Context, items []*item) {
	stored := in.store(ctx, items)
	in.release(len(items) - len(stored))
	in.noteLive(stored)
	in.acknowledge(ctx, stored)
}

// store commits items in one transaction, retrying while the store is
// unavailable. When the store refuses the data (EINVALID), it commits each
// half on its own, down to the single message refused, which becomes a dead
// letter. It returns the items whose data or dead letter is committed: all,
// unless ctx ended or the store refused even a bare dead letter.
func (in *Ingester) store(ctx context.Context, items []*item) []*item {
	c := &cloud.Commit{}
	records := 0
	for _, it := range items {
		if it.accepted != nil {
			c.Batches = append(c.Batches, it.accepted)
			records += it.accepted.Len()
		}
		if it.dead != nil {
			c.DeadLetters = append(c.DeadLetters, *it.dead)
		}
		if it.received.After(c.ReceivedAt) {
			c.ReceivedAt = it.received
		}
	}
	res, took, err := in.commit(ctx, c)
	if err == nil {
		in.stats.commits.Add(1)
		in.stats.records.Add(int64(records))
		in.stats.inserted.Add(res.Inserted)
		in.stats.deadLetters.Add(int64(len(c.DeadLetters)))
		if in.OnCommit != nil {
			in.OnCommit(CommitInfo{Messages: len(items), Records: records, Inserted: res.Inserted, Duration: took})
		}
		return items
	}
	if cloud.ErrorCode(err) != cloud.EINVALID || ctx.Err() != nil {
		return nil // ctx is done; the broker keeps the messages
	}
	if len(items) > 1 {
		in.Logger.Warn("database refused a micro-batch; committing its halves apart", "messages", len(items), "err", err)
		half := len(items) / 2
		return append(in.store(ctx, items[:half]), in.store(ctx, items[half:])...)
	}
	it := items[0]
	if it.accepted == nil {
		// Not even the dead letter went in: leave the message with the
		// broker rather than lose it.
		it.log.Error("database refused a dead letter; message left unacknowledged", "vehicle_id", it.vehicle, "err", err)
		return nil
	}
	in.refuse(it, err)
	return in.store(ctx, items)
}

// commit stores c, retrying with backoff until it succeeds, the store refuses
// the data (EINVALID, returned), or ctx is done (ctx's error). It returns how
// long the successful attempt took.
func (in *Ingester) commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, time.Duration, error) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := in.Store.Commit(ctx, c)
		if err == nil {
			return res, time.Since(start), nil
		}
		if cloud.ErrorCode(err) == cloud.EINVALID || ctx.Err() != nil {
			return res, 0, errors.Join(err, ctx.Err())
		}
		in.stats.storeRetries.Add(1)
		d := in.backoff(attempt)
		if attempt&(attempt-1) == 0 { // log attempts 1, 2, 4, 8, ...: an outage does not flood the log
			in.Logger.Warn("commit failed; not acknowledging, will retry", "attempt", attempt, "backoff", d,
				"messages", len(c.Batches)+len(c.DeadLetters), "err", err)
		}
		if !sleep(ctx, d) {
			return res, 0, ctx.Err()
		}
	}
}

// acknowledge publishes the Ack of every committed item that needs one, all
// at once, and acknowledges each MQTT message once its Ack is confirmed (or
// at once when it needs none). A failed publish is retried with backoff; when
// ctx ends, the messages not yet acknowledged are released.
func (in *Ingester) acknowledge(ctx context.Context, items []*item) {
	type pending struct {
		it      *item
		topic   string
		payload []byte
		tok     paho.Token
	}
	var acks []pending
	for _, it := range items {
		if !it.protoAck {
			in.ackMessage(it)
			continue
		}
		payload, err := telemetry.Encode(telemetry.NewAck(it.vehicle, it.batch.StreamID, it.committed, it.rejected, it.reason), false)
		if err != nil {
			it.log.Error("encode ack", "err", err) // cannot happen for a valid Ack; the agent will resend
			in.ackMessage(it)
			continue
		}
		topic, _ := in.Namespace.Topic(it.vehicle, telemetry.KindAck) // the vehicle came from Parse: valid
		acks = append(acks, pending{it, topic, payload, in.client.Publish(topic, 1, false, payload)})
	}
	for i, p := range acks {
		if in.publish(ctx, p.topic, p.payload, p.tok) != nil {
			in.release(len(acks) - i)
			return
		}
		in.ackMessage(p.it)
	}
}

func (in *Ingester) ackMessage(it *item) {
	it.msg.Ack()
	in.stats.acked.Add(1)
	in.stats.held.Add(-1)
}

// publish waits for the broker's PUBACK of a first attempt tok, then retries
// with backoff until one is confirmed or ctx is done.
func (in *Ingester) publish(ctx context.Context, topic string, payload []byte, tok paho.Token) error {
	for attempt := 1; ; attempt++ {
		err := wait(ctx, tok, in.PublishTimeout)
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
		tok = in.client.Publish(topic, 1, false, payload)
	}
}

// liveQueue holds the newest state of each vehicle committed but not yet
// written to the LiveState: a slow or dead Redis costs a map entry per
// vehicle, never ingest time.
type liveQueue struct {
	mu      sync.Mutex
	pending map[string]cloud.VehicleState
	wake    chan struct{} // capacity 1
}

// noteLive queues the newest fix of each committed item for the LiveState.
func (in *Ingester) noteLive(items []*item) {
	if in.Live == nil {
		return
	}
	q := &in.live
	q.mu.Lock()
	for _, it := range items {
		if it.accepted == nil || len(it.accepted.Positions) == 0 {
			continue
		}
		st := latestState(it.accepted, it.received)
		if q.pending == nil {
			q.pending = map[string]cloud.VehicleState{}
		}
		if cur, ok := q.pending[st.VehicleID]; !ok || st.Position.Time.After(cur.Position.Time) {
			q.pending[st.VehicleID] = st
		}
	}
	n := len(q.pending)
	q.mu.Unlock()
	if n > 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// runLive writes queued states to the LiveState until committed is closed
// (and once more then). A failure is counted and logged (at the start of an
// outage and then every doubling of failures), not retried: the next
// committed fix replaces the lost one.
func (in *Ingester) runLive(ctx context.Context, committed <-chan struct{}) {
	if in.Live == nil {
		return
	}
	q := &in.live
	failures := 0
	for last := false; !last; {
		select {
		case <-q.wake:
		case <-committed:
			last = true
		}
		q.mu.Lock()
		pending := q.pending
		q.pending = nil
		q.mu.Unlock()
		if len(pending) == 0 {
			continue
		}
		states := make([]cloud.VehicleState, 0, len(pending))
		for _, id := range slices.Sorted(maps.Keys(pending)) {
			states = append(states, pending[id])
		}
		uctx, cancel := context.WithTimeout(ctx, in.LiveTimeout)
		err := in.Live.UpdateLatest(uctx, states)
		cancel()
		if err == nil {
			if failures > 0 {
				in.Logger.Info("live state updates work again", "failures", failures)
			}
			failures = 0
			continue
		}
		in.stats.liveFailures.Add(1)
		failures++
		if failures&(failures-1) == 0 {
			in.Logger.Warn("live state update failed; PostgreSQL has the data", "vehicles", len(states), "failures", failures, "err", err)
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

// RemoveSession makes the broker at url drop the persistent session of
// clientID, with its subscriptions and queued messages, by connecting once
// with that id and a clean session. Use it to retire a replica for good. It
// returns an error with code EUNAVAILABLE when the broker cannot be reached.
func RemoveSession(ctx context.Context, url, clientID string) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetCleanSession(true).SetConnectTimeout(5 * time.Second).SetConnectRetry(false).SetAutoReconnect(false))
	if err := wait(ctx, c.Connect(), 10*time.Second); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "connect as %s: %w", clientID, err)
	}
	c.Disconnect(100)
	return nil
}
