// Package memory holds in-memory implementations of the agent's domain
// interfaces: an edge.Outbox that keeps nothing across a restart, for tests
// of what uses an outbox (the uplink's sending policy) and for the
// simulator's virtual agents, which need no durability.
package memory

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Outbox is an in-memory edge.Outbox: nothing survives the process. It holds
// at most its capacity of records, dropping (and counting) the oldest past
// it, and counts what was appended. Its methods are safe for concurrent use.
type Outbox struct {
	mu       sync.Mutex
	streamID uint64
	capacity int
	recs     []edge.Record // in seq order
	nextSeq  uint64
	appended uint64
	dropped  uint64
	oldest   time.Time // when the oldest record was appended, roughly: reset when the outbox empties
	commits  uint64
}

var _ edge.Outbox = (*Outbox)(nil)

// NewOutbox returns an empty outbox with a stream id drawn from seed,
// holding at most capacity records (0: no limit).
func NewOutbox(seed uint64, capacity int) *Outbox {
	id := rand.New(rand.NewPCG(seed, 0x6f7574626f78)).Uint64() | 1 // never 0
	return &Outbox{streamID: id, capacity: capacity, nextSeq: 1}
}

// Append gives recs consecutive sequence numbers and keeps them.
func (o *Outbox) Append(ctx context.Context, recs []edge.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range recs {
		recs[i].SetSeq(o.nextSeq)
		o.nextSeq++
	}
	if len(o.recs) == 0 {
		o.oldest = time.Now()
	}
	o.recs = append(o.recs, recs...)
	o.appended += uint64(len(recs))
	if over := len(o.recs) - o.capacity; o.capacity > 0 && over > 0 {
		o.recs = slices.Delete(o.recs, 0, over)
		o.dropped += uint64(over)
	}
	o.commits++
	return nil
}

// Unsent returns up to max records with seq > after, in seq order.
func (o *Outbox) Unsent(ctx context.Context, after uint64, max int) ([]edge.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	i, _ := slices.BinarySearchFunc(o.recs, after+1, func(r edge.Record, seq uint64) int {
		s := r.Seq()
		switch {
		case s < seq:
			return -1
		case s > seq:
			return 1
		}
		return 0
	})
	return slices.Clone(o.recs[i:min(len(o.recs), i+max)]), nil
}

// Ack deletes the records the ranges cover and returns how many.
func (o *Outbox) Ack(ctx context.Context, ranges []telemetry.SeqRange) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.recs)
	o.recs = slices.DeleteFunc(o.recs, func(r edge.Record) bool {
		seq := r.Seq()
		for _, rg := range ranges {
			if rg.Contains(seq) {
				return true
			}
		}
		return false
	})
	if deleted := n - len(o.recs); deleted > 0 {
		o.commits++
		if len(o.recs) == 0 {
			o.oldest = time.Time{}
		}
		return deleted, nil
	}
	return 0, nil
}

// Newest returns the stored record of kind with the highest seq, and false
// when there is none (the uplink sends it first after an outage).
func (o *Outbox) Newest(ctx context.Context, kind edge.Kind) (edge.Record, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.recs) - 1; i >= 0; i-- {
		if o.recs[i].Kind == kind {
			return o.recs[i], true, nil
		}
	}
	return edge.Record{}, false, nil
}

// Stats reports the outbox's size and identity.
func (o *Outbox) Stats(ctx context.Context) (edge.OutboxStats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := edge.OutboxStats{StreamID: o.streamID, NextSeq: o.nextSeq, Depth: uint64(len(o.recs)), Dropped: o.dropped, Commits: o.commits}
	if len(o.recs) > 0 {
		st.OldestUnsent = o.oldest
	}
	return st, nil
}

// StreamID returns the outbox's stream id.
func (o *Outbox) StreamID() uint64 { return o.streamID }

// Appended returns how many records were ever appended.
func (o *Outbox) Appended() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.appended
}
