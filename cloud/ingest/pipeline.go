// Package ingest is the cloud's ingest pipeline: it decodes and validates the
// agents' messages (batches, statuses, command results), gathers them into
// micro-batches, commits each micro-batch in one transaction with retry,
// dead-letters what is refused, publishes the protocol's Acks and only then
// acknowledges each message to the broker. It is plain Go over small
// interfaces — Message, Publisher, Flow, cloud.IngestStore and, optionally,
// cloud.LiveState — so its rules are tested without a broker or a database;
// cloud/mqtt holds the broker session that feeds it.
//
// The one rule, for every kind of message: a message is acknowledged to the
// broker only once its effect is committed or it is dead-lettered with a
// reason. A store that is unavailable is retried (with jittered, bounded
// backoff) for as long as it takes, never given up on while the replica goes
// on taking work; a store that refuses data (EINVALID) gets a dead letter
// instead. A replica whose commits keep failing past StepBackAfter steps back
// (Flow.Pause: the broker sends new messages to the other replicas) and
// resumes by itself after its next successful commit.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Message is one message taken from the broker.
type Message interface {
	Topic() string
	Payload() []byte
	// Ack acknowledges the message to the broker (a PUBACK). The pipeline
	// calls it at most once, and only after the message's effect is
	// committed or dead-lettered. It must not block.
	Ack()
}

// Outgoing is a message to publish at QoS 1: an Ack on a vehicle's down/ack.
type Outgoing struct {
	Topic   string
	Payload []byte
}

// Publisher publishes the protocol's Acks.
type Publisher interface {
	// Publish sends each message at QoS 1 and waits for the broker to
	// confirm them (PUBACK). It returns one error per message, nil for the
	// confirmed ones; those not confirmed when ctx ends get ctx's error. It
	// is safe for concurrent use.
	Publish(ctx context.Context, msgs []Outgoing) []error
}

// Flow is the consumption of the broker session, which the pipeline pauses
// while it cannot commit.
type Flow interface {
	// Pause stops the broker sending new messages to this replica (they go
	// to the other replicas of the share group); messages already delivered
	// are still processed. It returns at once; the session carries it out.
	Pause()
	// Resume undoes Pause.
	Resume()
}

// Defaults of a Pipeline (New).
const (
	DefaultWorkers          = 2
	DefaultQueueLen         = 64
	DefaultMaxBatchRows     = 10000
	DefaultMaxBatchMessages = 1000
	DefaultRetryMin         = 100 * time.Millisecond
	DefaultRetryMax         = 5 * time.Second
	DefaultStepBackAfter    = 5 * time.Second
	DefaultLiveTimeout      = 2 * time.Second
	DefaultDrainTimeout     = 10 * time.Second
)

// ErrStopped is returned by Receive once the pipeline stopped taking
// messages: the message stays unacknowledged (the broker sends it again).
var ErrStopped = errors.New("ingest pipeline stopped")

// Pipeline is the ingest pipeline. Create it with New, adjust its fields,
// then call Run once; Receive feeds it from any goroutine.
//
// Micro-batches. One batcher gathers queued messages into a micro-batch.
// It closes at MaxBatchRows records or MaxBatchMessages messages and waits
// there for a free committer. Before that it goes to a free committer as
// soon as no message is queued (MaxBatchDelay 0, the default) or
// MaxBatchDelay has passed since its first message: while every committer is
// busy a micro-batch keeps growing, so transactions get bigger exactly when
// the load is high. A micro-batch the store refuses (EINVALID) is split in
// halves, down to the one message it refuses, which alone becomes a dead
// letter.
//
// Backpressure. Receive blocks while QueueLen messages wait for the batcher;
// the batcher stops taking while the committers are busy and its
// micro-batch is full. Nothing is buffered without bound: what waits beyond
// the queue waits in the broker.
//
// After each commit: the Acks of the committed batches are published (each
// retried until confirmed), then each message is acknowledged; the newest
// fix of each vehicle goes to the LiveState in the background, whose
// failures never hold an acknowledgement (PostgreSQL is the truth) and are
// retried with backoff, keeping only the newest state per vehicle.
type Pipeline struct {
	Namespace telemetry.Namespace // topic root the messages come from
	Store     cloud.IngestStore
	Acks      Publisher
	Live      cloud.LiveState // nil: no live state
	Flow      Flow            // nil: never steps back
	Logger    *slog.Logger
	Now       func() time.Time

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
	// RetryMin and RetryMax bound the backoff between attempts of a commit,
	// an Ack publish or a live-state update.
	RetryMin, RetryMax time.Duration
	// StepBackAfter is how long commits may keep failing before the
	// pipeline pauses its Flow and Ping reports it.
	StepBackAfter time.Duration
	// MaxClockAhead is how far past the server clock a record or status may
	// be stamped and still become a vehicle's latest state (see
	// cloud.Commit.ClockLimit). Statuses stamped beyond it are dead letters;
	// records are stored but never become the latest state.
	MaxClockAhead time.Duration
	// LiveTimeout bounds one LiveState update.
	LiveTimeout time.Duration
	// DrainTimeout bounds how long messages in flight may take to finish
	// after Run's context is done; what is not finished then is left
	// unacknowledged (the broker delivers it again).
	DrainTimeout time.Duration
	// OnCommit, when set, is called after every committed transaction with
	// what it held, from the committing goroutine (it must be quick).
	OnCommit func(CommitInfo)

	ready    chan struct{} // closed by Run once the channels below exist
	places   chan struct{} // one per message queued
	queue    chan *item
	stopping chan struct{}
	stats    counters
	held     heldSet
	health   health
	live     liveQueue
}

