// Package mqtt is the agent's uplink over MQTT 3.1.1 with
// github.com/eclipse/paho.mqtt.golang (which no other package imports). It
// reads unsent records from the edge.Outbox, publishes them as
// telemetry.Batch messages at QoS 1, and deletes them from the outbox only
// when the cloud's Ack on down/ack covers them: a PUBACK or a completed paho
// token means the broker has the message in memory, not that it is stored.
//
// Sessions: the client id is fixed and CleanSession is false, so the broker
// keeps the down/ack subscription and queues acks (and later commands) while
// the agent is offline. The paho message store is the in-memory one and a new
// one is used for every connection: the outbox is the source of truth, every
// unacknowledged record is sent again after a reconnect, and a file store
// would only duplicate the outbox with a second fsync per message.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Config configures an Uplink. Zero durations and counts take the defaults
// given; VehicleID, URL and Namespace are required.
type Config struct {
	URL       string              // tcp://host:port, or ssl:// / tls:// for TLS
	VehicleID string              // [A-Za-z0-9_-]{1,64}
	Namespace telemetry.Namespace // topic root, e.g. telemetry.DefaultNamespace
	ClientID  string              // default fleetgate-edge-<VehicleID>
	KeepAlive time.Duration       // default 60s
	TLS       *tls.Config         // for ssl:// and tls://; nil means system roots

	BatchMaxRecords int           // close a batch at this many records; default 600
	BatchMaxAge     time.Duration // or when its first record has waited this long; default 1s
	Inflight        int           // batches published and not yet acked; default 8
	AckTimeout      time.Duration // resend unacked records after this; default 30s
	StatusInterval  time.Duration // retained status refresh; default 60s
	ConnectTimeout  time.Duration // default 10s
	Backoff         edge.Backoff  // between connection attempts; zero value 200ms to 5s
	AgentVersion    string        // reported in Status
}

