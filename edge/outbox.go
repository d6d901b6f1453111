package edge

import (
	"context"
	"errors"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Outbox keeps records durably until the cloud acknowledges them. It is the
// agent's source of truth: a record leaves it only when an Ack covers it (or,
// once caps exist, when the overflow policy drops it and counts it). edge/bolt
// implements it on bbolt. Every method is safe for concurrent use.
type Outbox interface {
	// Append stores recs in one durable transaction (one fsync), giving them
	// consecutive sequence numbers in slice order, written into recs with
	// SetSeq. On error nothing was stored, no sequence number was consumed and
	// recs keep seq 0; the error wraps ErrOutboxClosed after Close.
	Append(ctx context.Context, recs []Record) error

	// Unsent returns up to max stored records with seq > after, in seq order.
	// An empty slice means there is nothing past after.
	Unsent(ctx context.Context, after uint64, max int) ([]Record, error)

	// Ack deletes the records that the ranges cover and returns how many it
	// deleted. Ranges may cover seqs that were never stored or were already
	// deleted: Ack is idempotent.
	Ack(ctx context.Context, ranges []telemetry.SeqRange) (int, error)

	// Newest returns the stored record of kind with the highest seq, and
	// false when there is none among the newest stored records (the search
	// is bounded). The uplink sends it first after an outage.
	Newest(ctx context.Context, kind Kind) (Record, bool, error)

	// Stats reports the outbox's size and identity.
	Stats(ctx context.Context) (OutboxStats, error)

	// StreamID returns the random 64-bit id made when the outbox file was
	// created; with the vehicle id and seq it identifies every record.
	StreamID() uint64
}

// OutboxStats describes an outbox at one moment.
type OutboxStats struct {
	StreamID uint64
	NextSeq  uint64 // the seq the next appended record gets
	Depth    uint64 // records stored and not yet acknowledged
	Bytes    uint64 // encoded size of those records (keys and values, not file pages)
	// OldestUnsent is when the oldest stored record was appended (agent clock);
	// zero when the outbox is empty.
	OldestUnsent time.Time
	// Dropped counts the records the overflow policy removed, ever, in
	// this file (it survives restarts); the three counters after it say
	// why: positions thinned out of old history, oldest records dropped
	// because the outbox was full, records older than the age cap.
	Dropped        uint64
	DroppedThinned uint64
	DroppedOldest  uint64
	DroppedExpired uint64
	MaxBytes       int64  // the cap on the file's size; 0 means none
	Commits        uint64 // write transactions since Open: one per Append, one per Ack that deleted
	FileBytes      int64  // bytes the file takes on disk
	// CapBytes is the cap in force: MaxBytes, or less when the filesystem
	// under the outbox cannot hold MaxBytes (Trouble then says so).
	CapBytes int64
	FSBytes  int64  // size of the filesystem the outbox is on; 0 if unknown
	NoSpace  uint64 // commits since Open that met a full disk and were retried after dropping records
	// Trouble says what is wrong with the outbox's storage, "" when
	// nothing is: "filesystem full: ..." when the filesystem holds less than
	// MaxBytes.
	Trouble string
}

// OldestUnsentAge returns how long the oldest stored record has waited at now,
// or 0 for an empty outbox.
func (s OutboxStats) OldestUnsentAge(now time.Time) time.Duration {
	if s.OldestUnsent.IsZero() {
		return 0
	}
	return max(now.Sub(s.OldestUnsent), 0)
}

// Counters returns the drop counters by name, as the status report and the
// metrics carry them: outbox.dropped_thinned, outbox.dropped_oldest,
// outbox.dropped_expired.
func (s OutboxStats) Counters() map[string]uint64 {
	return map[string]uint64{
		"outbox.dropped_thinned": s.DroppedThinned,
		"outbox.dropped_oldest":  s.DroppedOldest,
		"outbox.dropped_expired": s.DroppedExpired,
	}
}

// ErrOutboxClosed is wrapped by errors from an Outbox used after Close.
var ErrOutboxClosed = errors.New("outbox closed")

// ErrCorrupt is wrapped by errors for stored data that cannot be trusted: an
// outbox file that is not a database, or a stored record that does not decode.
var ErrCorrupt = errors.New("corrupt data")
