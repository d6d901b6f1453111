// Package mqtt is the agent's uplink over MQTT 3.1.1 with
// github.com/eclipse/paho.mqtt.golang (which no other package imports). It
// reads unsent records from the edge.Outbox, publishes them as
// telemetry.Batch messages at QoS 1, and deletes them from the outbox only
// when the cloud's Ack on down/ack covers them: a PUBACK or a completed paho
// token means the broker has the message in memory, not that it is stored.
//
// Sessions fit the outbox being the source of truth:
//
//   - The client id is fixed and CleanSession is false, so the broker keeps
//     the down/ack and down/cmd subscriptions and queues acks and commands
//     while the agent is offline (they arrive right after the next CONNACK).
//   - The paho message store is the in-memory one, new for every connection,
//     and paho never reconnects by itself: after any reconnect or ack timeout
//     every record still in the outbox is published again from the outbox
//     (go-back-N; the cloud deduplicates by (stream, seq)). A file store
//     would duplicate the outbox with a second fsync per message and resend
//     messages the outbox has already forgotten.
//   - Incoming messages are acknowledged by hand: an ack once it is queued
//     for the outbox (losing it only causes a resend), a command only once
//     its result is published, so that a command whose result was lost with
//     the connection comes again and is answered from the command log.
//
// After an outage the newest fix goes first, alone, so that the map is live
// at once; then records appended since the connection (live) take precedence
// over the backlog (history, oldest first, in full batches): each time an
// ack frees a slot of the in-flight window, a waiting live batch takes it
// before the history does.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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

	BatchMaxRecords int // close a batch at this many records; default 600
	// HistoryBatchRecords is the size of the backlog's batches after an
	// outage (fewer, larger messages drain faster); default 4 ×
	// BatchMaxRecords.
	HistoryBatchRecords int
	BatchMaxAge         time.Duration // or when its first record has waited this long; default 1s
	Inflight            int           // batches published and not yet acked; default 8
	AckTimeout          time.Duration // resend unacked records after this; default 30s
	StatusInterval      time.Duration // retained status refresh; default 60s
	ConnectTimeout      time.Duration // default 10s
	Backoff             edge.Backoff  // between connection attempts; zero value 200ms to 5s
	AgentVersion        string        // reported in Status

	// Fix, if set, gives the GNSS fix state for the status report.
	Fix edge.FixReporter
	// Report, if set, adds to each status report what other parts of the
	// agent report (the clock, the outbox's storage, the OBD adapter).
	Report func(*telemetrypb.Status)
	// Commands runs a command from down/cmd and returns its result (see
	// edge.Commander.Run); nil answers every command "not supported". An
	// error leaves the command unacknowledged, so that it comes again.
	Commands func(context.Context, *telemetrypb.Command) (*telemetrypb.CommandResult, error)
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
	if c.HistoryBatchRecords <= 0 {
		c.HistoryBatchRecords = min(4*c.BatchMaxRecords, telemetry.MaxRows)
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

	topicBatch, topicStatus, topicAck, topicCmd, topicResult string

	notify      chan struct{}
	statusNow   chan struct{}
	acks        chan *telemetrypb.Ack
	cmds        chan command
	stop        chan struct{}
	connected   atomic.Bool
	current     atomic.Pointer[conn]
	rttMs       atomic.Int64
	batchMaxAge atomic.Int64 // ns; the live flush, changed by a command
}

// command is a down/cmd message with the connection it came on.
type command struct {
	msg  paho.Message
	conn *conn
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
		notify: make(chan struct{}, 1), statusNow: make(chan struct{}, 1), acks: make(chan *telemetrypb.Ack, 64),
		cmds: make(chan command, 16), stop: make(chan struct{}),
	}
	up.batchMaxAge.Store(int64(cfg.BatchMaxAge))
	for _, t := range []struct {
		dst  *string
		kind telemetry.Kind
	}{
		{&up.topicBatch, telemetry.KindBatch}, {&up.topicStatus, telemetry.KindStatus}, {&up.topicAck, telemetry.KindAck},
		{&up.topicCmd, telemetry.KindCmd}, {&up.topicResult, telemetry.KindCmdResult},
	} {
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

// SetReportInterval changes how long a partial batch waits when the uplink
// is caught up (Config.BatchMaxAge). Safe for concurrent use.
func (u *Uplink) SetReportInterval(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("report interval %v: must be positive", d)
	}
	u.batchMaxAge.Store(int64(d))
	u.Notify()
	return nil
}