func (c *Config) defaults() {
	if c.ClientID == "" {
		c.ClientID = "fleetgate-edge-" + c.VehicleID
	}
	setDur(&c.KeepAlive, 60*time.Second)
	setDur(&c.BatchMaxAge, time.Second)
	setDur(&c.AckTimeout, 30*time.Second)
	setDur(&c.StatusInterval, 60*time.Second)
	setDur(&c.ConnectTimeout, 10*time.Second)
	if c.BatchMaxRecords <= 0 {
		c.BatchMaxRecords = 600
	}
	if c.Inflight <= 0 {
		c.Inflight = 8
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Uplink sends the outbox to the cloud. New builds one; Run runs it.
type Uplink struct {
	cfg      Config
	outbox   edge.Outbox
	log      *slog.Logger
	counters *edge.Counters
	now      func() time.Time
	start    time.Time

	topicBatch, topicStatus, topicAck string

	notify    chan struct{}
	acks      chan *telemetrypb.Ack
	stop      chan struct{}
	connected atomic.Bool
	rttMs     atomic.Int64
}

// New checks cfg and returns an Uplink for outbox. logger and counters may be
// nil.
func New(cfg Config, outbox edge.Outbox, logger *slog.Logger, counters *edge.Counters) (*Uplink, error) {
	cfg.defaults()
	if err := cfg.Namespace.Valid(); err != nil {
		return nil, fmt.Errorf("mqtt uplink: %w", err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt uplink: broker URL %q: want tcp://host:port", cfg.URL)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return nil, fmt.Errorf("mqtt uplink: broker URL %q: scheme must be tcp, ssl or tls", cfg.URL)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if counters == nil {
		counters = new(edge.Counters)
	}
	up := &Uplink{
		cfg: cfg, outbox: outbox, log: logger, counters: counters, now: time.Now,
		notify: make(chan struct{}, 1), acks: make(chan *telemetrypb.Ack, 64), stop: make(chan struct{}),
	}
	for _, t := range []struct {
		dst  *string
		kind telemetry.Kind
	}{{&up.topicBatch, telemetry.KindBatch}, {&up.topicStatus, telemetry.KindStatus}, {&up.topicAck, telemetry.KindAck}} {
		if *t.dst, err = cfg.Namespace.Topic(cfg.VehicleID, t.kind); err != nil {
			return nil, fmt.Errorf("mqtt uplink: %w", err)
		}
	}
	return up, nil
}

// Notify tells the uplink that records were appended. It never blocks; the
// edge.Collector's OnCommit calls it.
func (u *Uplink) Notify() {
	select {
	case u.notify <- struct{}{}:
	default:
	}
}

// Connected reports whether the uplink has a broker connection now.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// errLost ends a connection's session when paho reports the connection lost.
var errLost = errors.New("connection lost")

// Run connects, sends and resends until ctx is done, then publishes the
// offline status, disconnects and returns ctx.Err(). Connection failures are
// retried with the jittered Backoff; they are logged (once per outage) and
// counted, not returned. It returns another error only when the outbox fails.
// Run must not be called twice.
func (u *Uplink) Run(ctx context.Context) error {
	defer close(u.stop)
	u.start = u.now()
	failing := false
	for {
		conn, err := u.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			u.counters.Inc("uplink.connect_errors")
			d := u.cfg.Backoff.Next()
			if !failing {
				u.log.Warn("mqtt connect failed, retrying", "url", u.cfg.URL, "backoff", d, "err", err)
				failing = true
			} else {
				u.log.Debug("mqtt connect failed", "backoff", d, "err", err)
			}
			if err := edge.Sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		failing = false
		u.cfg.Backoff.Reset()
		u.connected.Store(true)
		u.counters.Inc("uplink.connects")
		u.log.Info("mqtt connected", "url", u.cfg.URL, "client_id", u.cfg.ClientID)
		err = u.session(ctx, conn)
		u.connected.Store(false)
		if ctx.Err() != nil {
			u.goodbye(conn)
			return ctx.Err()
		}
		conn.client.Disconnect(0)
		if !errors.Is(err, errLost) && !errors.Is(err, errPublish) {
			return err // the outbox failed
		}
		u.counters.Inc("uplink.connection_lost")
		d := u.cfg.Backoff.Next()
		u.log.Warn("mqtt connection lost, reconnecting", "backoff", d, "err", err)
		if err := edge.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// conn is one broker connection.
type conn struct {
	client paho.Client
	lost   chan struct{} // closed when paho reports the connection lost
	why    atomic.Pointer[error]
}

func (u *Uplink) connect(ctx context.Context) (*conn, error) {
	will, err := u.status(ctx, false)
	if err != nil {
		return nil, err
	}
	c := &conn{lost: make(chan struct{})}
	var once sync.Once
	opts := paho.NewClientOptions().
		AddBroker(u.cfg.URL).
		SetClientID(u.cfg.ClientID).
		SetCleanSession(false).
		SetStore(paho.NewMemoryStore()).
		SetAutoReconnect(false). // Run reconnects, with jitter, and resends from the outbox
		SetConnectRetry(false).
		SetKeepAlive(u.cfg.KeepAlive).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.ConnectTimeout).
		SetOrderMatters(false).
		SetBinaryWill(u.topicStatus, will, 1, true).
		SetDefaultPublishHandler(u.onMessage). // acks queued by the broker arrive before Subscribe returns
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.why.Store(&err)
			once.Do(func() { close(c.lost) })
		})
	if u.cfg.TLS != nil {
		opts.SetTLSConfig(u.cfg.TLS)
	}
	c.client = paho.NewClient(opts)
	if err := wait(ctx, c.client.Connect(), u.cfg.ConnectTimeout); err != nil {
		c.client.Disconnect(0)
		return nil, fmt.Errorf("connect %s: %w", u.cfg.URL, err)
	}
	if err := wait(ctx, c.client.Subscribe(u.topicAck, 1, u.onMessage), u.cfg.ConnectTimeout); err != nil {
		c.client.Disconnect(0)
		return nil, fmt.Errorf("subscribe %s: %w", u.topicAck, err)
	}
	if err := u.publishStatus(ctx, c, true); err != nil {
		c.client.Disconnect(0)
		return nil, err
	}
	return c, nil
}

// wait turns a paho token into a context-aware wait, bounded by timeout.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %v", timeout)
	}
}

