// Package mqtt holds the agent's broker connection over MQTT 3.1.1 with
// github.com/eclipse/paho.mqtt.golang (which no other package imports): it
// connects and reconnects, subscribes to the vehicle's down/ack and
// down/cmd, publishes what an uplink.Sender decides to send, the retained
// status and the command results, and hands the cloud's Acks to the Sender.
// What to send and when is the Sender's business (edge/uplink).
//
// Sessions fit the outbox being the source of truth:
//
//   - The client id is fixed and CleanSession is false, so the broker keeps
//     the down/ack and down/cmd subscriptions and queues acks and commands
//     while the agent is offline (they arrive right after the next CONNACK).
//   - The paho message store is the in-memory one, new for every connection,
//     and paho never reconnects by itself: after any reconnect the Sender
//     sends every record still in the outbox again (the cloud deduplicates by
//     (stream, seq)). A file store would duplicate the outbox with a second
//     fsync per message and resend messages the outbox has already forgotten.
//   - Incoming messages are acknowledged by hand: an ack once it is queued
//     for the Sender (losing it only causes a resend), a command only once
//     its result is published, so that a command whose result was lost with
//     the connection comes again and is answered from the command log.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Config configures an Uplink. Zero durations take the defaults of package
// uplink; URL and Namespace are required.
type Config struct {
	URL            string              // tcp://host:port, or ssl:// / tls:// for TLS
	Namespace      telemetry.Namespace // topic root, e.g. telemetry.DefaultNamespace
	ClientID       string              // default fleetgate-edge-<vehicle id>
	KeepAlive      time.Duration       // uplink.DefaultKeepAlive
	TLS            *tls.Config         // for ssl:// and tls://; nil means system roots
	StatusInterval time.Duration       // retained status refresh; uplink.DefaultStatusInterval
	ConnectTimeout time.Duration       // uplink.DefaultConnectTimeout
	// Backoff paces connection attempts; a zero Min or Max takes
	// uplink.DefaultBackoffMin or Max.
	Backoff edge.Backoff
	Status  uplink.StatusInfo // what the status report says of the agent

	// Commands runs a command from down/cmd and returns its result (see
	// edge.Commander.Run); nil answers every command "not supported". An
	// error leaves the command unacknowledged, so that it comes again.
	Commands func(context.Context, *telemetrypb.Command) (*telemetrypb.CommandResult, error)
}