// CommitInfo describes one committed transaction.
type CommitInfo struct {
	Messages int           // messages whose effect it wrote
	Records  int           // records it wrote or found already stored
	Inserted int64         // records newly written
	Duration time.Duration // of the IngestStore.Commit call that succeeded
}

// New returns a Pipeline over store and acks with the defaults above, the
// default namespace and MaxClockAhead cloud.DefaultMaxClockAhead.
func New(store cloud.IngestStore, acks Publisher) *Pipeline {
	return &Pipeline{
		Namespace: telemetry.DefaultNamespace, Store: store, Acks: acks,
		Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Workers: DefaultWorkers, QueueLen: DefaultQueueLen,
		MaxBatchRows: DefaultMaxBatchRows, MaxBatchMessages: DefaultMaxBatchMessages,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, StepBackAfter: DefaultStepBackAfter,
		MaxClockAhead: cloud.DefaultMaxClockAhead, LiveTimeout: DefaultLiveTimeout, DrainTimeout: DefaultDrainTimeout,
		ready: make(chan struct{}),
	}
}

// Receive takes m into the pipeline: it decodes and validates it and queues
// it for the batcher, blocking while the queue is full (backpressure). It
// returns ErrStopped once Run's context is done, or ctx's error; the message
// is then left unacknowledged. It is safe for concurrent use.
func (p *Pipeline) Receive(ctx context.Context, m Message) error {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.stats.countReceived(p.Namespace, m.Topic())
	h := p.held.add(p.Now())
	select {
	case <-p.stopping:
		p.held.remove(h)
		return ErrStopped
	default:
	}
	select {
	case p.places <- struct{}{}:
		raise(&p.stats.queueMax, int64(len(p.places)))
	case <-p.stopping:
		p.held.remove(h)
		return ErrStopped
	case <-ctx.Done():
		p.held.remove(h)
		return ctx.Err()
	}
	p.queue <- p.prepare(m, h) // never blocks: it has a place
	return nil
}

// Run commits what Receive queues until ctx is done. Then it stops taking
// messages, commits and acknowledges those it holds (at most DrainTimeout)
// and returns nil. It returns an error only for a configuration it cannot
// use.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.Namespace.Valid(); err != nil {
		return cloud.Errorf(cloud.EINVALID, "ingest namespace: %w", err)
	}
	if p.Store == nil || p.Acks == nil || p.Workers < 1 || p.QueueLen < 1 || p.MaxBatchRows < 1 || p.MaxBatchMessages < 1 {
		return cloud.Errorf(cloud.EINVALID, "ingest needs a store, an ack publisher, and at least one worker, queue place, and row and message per micro-batch")
	}
	p.places = make(chan struct{}, p.QueueLen)
	p.queue = make(chan *item, p.QueueLen)
	p.stopping = make(chan struct{})
	p.live.wake = make(chan struct{}, 1)
	p.health.flow, p.health.logger, p.health.grace = p.Flow, p.Logger, p.StepBackAfter
	close(p.ready)

	// Work goes on after ctx is done, to finish what is held, until
	// DrainTimeout cancels workCtx.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	batches := make(chan []*item)
	var committers sync.WaitGroup
	for range p.Workers {
		committers.Add(1)
		go func() {
			defer committers.Done()
			for b := range batches {
				p.commitBatch(workCtx, b)
			}
		}()
	}
	go p.batch(workCtx, batches)
	liveDone := make(chan struct{})
	committed := make(chan struct{})
	go func() {
		defer close(liveDone)
		p.runLive(workCtx, committed)
	}()

	<-ctx.Done()
	close(p.stopping)
	drained := make(chan struct{})
	go func() {
		committers.Wait()
		close(committed)
		<-liveDone
		close(drained)
	}()
	t := time.NewTimer(p.DrainTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		p.Logger.Warn("messages in flight did not finish in time; they stay with the broker", "drain_timeout", p.DrainTimeout)
		cancelWork()
		<-drained
	}
	p.health.stop()
	return nil
}

