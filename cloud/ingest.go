package cloud

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// DefaultMaxClockAhead is how far past the server's clock a record or status
// may be stamped and still become a vehicle's latest state.
const DefaultMaxClockAhead = 5 * time.Minute

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

// CommandAnswer is an agent's answer to one of its vehicle's commands, as
// ingest stores it.
type CommandAnswer struct {
	VehicleID string
	CommandID string
	Result    CommandResult
}

// Commit is what ingest writes to durable storage in one transaction: the
// accepted records of one or more batches, agents' statuses, answers to
// commands, and the dead letters of what was refused. Nothing in it may be
// acknowledged before the transaction commits.
type Commit struct {
	Batches     []*telemetry.Batch
	Statuses    []DeviceStatus // applied in order
	Answers     []CommandAnswer
	DeadLetters []DeadLetter
	ReceivedAt  time.Time
	// ClockLimit, when set, is the latest time a record or status may carry
	// and still become a vehicle's latest state: fixes stamped after it are
	// stored but never become the vehicle's position, and a stored latest
	// state stamped after it (from before this rule) gives way to any
	// newer commit.
	ClockLimit time.Time
}

// CommitResult says what a Commit changed.
type CommitResult struct {
	// Inserted counts the records written now; records already stored (a
	// replay) are not rewritten and not counted.
	Inserted int64
	// UnknownCommands lists the indexes in Commit.Answers of the answers to
	// commands that the store does not know (nothing was stored for them).
	UnknownCommands []int
	// AppliedStatuses lists the indexes in Commit.Statuses of the statuses
	// that changed a vehicle's stored status (newer ones, and last wills
	// that apply), for the live stream.
	AppliedStatuses []int
}

// IngestStore is ingest's durable storage (PostgreSQL). Implementations are
// safe for concurrent use.
type IngestStore interface {
	// Commit writes c in one transaction, skipping records whose identity
	// (vehicle, stream, seq, time) is already stored, applying each status
	// if it is newer than the stored one (see StatusService.SaveStatus) and
	// the first answer to each command, and returns once the transaction has
	// committed. On failure nothing of c is stored; the error has code
	// EUNAVAILABLE when the same call may succeed later (database down,
	// connection lost, deadlock) and EINVALID when the data itself was
	// refused (retrying will not help).
	Commit(ctx context.Context, c *Commit) (CommitResult, error)
}

// Fix is one position of a batch with the vehicle and stream it belongs to.
type Fix struct {
	VehicleID string
	StreamID  uint64
	*telemetry.Position
}

// Time returns the fix's record time.
func (f Fix) Time() time.Time { return time.UnixMilli(f.UnixMs).UTC() }

// NewestFixes returns, per vehicle, the newest position of batches by record
// time (ties: the later one), leaving out those stamped after limit (unless
// limit is zero): such a fix is stored but never becomes a vehicle's latest
// state. The result is sorted by vehicle id.
func NewestFixes(batches []*telemetry.Batch, limit time.Time) []Fix {
	limitMs := limit.UnixMilli()
	newest := map[string]Fix{}
	for _, b := range batches {
		for i := range b.Positions {
			p := &b.Positions[i]
			if !limit.IsZero() && p.UnixMs > limitMs {
				continue
			}
			if cur, ok := newest[b.VehicleID]; !ok || p.UnixMs >= cur.UnixMs {
				newest[b.VehicleID] = Fix{b.VehicleID, b.StreamID, p}
			}
		}
	}
	out := make([]Fix, 0, len(newest))
	for _, f := range newest {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Fix) int { return cmp.Compare(a.VehicleID, b.VehicleID) })
	return out
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
