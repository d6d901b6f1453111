package ingest

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Why a message, or part of one, became a dead letter: the values of
// Stats.DeadLetters' keys (and of the metric's reason label).
const (
	ReasonTopic          = "topic"           // a topic outside the protocol
	ReasonDecode         = "decode"          // a payload that does not decode
	ReasonInvalid        = "invalid"         // records or a status refused by validation
	ReasonClockAhead     = "clock_ahead"     // a status stamped beyond MaxClockAhead
	ReasonRefused        = "refused"         // data the database refused
	ReasonUnknownCommand = "unknown_command" // an answer to a command the store does not know
)

// Reasons lists every dead-letter reason.
var Reasons = []string{ReasonTopic, ReasonDecode, ReasonInvalid, ReasonClockAhead, ReasonRefused, ReasonUnknownCommand}

// What a committed row is: the keys of Stats.Rows. Records stamped ahead
// are counted in Stats.ClockAhead under the first three.
const (
	KindPosition      = "position"
	KindOBD           = "obd"
	KindEvent         = "event"
	KindStatus        = "status"
	KindCommandResult = "command_result"
	KindDeadLetter    = "dead_letter"
)

// Kinds lists every kind of committed row.
var Kinds = []string{KindPosition, KindOBD, KindEvent, KindStatus, KindCommandResult, KindDeadLetter}

// The protocol version of a received message, as its topic says: the values
// of Stats.ReceivedByVersion's keys (and of the metric's version label). A
// batch on the vehicle's own topic is in version 2; a batch on up/batch, and
// every status and command result, in version 1 (they are framed so in both
// versions). A topic outside the protocol has none.
const (
	Version1    = "1"
	Version2    = "2"
	VersionNone = "none"
)

// Versions lists every value of the version label.
var Versions = []string{Version1, Version2, VersionNone}

// Stats counts what the pipeline did since it started, and what it holds now.
type Stats struct {
	Received      int64 // messages taken in by Receive
	Acked         int64 // messages acknowledged to the broker
	Records       int64 // records committed (newly written or already stored)
	Inserted      int64 // records newly written
	Rejected      int64 // records refused by validation or by the database
	Commits       int64 // transactions committed
	StoreRetries  int64 // failed commit attempts that were retried
	AckRetries    int64 // failed Ack publishes that were retried
	AcksPublished int64 // protocol Acks the broker confirmed
	LiveFailures  int64 // live-state updates that failed
	Dropped       int64 // messages acknowledged although not even their dead letter could be stored
	StepBacks     int64 // times the pipeline stepped back

	Rows        map[string]int64 // rows committed, by kind (Kinds)
	DeadLetters map[string]int64 // dead letters committed, by reason (Reasons)
	ClockAhead  map[string]int64 // records and statuses received stamped beyond MaxClockAhead, by kind
	// ReceivedByVersion splits Received by the protocol version of each
	// message's topic (Versions): it shows which agents still send version 1.
	ReceivedByVersion map[string]int64

	SteppedBack bool          // now
	QueueDepth  int64         // messages queued for the batcher now
	QueueMax    int64         // the most that ever were (never above QueueLen)
	Held        int64         // messages received and not yet acknowledged or released, now
	HeldMax     int64         // the most ever held
	Lag         time.Duration // age of the oldest message held; 0 when none is
}

type counters struct {
	received, receivedV1, receivedV2, receivedNone, acked, records, inserted, rejected, commits, storeRetries, ackRetries, acksPublished,
	liveFailures, dropped, queueMax atomic.Int64

	mu                           sync.Mutex
	rows, deadLetters, clockAhed map[string]int64
}

// add adds n to the count of key in *m.
func (c *counters) add(m *map[string]int64, key string, n int64) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[key] += n
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (p *Pipeline) Stats() Stats {
	c := &p.stats
	s := Stats{
		Received: c.received.Load(), Acked: c.acked.Load(), Records: c.records.Load(), Inserted: c.inserted.Load(),
		Rejected: c.rejected.Load(), Commits: c.commits.Load(), StoreRetries: c.storeRetries.Load(),
		AckRetries: c.ackRetries.Load(), AcksPublished: c.acksPublished.Load(), LiveFailures: c.liveFailures.Load(),
		Dropped: c.dropped.Load(), StepBacks: p.health.stepped.Load(), QueueMax: c.queueMax.Load(),
		SteppedBack: p.health.steppedBack(),
	}
	s.ReceivedByVersion = map[string]int64{Version1: c.receivedV1.Load(), Version2: c.receivedV2.Load(), VersionNone: c.receivedNone.Load()}
	c.mu.Lock()
	s.Rows, s.DeadLetters, s.ClockAhead = maps.Clone(c.rows), maps.Clone(c.deadLetters), maps.Clone(c.clockAhed)
	c.mu.Unlock()
	for _, m := range []*map[string]int64{&s.Rows, &s.DeadLetters, &s.ClockAhead} {
		if *m == nil {
			*m = map[string]int64{}
		}
	}
	select {
	case <-p.ready:
		s.QueueDepth = int64(len(p.places))
	default:
	}
	held, most, oldest := p.held.snapshot()
	s.Held, s.HeldMax = int64(held), int64(most)
	if !oldest.IsZero() {
		s.Lag = max(p.Now().Sub(oldest), 0)
	}
	return s
}

// countReceived counts a message received on topic, by the protocol version
// its topic says (see Versions); received counts them all.
func (c *counters) countReceived(ns telemetry.Namespace, topic string) {
	switch _, kind, err := ns.Parse(topic); {
	case err != nil:
		c.receivedNone.Add(1)
	case kind == telemetry.KindBatchV2:
		c.receivedV2.Add(1)
	default:
		c.receivedV1.Add(1)
	}
	c.received.Add(1)
}