// Ping returns nil unless the pipeline has stepped back (its commits have
// been failing for longer than StepBackAfter); then an error with code
// EUNAVAILABLE says since when and why.
func (p *Pipeline) Ping(context.Context) error {
	return p.health.err()
}

var _ cloud.Pinger = (*Pipeline)(nil)

// raise sets m to v if v is larger.
func raise(m *atomic.Int64, v int64) {
	for cur := m.Load(); v > cur && !m.CompareAndSwap(cur, v); cur = m.Load() {
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

// heldSet knows when each message received and not yet acknowledged (or
// released) arrived, for the ingest lag.
type heldSet struct {
	mu   sync.Mutex
	next uint64
	at   map[uint64]time.Time
	max  int
}

func (h *heldSet) add(t time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at == nil {
		h.at = map[uint64]time.Time{}
	}
	h.next++
	h.at[h.next] = t
	h.max = max(h.max, len(h.at))
	return h.next
}

func (h *heldSet) remove(id uint64) {
	h.mu.Lock()
	delete(h.at, id)
	h.mu.Unlock()
}

// snapshot returns how many messages are held, the most ever held, and when
// the oldest arrived (zero when none is held).
func (h *heldSet) snapshot() (n, most int, oldest time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.at {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return len(h.at), h.max, oldest
}

// health tracks whether commits fail, and steps the pipeline back.
type health struct {
	mu       sync.Mutex
	since    time.Time // first failure of the current run of failures; zero: healthy
	lastErr  error
	back     bool
	timer    *time.Timer
	stepped  atomic.Int64 // step-backs so far
	episodes int

	// Set by Run.
	flow   Flow
	logger *slog.Logger
	grace  time.Duration
}

// failed records a failed commit at now; after grace of failures the flow
// is paused.
func (h *health) failed(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if !h.since.IsZero() {
		return
	}
	h.since = now
	h.episodes++
	episode := h.episodes
	h.timer = time.AfterFunc(h.grace, func() { h.stepBack(episode) })
}

func (h *health) stepBack(episode int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() || h.episodes != episode || h.back {
		return
	}
	h.back = true
	h.stepped.Add(1)
	h.logger.Warn("commits keep failing: stepping back, taking no new messages until PostgreSQL answers",
		"failing_since", h.since, "err", h.lastErr)
	if h.flow != nil {
		h.flow.Pause()
	}
}

// succeeded records a successful commit: the pipeline is healthy again.
func (h *health) succeeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.back {
		h.logger.Info("commits work again: taking messages again", "failing_since", h.since)
		if h.flow != nil {
			h.flow.Resume()
		}
	}
	h.since, h.lastErr, h.back = time.Time{}, nil, false
}

func (h *health) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
	}
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.back {
		return nil
	}
	if h.lastErr == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "ingest stepped back: commits failing since %s", h.since.UTC().Format(time.RFC3339))
	}
	// The cause is wrapped, so that /ready can show the reason without it
	// (it may name the database's user, host and name).
	return cloud.Errorf(cloud.EUNAVAILABLE, "ingest stepped back: commits failing since %s: %w",
		h.since.UTC().Format(time.RFC3339), h.lastErr)
}

// steppedBack reports whether the pipeline has stepped back now.
func (h *health) steppedBack() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.back
}

// logEvery reports whether attempt is 1, 2, 4, 8, ...: an outage logs a
// few lines, not one per attempt.
func logEvery(attempt int) bool { return attempt&(attempt-1) == 0 }

// fmtStream formats a stream id as the API and the logs show it.
func fmtStream(id uint64) string { return fmt.Sprintf("%016x", id) }