// status builds the agent's Status message, encoded.
func (u *Uplink) status(ctx context.Context, online bool) ([]byte, error) {
	st, err := u.outbox.Stats(ctx)
	if err != nil {
		return nil, err
	}
	now := u.now()
	s := &telemetrypb.Status{
		VehicleId:         u.cfg.VehicleID,
		Online:            online,
		UnixMs:            now.UnixMilli(),
		AgentVersion:      u.cfg.AgentVersion,
		StreamId:          st.StreamID,
		NextSeq:           st.NextSeq,
		OutboxDepth:       st.Depth,
		OutboxBytes:       st.Bytes,
		OldestUnsentAgeMs: st.OldestUnsentAge(now).Milliseconds(),
		Dropped:           st.Dropped,
		RttMs:             u.rttMs.Load(),
		Counters:          u.counters.Snapshot(),
		UptimeMs:          now.Sub(u.start).Milliseconds(),
	}
	return telemetry.Encode(s, false)
}

func (u *Uplink) publishStatus(ctx context.Context, c *conn, online bool) error {
	p, err := u.status(ctx, online)
	if err != nil {
		return err
	}
	if err := wait(ctx, c.client.Publish(u.topicStatus, 1, true, p), u.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	return nil
}

// goodbye publishes the offline status (a clean disconnect sends no will) and
// disconnects, within a couple of seconds of ctx being done.
func (u *Uplink) goodbye(c *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := u.publishStatus(ctx, c, false); err != nil {
		u.log.Warn("offline status not published", "err", err)
	}
	c.client.Disconnect(250)
}

// onMessage handles messages on down/ack (paho calls it on its own
// goroutines). Acks go to Run's loop; anything else is counted and dropped.
func (u *Uplink) onMessage(_ paho.Client, m paho.Message) {
	id, kind, err := u.cfg.Namespace.Parse(m.Topic())
	if err != nil || id != u.cfg.VehicleID || kind != telemetry.KindAck {
		u.counters.Inc("uplink.unexpected_messages")
		return
	}
	var a telemetrypb.Ack
	if err := telemetry.Decode(m.Payload(), &a); err != nil {
		u.counters.Inc("uplink.acks_malformed")
		u.log.Warn("undecodable ack", "err", err)
		return
	}
	select {
	case u.acks <- &a:
	case <-u.stop:
	}
}

// errPublish marks a publish the broker or paho refused; the connection is
// dropped and made again.
var errPublish = errors.New("publish failed")

type batch struct {
	ranges []telemetry.SeqRange
	sent   time.Time
}

// session publishes batches and applies acks on one connection until it is
// lost or ctx is done. Every connection starts again from the oldest unacked
// record (go-back-N): what was in flight on the last one is sent again.
func (u *Uplink) session(ctx context.Context, c *conn) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	pubErr := make(chan error, 1)

	var (
		cursor   uint64 // highest seq published on this connection
		inflight []*batch
		waiting  time.Time // when a partial batch was first seen waiting
	)
	status := time.NewTicker(u.cfg.StatusInterval)
	defer status.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Fill the window.
		for len(inflight) < u.cfg.Inflight {
			recs, err := u.outbox.Unsent(ctx, cursor, u.cfg.BatchMaxRecords)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				waiting = time.Time{}
				break
			}
			if len(recs) < u.cfg.BatchMaxRecords {
				if waiting.IsZero() {
					waiting = u.now()
				}
				if u.now().Sub(waiting) < u.cfg.BatchMaxAge {
					break
				}
			}
			b, err := u.publish(ctx, c, recs, &wg, done, pubErr)
			if err != nil {
				return err
			}
			inflight = append(inflight, b)
			cursor = recs[len(recs)-1].Seq()
			waiting = time.Time{}
		}
		// Sleep until the next batch age or ack deadline, or an event.
		var next time.Duration = u.cfg.StatusInterval
		if !waiting.IsZero() {
			next = min(next, u.cfg.BatchMaxAge-u.now().Sub(waiting))
		}
		if len(inflight) > 0 {
			next = min(next, u.cfg.AckTimeout-u.now().Sub(inflight[0].sent))
		}
		timer.Reset(max(next, time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.lost:
			if why := c.why.Load(); why != nil {
				return fmt.Errorf("%w: %w", errLost, *why)
			}
			return errLost
		case err := <-pubErr:
			return fmt.Errorf("%w: %w", errPublish, err)
		case <-u.notify:
		case a := <-u.acks:
			var err error
			if inflight, err = u.applyAck(ctx, a, inflight); err != nil {
				return err
			}
		case <-status.C:
			if err := u.publishStatus(ctx, c, true); err != nil {
				return fmt.Errorf("%w: %w", errPublish, err)
			}
		case <-timer.C:
		}
		if len(inflight) > 0 && u.now().Sub(inflight[0].sent) >= u.cfg.AckTimeout {
			u.counters.Inc("uplink.ack_timeouts")
			u.log.Warn("no ack in time, sending unacked records again", "after", u.cfg.AckTimeout, "batches", len(inflight))
			cursor, inflight = 0, nil
		}
	}
}

