// Package uplink is the agent's sending policy: which records of the outbox
// go to the cloud, in which batches, when, and what happens when the cloud's
// acknowledgements come or do not come. It is plain Go over a small
// connection interface (Conn), so every rule is tested without a broker;
// edge/mqtt holds the broker connection and runs a Sender on it.
//
// The rules, for one connection:
//
//   - Window. At most Inflight batches await the cloud's Ack at once. An Ack
//     deletes the records it covers from the outbox; nothing else does (a
//     broker's PUBACK proves nothing durable).
//   - Adaptive batching, as TCP's Nagle algorithm and Kafka's linger: a live
//     record goes out at once when no live batch is in flight; while one is,
//     new records gather into the next batch, which goes when that Ack comes
//     or when it reaches BatchMaxRecords. An idle link thus costs no latency,
//     and batches grow only as fast as the link is slow.
//   - Minimum batch age (MinBatchAge, 0 by default): a partial live batch also
//     waits until its first record has waited this long. That is the knob for
//     metered links: fewer, larger messages for a live map that lags by up to
//     that much.
//   - Newest first after an outage: when the backlog found at connect holds
//     more than BatchMaxRecords records, the newest fix goes first, alone, so
//     that the map is right at once.
//   - Live before history: records appended since the connection (live) take
//     every free slot of the window before the backlog found at connect
//     (history), which then drains oldest first in batches of
//     HistoryBatchRecords.
//   - Resend: when the oldest batch in flight has had no Ack for AckTimeout,
//     and on every new connection, every record still in the outbox is sent
//     again (go-back-N: the cloud deduplicates by stream and seq).
//   - Protocol version: batches go in version 1 (telemetry.EncodeBatch, on
//     up/batch) until an Ack says the cloud reads version 2; then in version 2
//     (telemetry.EncodeBatchV2, on the vehicle's own topic). An ack timeout
//     while sending version 2 goes back to version 1, so an agent never waits
//     on a cloud that stopped reading it.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Defaults of Config and of the agent's uplink and mqtt settings: the
// agent's configuration file starts from these.
const (
	DefaultBatchMaxRecords = 600
	DefaultInflight        = 8
	DefaultAckTimeout      = 30 * time.Second
	// DefaultMinBatchAge is no minimum: a record goes as soon as the link
	// is free.
	DefaultMinBatchAge    = 0
	DefaultStatusInterval = time.Minute
	DefaultKeepAlive      = 60 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultBackoffMin     = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
)

// Bounds of the minimum batch age, as SetMinBatchAge and the report
// interval command take it.
const MaxMinBatchAge = time.Hour

// Conn is one connection to the cloud as the Sender sees it; edge/mqtt
// implements it.
type Conn interface {
	// Publish hands one encoded batch to the connection, for the topic of
	// kind (telemetry.KindBatch or telemetry.KindBatchV2) at QoS 1. It
	// returns once the connection has it, not when the broker acknowledged
	// it: a later failure ends the connection, and with it the context of
	// the Sender's Run. It returns an error when the connection cannot take
	// the message; Run then returns it.
	Publish(ctx context.Context, kind telemetry.Kind, payload []byte) error
}

// Config configures a Sender. Zero values take the defaults.
type Config struct {
	VehicleID       string // required: in version 1 batches, and acks must name it
	BatchMaxRecords int    // a batch closes at this many records
	// HistoryBatchRecords is the size of the backlog's batches after an
	// outage (fewer, larger messages drain faster); default 4 ×
	// BatchMaxRecords, at most telemetry.MaxRows.
	HistoryBatchRecords int
	// MinBatchAge is how long a partial live batch waits at least, for
	// metered links; default 0.
	MinBatchAge time.Duration
	Inflight    int           // batches awaiting the cloud's Ack
	AckTimeout  time.Duration // resend unacked records after this
	// MaxVersion caps the Batch version used, whatever the cloud reads;
	// default telemetry.Version.
	MaxVersion int
	// NoDelay sends a partial live batch without waiting for the previous
	// one's Ack (TCP_NODELAY's counterpart): for load tests against a broker
	// alone, where no Ack ever comes. Agents leave it off.
	NoDelay bool
}