func (c *Config) defaults(vehicle string) {
	if c.ClientID == "" {
		c.ClientID = "fleetgate-edge-" + vehicle
	}
	setDur(&c.KeepAlive, uplink.DefaultKeepAlive)
	setDur(&c.StatusInterval, uplink.DefaultStatusInterval)
	setDur(&c.ConnectTimeout, uplink.DefaultConnectTimeout)
	setDur(&c.Backoff.Min, uplink.DefaultBackoffMin)
	setDur(&c.Backoff.Max, uplink.DefaultBackoffMax)
	if c.Status.Started.IsZero() {
		c.Status.Started = time.Now()
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Uplink keeps the agent connected to the broker and runs its Sender on
// each connection. New builds one; Run runs it.
type Uplink struct {
	cfg      Config
	vehicle  string
	sender   *uplink.Sender
	log      *slog.Logger
	counters *edge.Counters

	topicStatus, topicAck, topicCmd, topicResult string
	topicBatch                                   map[telemetry.Kind]string

	statusNow chan struct{}
	cmds      chan command
	stop      context.Context // done once Run returns
	connected atomic.Bool
	current   atomic.Pointer[conn]
}

// command is a down/cmd message with the connection it came on.
type command struct {
	msg  paho.Message
	conn *conn
}

// New checks cfg and returns an Uplink for the vehicle of sender. logger and
// counters may be nil.
func New(cfg Config, vehicle string, sender *uplink.Sender, logger *slog.Logger, counters *edge.Counters) (*Uplink, error) {
	cfg.defaults(vehicle)
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
		cfg: cfg, vehicle: vehicle, sender: sender, log: logger, counters: counters,
		topicBatch: map[telemetry.Kind]string{}, statusNow: make(chan struct{}, 1), cmds: make(chan command, 16),
	}
	for _, t := range []struct {
		dst  *string
		kind telemetry.Kind
	}{
		{&up.topicStatus, telemetry.KindStatus}, {&up.topicAck, telemetry.KindAck},
		{&up.topicCmd, telemetry.KindCmd}, {&up.topicResult, telemetry.KindCmdResult},
	} {
		if *t.dst, err = cfg.Namespace.Topic(vehicle, t.kind); err != nil {
			return nil, fmt.Errorf("mqtt uplink: %w", err)
		}
	}
	for _, k := range []telemetry.Kind{telemetry.KindBatch, telemetry.KindBatchV2} {
		if up.topicBatch[k], err = cfg.Namespace.Topic(vehicle, k); err != nil {
			return nil, fmt.Errorf("mqtt uplink: %w", err)
		}
	}
	return up, nil
}

// Connected reports whether the uplink has a broker connection now.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// ReportStatus asks for a status report now; it is published on the
// current connection, or on the next one. It never blocks.
func (u *Uplink) ReportStatus(context.Context) error {
	select {
	case u.statusNow <- struct{}{}:
	default:
	}
	return nil
}

// errLost ends a connection's session when paho reports the connection lost.
var errLost = errors.New("connection lost")

// errPublish marks a publish the broker or paho refused; the connection is
// dropped and made again.
var errPublish = errors.New("publish failed")

// Run connects, runs the Sender on each connection and publishes the status
// until ctx is done, then publishes the offline status, disconnects and
// returns ctx.Err(). Connection failures are retried with the jittered
// Backoff; they are logged (once per outage) and counted, not returned. It
// returns another error only when the outbox fails. Run must not be called
// twice.
func (u *Uplink) Run(ctx context.Context) error {
	var workers sync.WaitGroup
	defer workers.Wait()
	stop, stopped := context.WithCancel(context.WithoutCancel(ctx))
	u.stop = stop
	defer stopped()
	cmdCtx, stopCommands := context.WithCancel(ctx)
	defer stopCommands() // also when the outbox fails with ctx still live
	workers.Add(1)
	go func() {
		defer workers.Done()
		u.runCommands(cmdCtx)
	}()
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
		conn.wg.Wait()
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

// conn is one broker connection; it is the Sender's uplink.Conn.
type conn struct {
	up     *Uplink
	client paho.Client
	lost   chan struct{} // closed when paho reports the connection lost
	why    atomic.Pointer[error]
	pubErr chan error     // a publish the broker or paho refused
	wg     sync.WaitGroup // PUBACK watchers
	done   chan struct{}  // closed when the session ends
}

// Publish implements uplink.Conn: it hands the batch to paho, and a
// goroutine waits for the broker's PUBACK only to notice failures (a PUBACK
// proves nothing durable), which end the session.
func (c *conn) Publish(ctx context.Context, kind telemetry.Kind, payload []byte) error {
	topic, ok := c.up.topicBatch[kind]
	if !ok {
		return fmt.Errorf("%w: no topic for batches of kind %q", errPublish, kind)
	}
	tok := c.client.Publish(topic, 1, false, payload)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				select {
				case c.pubErr <- err:
				default:
				}
				return
			}
			c.up.counters.Inc("uplink.pubacks")
		case <-c.done:
		}
	}()
	return ctx.Err()
}

func (u *Uplink) connect(ctx context.Context) (*conn, error) {
	// The will and the first online status carry the same time, the
	// connection's: the cloud applies a will only to the connection it
	// belongs to (a will is older than the statuses sent after it).
	at := time.Now()
	will, err := u.status(ctx, false, at)
	if err != nil {
		return nil, err
	}
	c := &conn{up: u, lost: make(chan struct{}), pubErr: make(chan error, 1), done: make(chan struct{})}
	handler := func(_ paho.Client, m paho.Message) { u.onMessage(c, m) }
	var once sync.Once
	opts := paho.NewClientOptions().
		AddBroker(u.cfg.URL).
		SetClientID(u.cfg.ClientID).
		SetCleanSession(false).
		SetStore(paho.NewMemoryStore()).
		SetAutoReconnect(false). // Run reconnects, with jitter, and the Sender resends from the outbox
		SetConnectRetry(false).
		SetKeepAlive(u.cfg.KeepAlive).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.ConnectTimeout).
		SetOrderMatters(false).
		SetAutoAckDisabled(true). // see the package comment
		SetBinaryWill(u.topicStatus, will, 1, true).
		SetCustomOpenConnectionFn(u.dial). // counts the bytes on the wire
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

// dial opens the network connection for paho, as paho would for tcp://,
// ssl:// and tls:// URLs, and counts what crosses it: the bytes on the wire
// (MQTT packets, in TLS records for ssl://), uplink.wire_bytes_sent and
// uplink.wire_bytes_received, which a metered plan pays for.
func (u *Uplink) dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", uri.Host)
	default: // New admits ssl, tls and mqtts besides
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	}
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, counters: u.counters}, nil
}

// countingConn counts the bytes read and written.
type countingConn struct {
	net.Conn
	counters *edge.Counters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.counters.Add("uplink.wire_bytes_received", uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.counters.Add("uplink.wire_bytes_sent", uint64(n))
	return n, err
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

// status returns the agent's Status at time at, encoded.
func (u *Uplink) status(ctx context.Context, online bool, at time.Time) ([]byte, error) {
	s, err := u.sender.Status(ctx, online, at, u.cfg.Status)
	if err != nil {
		return nil, err
	}
	return telemetry.Encode(s, true)
}

func (u *Uplink) publishStatus(ctx context.Context, c *conn, online bool) error {
	return u.publishStatusAt(ctx, c, online, time.Now())
}

func (u *Uplink) publishStatusAt(ctx context.Context, c *conn, online bool, at time.Time) error {
	p, err := u.status(ctx, online, at)
	if err != nil {
		return err
	}
	if err := wait(ctx, c.client.Publish(u.topicStatus, 1, true, p), u.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("%w: status: %w", errPublish, err)
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
	c.wg.Wait()
}

// session runs the Sender on c and refreshes the status until the
// connection is lost, a publish fails, the outbox fails or ctx is done.
func (u *Uplink) session(ctx context.Context, c *conn) error {
	sctx, cancel := context.WithCancel(ctx)
	sent := make(chan error, 1)
	go func() { sent <- u.sender.Run(sctx, c) }()
	end := func(err error) error {
		cancel()
		if serr := <-sent; err == nil {
			err = serr
		}
		close(c.done)
		return err
	}
	status := time.NewTicker(u.cfg.StatusInterval)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return end(ctx.Err())
		case <-c.lost:
			if why := c.why.Load(); why != nil {
				return end(fmt.Errorf("%w: %w", errLost, *why))
			}
			return end(errLost)
		case err := <-c.pubErr:
			return end(fmt.Errorf("%w: %w", errPublish, err))
		case err := <-sent:
			sent <- err
			return end(nil) // the outbox failed, or a publish
		case <-u.statusNow:
		case <-status.C:
		}
		if err := u.publishStatus(ctx, c, true); err != nil {
			return end(err)
		}
	}
}

// onMessage handles messages on down/ack and down/cmd arriving on c (paho
// calls it on its own goroutines). Acks go to the Sender, commands to the
// command worker; anything else is counted, acknowledged and dropped.
func (u *Uplink) onMessage(c *conn, m paho.Message) {
	id, kind, err := u.cfg.Namespace.Parse(m.Topic())
	if err != nil || id != u.vehicle || (kind != telemetry.KindAck && kind != telemetry.KindCmd) {
		u.counters.Inc("uplink.unexpected_messages")
		m.Ack()
		return
	}
	if kind == telemetry.KindCmd {
		select {
		case u.cmds <- command{msg: m, conn: c}:
		case <-u.stop.Done():
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
	if u.sender.Ack(u.stop, &a) == nil {
		m.Ack()
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
			res = &telemetrypb.CommandResult{Error: "command does not decode: " + err.Error(), UnixMs: time.Now().UnixMilli()}
		} else if u.cfg.Commands == nil {
			res = &telemetrypb.CommandResult{Id: c.GetId(), Error: "commands are not supported by this agent", UnixMs: time.Now().UnixMilli()}
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