// ReportStatus asks for a status report now; it is published on the
// current connection, or on the next one. It never blocks.
func (u *Uplink) ReportStatus(context.Context) error {
	select {
	case u.statusNow <- struct{}{}:
	default:
	}
	return nil
}

// RTT returns the last measured round trip from publishing a batch to the
// cloud's ack of it, 0 before the first.
func (u *Uplink) RTT() time.Duration { return time.Duration(u.rttMs.Load()) * time.Millisecond }

// errLost ends a connection's session when paho reports the connection lost.
var errLost = errors.New("connection lost")

// Run connects, sends and resends until ctx is done, then publishes the
// offline status, disconnects and returns ctx.Err(). Connection failures are
// retried with the jittered Backoff; they are logged (once per outage) and
// counted, not returned. It returns another error only when the outbox fails.
// Run must not be called twice.
func (u *Uplink) Run(ctx context.Context) error {
	var workers sync.WaitGroup
	defer workers.Wait()
	defer close(u.stop)
	cmdCtx, stopCommands := context.WithCancel(ctx)
	defer stopCommands() // also when the outbox fails with ctx still live
	workers.Add(1)
	go func() {
		defer workers.Done()
		u.runCommands(cmdCtx)
	}()
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
		u.current.Store(conn)
		u.counters.Inc("uplink.connects")
		u.log.Info("mqtt connected", "url", u.cfg.URL, "client_id", u.cfg.ClientID)
		err = u.session(ctx, conn)
		u.connected.Store(false)
		u.current.Store(nil)
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
	// The will and the first online status carry the same time, the
	// connection's: the cloud applies a will only to the connection it
	// belongs to (a will is older than the statuses sent after it).
	at := u.now()
	will, err := u.status(ctx, false, at)
	if err != nil {
		return nil, err
	}
	c := &conn{lost: make(chan struct{})}
	handler := func(_ paho.Client, m paho.Message) { u.onMessage(c, m) }
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
		SetAutoAckDisabled(true). // see the package comment
		SetBinaryWill(u.topicStatus, will, 1, true).
		SetDefaultPublishHandler(handler). // acks queued by the broker arrive before Subscribe returns
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
	subs := map[string]byte{u.topicAck: 1, u.topicCmd: 1}
	if err := wait(ctx, c.client.SubscribeMultiple(subs, handler), u.cfg.ConnectTimeout); err != nil {
		c.client.Disconnect(0)
		return nil, fmt.Errorf("subscribe %s, %s: %w", u.topicAck, u.topicCmd, err)
	}
	if err := u.publishStatusAt(ctx, c, true, at); err != nil {
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

// status builds the agent's Status message at time at, encoded.
func (u *Uplink) status(ctx context.Context, online bool, at time.Time) ([]byte, error) {
	st, err := u.outbox.Stats(ctx)
	if err != nil {
		return nil, err
	}
	now := u.now()
	s := &telemetrypb.Status{
		VehicleId:         u.cfg.VehicleID,
		Online:            online,
		UnixMs:            at.UnixMilli(),
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
	maps.Copy(s.Counters, st.Counters())
	if u.cfg.Fix != nil {
		fs := u.cfg.Fix.FixState()
		s.FixMode = uint32(max(fs.Mode, 0))
		if !fs.NoFixSince.IsZero() {
			s.NoFixSinceUnixMs = fs.NoFixSince.UnixMilli()
		}
	}
	if u.cfg.Report != nil {
		u.cfg.Report(s)
	}
	return telemetry.Encode(s, false)
}

func (u *Uplink) publishStatus(ctx context.Context, c *conn, online bool) error {
	return u.publishStatusAt(ctx, c, online, u.now())
}

func (u *Uplink) publishStatusAt(ctx context.Context, c *conn, online bool, at time.Time) error {
	p, err := u.status(ctx, online, at)
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

// onMessage handles messages on down/ack and down/cmd arriving on c (paho
// calls it on its own goroutines). Acks go to the session loop, commands to
// the command worker; anything else is counted, acknowledged and dropped.
func (u *Uplink) onMessage(c *conn, m paho.Message) {
	id, kind, err := u.cfg.Namespace.Parse(m.Topic())
	if err != nil || id != u.cfg.VehicleID || (kind != telemetry.KindAck && kind != telemetry.KindCmd) {
		u.counters.Inc("uplink.unexpected_messages")
		m.Ack()
		return
	}
	if kind == telemetry.KindCmd {
		select {
		case u.cmds <- command{msg: m, conn: c}:
		case <-u.stop:
		}
		return
	}
	var a telemetrypb.Ack
	if err := telemetry.Decode(m.Payload(), &a); err != nil {
		u.counters.Inc("uplink.acks_malformed")
		u.log.Warn("undecodable ack", "err", err)
		m.Ack()
		return
	}
	select {
	case u.acks <- &a:
		m.Ack()
	case <-u.stop:
	}
}

// runCommands runs the commands from down/cmd one at a time until ctx is
// done: decode, run (Config.Commands: at most once per id, never expired),
// publish the result on up/cmd-result and wait for the broker's PUBACK, and
// only then acknowledge the command on the connection it came on. A failure
// leaves it unacknowledged: the broker delivers it again on the next
// connection, and the command log answers it without running it again.
func (u *Uplink) runCommands(ctx context.Context) {
	for {
		var cmd command
		select {
		case <-ctx.Done():
			return
		case cmd = <-u.cmds:
		}
		u.counters.Inc("uplink.commands")
		var c telemetrypb.Command
		var res *telemetrypb.CommandResult
		if err := telemetry.Decode(cmd.msg.Payload(), &c); err != nil {
			u.counters.Inc("uplink.commands_malformed")
			u.log.Warn("undecodable command", "err", err)
			res = &telemetrypb.CommandResult{Error: "command does not decode: " + err.Error(), UnixMs: u.now().UnixMilli()}
		} else if u.cfg.Commands == nil {
			res = &telemetrypb.CommandResult{Id: c.GetId(), Error: "commands are not supported by this agent", UnixMs: u.now().UnixMilli()}
		} else {
			var err error
			if res, err = u.cfg.Commands(ctx, &c); err != nil {
				u.counters.Inc("uplink.command_errors")
				u.log.Error("command not run; it stays unacknowledged", "id", c.GetId(), "err", err)
				continue
			}
		}
		p, err := telemetry.Encode(res, false)
		if err != nil {
			u.log.Error("encode command result", "id", res.GetId(), "err", err)
			continue
		}
		if err := wait(ctx, cmd.conn.client.Publish(u.topicResult, 1, false, p), u.cfg.ConnectTimeout); err != nil {
			u.counters.Inc("uplink.command_result_errors")
			u.log.Warn("command result not published; the command comes again", "id", res.GetId(), "err", err)
			continue
		}
		if u.current.Load() == cmd.conn {
			cmd.msg.Ack() // on another connection its packet id means something else
		}
	}
}

// errPublish marks a publish the broker or paho refused; the connection is
// dropped and made again.
var errPublish = errors.New("publish failed")

type batch struct {
	ranges []telemetry.SeqRange
	sent   time.Time
}

// streams is what one connection has published: history is the backlog
// found at connect (seqs below liveFrom), oldest first; live is what was
// appended since. skip holds seqs published out of order (the newest fix).
type streams struct {
	liveFrom    uint64
	hist, live  uint64 // highest seq published in each
	histDone    bool
	skip        map[uint64]bool
	inflight    []*batch
	waitingLive time.Time // when a partial live batch was first seen
}

func (s *streams) reset() {
	s.hist, s.live, s.histDone, s.skip, s.inflight, s.waitingLive = 0, s.liveFrom-1, false, map[uint64]bool{}, nil, time.Time{}
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
	pub := func(recs []edge.Record) (*batch, error) { return u.publish(ctx, c, recs, &wg, done, pubErr) }

	st, err := u.outbox.Stats(ctx)
	if err != nil {
		return err
	}
	s := &streams{liveFrom: st.NextSeq}
	s.reset()
	// After an outage the newest fix goes first: a backlog of more than a
	// batch, or older than two live flushes, is an outage.
	if st.Depth > uint64(u.cfg.BatchMaxRecords) || st.OldestUnsentAge(u.now()) > 2*u.liveAge() {
		r, ok, err := u.outbox.Newest(ctx, edge.KindPosition)
		if err != nil {
			return err
		}
		if ok {
			b, err := pub([]edge.Record{r})
			if err != nil {
				return err
			}
			s.inflight = append(s.inflight, b)
			s.skip[r.Seq()] = true
			u.counters.Inc("uplink.newest_first")
		}
	}

	status := time.NewTicker(u.cfg.StatusInterval)
	defer status.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := u.fill(ctx, s, pub); err != nil {
			return err
		}
		// Sleep until the next batch age or ack deadline, or an event.
		next := u.cfg.StatusInterval
		if !s.waitingLive.IsZero() {
			next = min(next, u.liveAge()-u.now().Sub(s.waitingLive))
		}
		if len(s.inflight) > 0 {
			next = min(next, u.cfg.AckTimeout-u.now().Sub(s.inflight[0].sent))
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
			if s.inflight, err = u.applyAck(ctx, a, s.inflight); err != nil {
				return err
			}
		case <-u.statusNow:
			if err := u.publishStatus(ctx, c, true); err != nil {
				return fmt.Errorf("%w: %w", errPublish, err)
			}
		case <-status.C:
			if err := u.publishStatus(ctx, c, true); err != nil {
				return fmt.Errorf("%w: %w", errPublish, err)
			}
		case <-timer.C:
		}
		if len(s.inflight) > 0 && u.now().Sub(s.inflight[0].sent) >= u.cfg.AckTimeout {
			u.counters.Inc("uplink.ack_timeouts")
			u.log.Warn("no ack in time, sending unacked records again", "after", u.cfg.AckTimeout, "batches", len(s.inflight))
			s.reset()
		}
	}
}

func (u *Uplink) liveAge() time.Duration { return time.Duration(u.batchMaxAge.Load()) }

// fill publishes batches while the in-flight window has room: live records
// first (a partial batch once it has waited the live flush), then history in
// batches of up to BatchMaxRecords. A live record thus waits at most for
// one ack to free a slot.
func (u *Uplink) fill(ctx context.Context, s *streams, pub func([]edge.Record) (*batch, error)) error {
	for len(s.inflight) < u.cfg.Inflight {
		recs, err := u.outbox.Unsent(ctx, s.live, u.cfg.BatchMaxRecords)
		if err != nil {
			return err
		}
		recs = s.drop(recs, 0)
		if len(recs) == 0 {
			s.waitingLive = time.Time{}
			break
		}
		if len(recs) < u.cfg.BatchMaxRecords {
			if s.waitingLive.IsZero() {
				s.waitingLive = u.now()
			}
			if u.now().Sub(s.waitingLive) < u.liveAge() {
				break
			}
		}
		b, err := pub(recs)
		if err != nil {
			return err
		}
		s.inflight = append(s.inflight, b)
		s.live = recs[len(recs)-1].Seq()
		s.waitingLive = time.Time{}
	}
	for !s.histDone && len(s.inflight) < u.cfg.Inflight {
		recs, err := u.outbox.Unsent(ctx, s.hist, u.cfg.HistoryBatchRecords)
		if err != nil {
			return err
		}
		if len(recs) == 0 || recs[0].Seq() >= s.liveFrom {
			s.histDone = true
			break
		}
		last := recs[len(recs)-1].Seq()
		if recs = s.drop(recs, s.liveFrom); len(recs) > 0 {
			b, err := pub(recs)
			if err != nil {
				return err
			}
			s.inflight = append(s.inflight, b)
		}
		s.hist = min(last, s.liveFrom-1)
	}
	return nil
}

// drop removes from recs the seqs already sent out of order and, with
// below > 0, those from below on.
func (s *streams) drop(recs []edge.Record, below uint64) []edge.Record {
	out := recs[:0]
	for _, r := range recs {
		if below > 0 && r.Seq() >= below {
			break
		}
		if !s.skip[r.Seq()] {
			out = append(out, r)
		}
	}
	return out
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