func (c *Config) defaults() {
	if c.BatchMaxRecords <= 0 {
		c.BatchMaxRecords = DefaultBatchMaxRecords
	}
	if c.HistoryBatchRecords <= 0 {
		c.HistoryBatchRecords = min(4*c.BatchMaxRecords, telemetry.MaxRows)
	}
	if c.Inflight <= 0 {
		c.Inflight = DefaultInflight
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.MaxVersion <= 0 || c.MaxVersion > telemetry.Version {
		c.MaxVersion = telemetry.Version
	}
}

// Sender applies the sending policy to an outbox, one connection at a time.
// New builds one; Run runs it on a connection. Its other methods are safe
// for concurrent use, also while Run runs.
type Sender struct {
	cfg      Config
	outbox   edge.Outbox
	log      *slog.Logger
	counters *edge.Counters

	notify     chan struct{}
	acks       chan *telemetrypb.Ack
	minAge     atomic.Int64 // ns; SetMinBatchAge changes it
	rttMs      atomic.Int64
	cloudReads atomic.Int32 // the highest Batch version the cloud said it reads
	running    atomic.Bool
}

// New checks cfg and returns a Sender for outbox. logger and counters may be
// nil.
func New(cfg Config, outbox edge.Outbox, logger *slog.Logger, counters *edge.Counters) (*Sender, error) {
	cfg.defaults()
	if err := telemetry.ValidVehicleID(cfg.VehicleID); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if cfg.MinBatchAge < 0 || cfg.MinBatchAge > MaxMinBatchAge {
		return nil, fmt.Errorf("uplink: minimum batch age %v: want 0 to %v", cfg.MinBatchAge, MaxMinBatchAge)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if counters == nil {
		counters = new(edge.Counters)
	}
	s := &Sender{
		cfg: cfg, outbox: outbox, log: logger, counters: counters,
		notify: make(chan struct{}, 1), acks: make(chan *telemetrypb.Ack, 64),
	}
	s.minAge.Store(int64(cfg.MinBatchAge))
	s.cloudReads.Store(1)
	return s, nil
}

// Notify tells the Sender that records were appended. It never blocks; the
// edge.Collector's OnCommit calls it.
func (s *Sender) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Ack hands an Ack from the cloud to the Sender. It blocks until the Ack is
// queued (the running connection, or the next one, applies it) or ctx is
// done, and then returns ctx.Err().
func (s *Sender) Ack(ctx context.Context, a *telemetrypb.Ack) error {
	select {
	case s.acks <- a:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetMinBatchAge changes the minimum batch age (Config.MinBatchAge) of the
// running and later connections: 0 to MaxMinBatchAge.
func (s *Sender) SetMinBatchAge(d time.Duration) error {
	if d < 0 || d > MaxMinBatchAge {
		return fmt.Errorf("minimum batch age %v: want 0 to %v", d, MaxMinBatchAge)
	}
	s.minAge.Store(int64(d))
	s.Notify()
	return nil
}

// MinBatchAge returns the minimum batch age in force.
func (s *Sender) MinBatchAge() time.Duration { return time.Duration(s.minAge.Load()) }

// RTT returns the last measured time from publishing a batch to the cloud's
// Ack of all of it, 0 before the first.
func (s *Sender) RTT() time.Duration { return time.Duration(s.rttMs.Load()) * time.Millisecond }

// Version returns the Batch version the Sender uses now.
func (s *Sender) Version() int { return min(int(s.cloudReads.Load()), s.cfg.MaxVersion) }

// ErrRunning is returned by Run when another Run of the same Sender is
// still running.
var ErrRunning = errors.New("uplink: already running on a connection")

// Run sends the outbox on c until ctx is done (the connection is lost or
// the agent stops), and returns ctx.Err(); or until c refuses a batch or the
// outbox fails, and returns that error. Every Run starts again from the
// oldest unacknowledged record. One Run at a time: a second returns
// ErrRunning.
func (s *Sender) Run(ctx context.Context, c Conn) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	st, err := s.outbox.Stats(ctx)
	if err != nil {
		return err
	}
	ss := &session{Sender: s, conn: c, liveFrom: st.NextSeq}
	ss.reset()
	if st.Depth > uint64(s.cfg.BatchMaxRecords) {
		if err := ss.newestFirst(ctx); err != nil {
			return err
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ss.fill(ctx); err != nil {
			return err
		}
		timer.Reset(ss.sleep())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.notify:
		case a := <-s.acks:
			if err := ss.apply(ctx, a); err != nil {
				return err
			}
		case <-timer.C:
		}
		if ss.timedOut() {
			s.counters.Inc("uplink.ack_timeouts")
			s.log.Warn("no ack in time, sending unacked records again", "after", s.cfg.AckTimeout, "batches", len(ss.inflight))
			if s.cloudReads.Load() >= 2 {
				s.cloudReads.Store(1) // it may have stopped reading version 2
				s.counters.Inc("uplink.version_fallbacks")
			}
			ss.reset()
		}
	}
}
