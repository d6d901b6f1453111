package cloud

import (
	"context"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// DeadLetter is a message, or part of one, that ingest refused: kept with the
// raw payload and the reason so that nothing is silently dropped.
type DeadLetter struct {
	Topic      string
	VehicleID  string // from the topic; "" when the topic has none
	StreamID   uint64 // from the payload; 0 when it did not decode
	Payload    []byte // exactly as received
	Reason     string
	ReceivedAt time.Time
}

// Commit is what ingest writes to durable storage in one transaction: the
// accepted records of one or more batches and the dead letters of what was
// refused. Nothing in it may be acknowledged before the transaction commits.
type Commit struct {
	Batches     []*telemetry.Batch
	DeadLetters []DeadLetter
	ReceivedAt  time.Time
}

// CommitResult says what a Commit changed.
type CommitResult struct {
	// Inserted counts the records written now; records already stored (a
	// replay) are not rewritten and not counted.
	Inserted int64
}

// IngestStore is ingest's durable storage (PostgreSQL). Implementations are
// safe for concurrent use.
type IngestStore interface {
	// Commit writes c in one transaction, skipping records whose identity
	// (vehicle, stream, seq, time) is already stored, and returns once the
	// transaction has committed. On failure nothing of c is stored; the error
	// has code EUNAVAILABLE when the same call may succeed later (database
	// down, connection lost, deadlock) and EINVALID when the data itself was
	// refused (retrying will not help).
	Commit(ctx context.Context, c *Commit) (CommitResult, error)
}

// Pinger is a dependency that can say whether it is reachable, for readiness
// checks and `cloud-server check`.
type Pinger interface {
	// Ping returns nil when the dependency answers, else an error saying why.
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping calls f.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }
