// Package mqtt holds the cloud's session with the MQTT broker, with paho: a
// persistent session (clean session off) with manual acknowledgements that
// subscribes, at QoS 1, to every vehicle's batches (of both protocol
// versions) and command results through shared subscriptions and to their statuses through a plain one,
// hands every message to the ingest pipeline, publishes the pipeline's Acks
// and the API's commands, and unsubscribes while the pipeline steps back. It
// is the only package that imports paho.
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
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Session is the broker session. Create it with NewSession, set its fields,
// Open it, and Close it once the pipeline it feeds has drained.
//
// Flow control. Each message's handler runs in its own goroutine and blocks
// in Deliver while the pipeline's queue is full: that is the backpressure.
// (Blocking paho's router instead, with OrderMatters, would stop paho
// reading the connection, so the PUBACKs of our own Acks would never be
// read: a deadlock.) The goroutines are bounded by what the broker sends
// unacknowledged: its in-flight window for this client (Mosquitto's
// max_inflight_messages). Mosquitto 2.0.11 holds that window while nothing
// is acknowledged, but once PUBACKs flow it may release more of the
// session's queue (measured: 8 in flight, one PUBACK, 15 delivered), so what
// the process holds is bounded by max_inflight_messages +
// max_queued_messages raw payloads.
//
// Stepping back. Pause unsubscribes from the batches and the statuses, so
// the broker routes new batches to the other members of the share group;
// what it had already queued for this session stays queued for it
// (Mosquitto does not hand a member's queue to another member), and the
// pipeline commits it once its database is back. Batches among it are
// resent by their agents meanwhile (no Ack comes) and reach another
// replica; statuses reach every replica anyway, and the retained ones come
// again when it subscribes. The command results stay subscribed: agents do
// not resend them, and a share group without members (a lone replica
// stepped back) would drop them; they wait in this session until the
// database is back. For the same reason the queue is never released (a
// clean session would discard the command results in it).
type Session struct {
	URL        string              // tcp://host:1883
	ClientID   string              // stable across restarts, so the broker keeps the session
	Namespace  telemetry.Namespace // topic root, telemetry.DefaultNamespace in production
	ShareGroup string              // shared subscription group; replicas in one group split the load
	// Deliver takes each message (ingest.Pipeline.Receive). It may block
	// (backpressure); when it returns an error the message stays
	// unacknowledged.
	Deliver func(ctx context.Context, m ingest.Message) error
	Logger  *slog.Logger

	RetryMin, RetryMax time.Duration // backoff between subscribe attempts and reconnects
	PublishTimeout     time.Duration // wait for the broker's PUBACK of one publish, or a SUBACK
	ConnectTimeout     time.Duration // one connection attempt
	// EphemeralSession says ClientID will never be used again (it holds the
	// process id). The broker would keep such a session forever and, with a
	// shared subscription, keep handing it a share of the messages, which
	// then wait there until the agents resend them; so Close removes the
	// session. A stable ClientID is better.
	EphemeralSession bool

	mu     sync.Mutex // guards client
	client paho.Client
	ctx    context.Context // of the session, for Deliver; ended by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when reconcile returns

	want       atomic.Bool   // subscribed is the desired state (false while paused)
	subscribed atomic.Bool   // the broker has our subscriptions, as far as we know
	conns      atomic.Int64  // connections made so far
	kick       chan struct{} // wakes reconcile; capacity 1
}

var (
	_ ingest.Publisher = (*Session)(nil)
	_ ingest.Flow      = (*Session)(nil)
	_ cloud.Pinger     = (*Session)(nil)
)

// Defaults of a Session (NewSession).
const (
	DefaultShareGroup     = "ingest"
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// NewSession returns a Session with the defaults: the default namespace,
// share group "ingest".
func NewSession(url, clientID string) *Session {
	return &Session{
		URL: url, ClientID: clientID, Namespace: telemetry.DefaultNamespace, ShareGroup: DefaultShareGroup,
		Logger: slog.New(slog.DiscardHandler), RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax,
		PublishTimeout: DefaultPublishTimeout, ConnectTimeout: DefaultConnectTimeout,
	}
}

// Filters returns what the session subscribes to, with QoS 1 each:
// batches (version 1 on {ns}/+/up/batch, version 2 on {ns}/+) and command
// results through the share group, statuses through a plain subscription
// (a broker sends retained messages — every vehicle's last status — only to
// those; every replica storing every status is harmless, the store keeps
// the newest). {ns}/+ matches only a vehicle's own topic: every other kind
// has more levels.
func (s *Session) Filters() map[string]byte {
	return map[string]byte{
		s.Namespace.SharedFilter(s.ShareGroup, telemetry.KindBatch):     1,
		s.Namespace.SharedFilter(s.ShareGroup, telemetry.KindBatchV2):   1,
		s.Namespace.SharedFilter(s.ShareGroup, telemetry.KindCmdResult): 1,
		s.Namespace.Filter(telemetry.KindStatus):                        1,
	}
}

// Open starts connecting to the broker (retrying in the background until
// Close) and subscribes once connected. It returns an error with code
// EINVALID for a configuration it cannot use.
func (s *Session) Open(ctx context.Context) error {
	if err := s.Namespace.Valid(); err != nil {
		return cloud.Errorf(cloud.EINVALID, "MQTT namespace: %w", err)
	}
	if s.ClientID == "" || s.ShareGroup == "" || s.Deliver == nil {
		return cloud.Errorf(cloud.EINVALID, "MQTT session needs a client id, a share group and a Deliver function")
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.kick = make(chan struct{}, 1)
	s.done = make(chan struct{})
	s.want.Store(true)
	opts := paho.NewClientOptions().
		AddBroker(s.URL).
		SetClientID(s.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(false). // see Session
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(s.ConnectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(s.RetryMax).
		SetConnectRetry(true).
		SetConnectRetryInterval(s.RetryMax/5 + s.RetryMin).
		// A persistent session's queued messages may come before SUBACK,
		// and after UNSUBSCRIBE: they go to the same handler.
		SetDefaultPublishHandler(s.receive).
		SetOnConnectHandler(func(paho.Client) {
			s.subscribed.Store(false) // unknown until reconcile says
			s.conns.Add(1)
			s.wake()
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.subscribed.Store(false)
			s.Logger.Warn("MQTT connection lost", "url", redactURL(s.URL), "err", err)
		})
	client := paho.NewClient(opts)
	s.mu.Lock()
	s.client = client
	s.mu.Unlock()
	client.Connect() // with ConnectRetry, goes on in the background
	go s.reconcile()
	return nil
}

// Close disconnects (and removes the session when EphemeralSession is set).
// Messages not acknowledged by then stay with the broker.
func (s *Session) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	<-s.done
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	c.Disconnect(250)
	if s.EphemeralSession {
		ctx, cancel := context.WithTimeout(context.Background(), s.ConnectTimeout)
		defer cancel()
		if err := RemoveSession(ctx, s.URL, s.ClientID); err != nil {
			s.Logger.Warn("could not remove the MQTT session; the broker keeps it", "client_id", s.ClientID, "err", err)
		}
	}
	return nil
}

// Pause unsubscribes from the batches and statuses (see Session), at once
// if connected, else as soon as connected. It does not wait.
func (s *Session) Pause() {
	s.want.Store(false)
	s.wake()
}

// Resume subscribes again. It does not wait.
func (s *Session) Resume() {
	s.want.Store(true)
	s.wake()
}

func (s *Session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reconcile makes the broker's subscriptions what Pause and Resume want,
// after every (re)connection and every change, retrying with backoff, until
// Close.
func (s *Session) reconcile() {
	defer close(s.done)
	var (
		have    bool  // the broker has our subscriptions, as far as we know
		conn    int64 // the connection have is known for
		attempt int
	)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-retry.C:
		}
		s.mu.Lock()
		c := s.client
		s.mu.Unlock()
		want, now := s.want.Load(), s.conns.Load()
		if !c.IsConnectionOpen() || (conn == now && have == want) {
			continue
		}
		var err error
		if want {
			err = s.subscribe(c)
		} else {
			err = s.unsubscribe(c)
		}
		if err == nil {
			have, conn, attempt = want, now, 0
			s.subscribed.Store(want)
			continue
		}
		attempt++
		d := cloud.Backoff(s.RetryMin, s.RetryMax, attempt)
		s.Logger.Warn("subscription change failed; will retry", "subscribe", want, "attempt", attempt, "backoff", d, "err", err)
		retry.Reset(d)
	}
}

func (s *Session) subscribe(c paho.Client) error {
	filters := s.Filters()
	tok := c.SubscribeMultiple(filters, s.receive)
	if err := wait(s.ctx, tok, s.PublishTimeout); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code > 1 {
				return fmt.Errorf("broker refused the subscription to %s (return code %#x)", f, code)
			}
		}
	}
	s.Logger.Info("subscribed", "filters", slices.Sorted(maps.Keys(filters)), "client_id", s.ClientID)
	return nil
}

// pausable returns the filters Pause unsubscribes from (see Session).
func (s *Session) pausable() []string {
	return []string{
		s.Namespace.SharedFilter(s.ShareGroup, telemetry.KindBatch),
		s.Namespace.SharedFilter(s.ShareGroup, telemetry.KindBatchV2),
		s.Namespace.Filter(telemetry.KindStatus),
	}
}

func (s *Session) unsubscribe(c paho.Client) error {
	filters := s.pausable()
	if err := wait(s.ctx, c.Unsubscribe(filters...), s.PublishTimeout); err != nil {
		return err
	}
	s.Logger.Warn("unsubscribed from batches and statuses while the pipeline steps back", "filters", filters, "client_id", s.ClientID)
	return nil
}

// receive is paho's message handler: it hands the message to Deliver,
// which may block (backpressure). A message Deliver does not take stays
// unacknowledged.
func (s *Session) receive(_ paho.Client, m paho.Message) {
	if err := s.Deliver(s.ctx, m); err != nil && !errors.Is(err, ingest.ErrStopped) && s.ctx.Err() == nil {
		s.Logger.Warn("message not taken; left with the broker", "topic", m.Topic(), "err", err)
	}
}

// Ping returns nil while the session is connected and, unless paused,
// subscribed, and an error with code EUNAVAILABLE otherwise.
func (s *Session) Ping(context.Context) error {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil || !c.IsConnectionOpen() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker at %s", redactURL(s.URL))
	}
	if s.want.Load() && !s.subscribed.Load() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "connected to the broker at %s but not subscribed yet", redactURL(s.URL))
	}
	return nil
}

// Subscribed reports whether the session is connected and subscribed now.
func (s *Session) Subscribed() bool {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	return c != nil && c.IsConnectionOpen() && s.subscribed.Load()
}

// Publish sends each message at QoS 1, all at once, then waits for each
// PUBACK (at most PublishTimeout each); see ingest.Publisher.
func (s *Session) Publish(ctx context.Context, msgs []ingest.Outgoing) []error {
	errs := make([]error, len(msgs))
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		for i := range errs {
			errs[i] = cloud.Errorf(cloud.EUNAVAILABLE, "MQTT session not open")
		}
		return errs
	}
	toks := make([]paho.Token, len(msgs))
	for i, m := range msgs {
		toks[i] = c.Publish(m.Topic, 1, false, m.Payload)
	}
	for i, tok := range toks {
		errs[i] = wait(ctx, tok, s.PublishTimeout)
	}
	return errs
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