// publish sends recs as one batch. The broker's PUBACK is awaited on a
// goroutine only to notice failures (it proves nothing durable).
func (u *Uplink) publish(ctx context.Context, c *conn, recs []edge.Record, wg *sync.WaitGroup, done <-chan struct{}, pubErr chan<- error) (*batch, error) {
	b := telemetry.Batch{VehicleID: u.cfg.VehicleID, StreamID: u.outbox.StreamID()}
	for i := range recs {
		recs[i].AddTo(&b)
	}
	payload, err := telemetry.EncodeBatch(&b, true)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err) // a bug, not the network's fault
	}
	tok := c.client.Publish(u.topicBatch, 1, false, payload)
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				select {
				case pubErr <- err:
				default:
				}
				return
			}
			u.counters.Inc("uplink.pubacks")
		case <-done:
		case <-ctx.Done():
		}
	}()
	u.counters.Inc("uplink.batches")
	u.counters.Add("uplink.records_sent", uint64(len(recs)))
	u.counters.Add("uplink.bytes_sent", uint64(len(payload)))
	return &batch{ranges: b.SeqRanges(), sent: u.now()}, nil
}

// applyAck deletes what a is about from the outbox and from the in-flight
// window. Acks for another vehicle or stream (an old outbox file) are
// counted and ignored.
func (u *Uplink) applyAck(ctx context.Context, a *telemetrypb.Ack, inflight []*batch) ([]*batch, error) {
	if a.GetVehicleId() != u.cfg.VehicleID || a.GetStreamId() != u.outbox.StreamID() {
		u.counters.Inc("uplink.acks_foreign")
		return inflight, nil
	}
	committed, rejected := telemetry.AckRanges(a)
	all := telemetry.MergeRanges(append(committed, rejected...))
	n, err := u.outbox.Ack(ctx, all)
	if err != nil {
		return inflight, err
	}
	u.counters.Inc("uplink.acks")
	u.counters.Add("uplink.records_acked", uint64(n))
	if len(rejected) > 0 {
		var k uint64
		for _, r := range rejected {
			k += r.Len()
		}
		u.counters.Add("uplink.records_rejected", k)
		u.log.Warn("cloud rejected records", "ranges", rejected, "reason", a.GetReason())
	}
	kept := inflight[:0]
	for _, b := range inflight {
		b.ranges = subtract(b.ranges, all)
		if len(b.ranges) > 0 {
			kept = append(kept, b)
			continue
		}
		u.rttMs.Store(u.now().Sub(b.sent).Milliseconds())
	}
	return kept, nil
}
