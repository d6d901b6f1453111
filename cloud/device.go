package cloud

import (
	"context"
	"fmt"
	"time"
)

// DeviceStatus is an agent's latest health report (its up/status message,
// retained by the broker, and its last will), kept per vehicle for the
// device health the operators see.
type DeviceStatus struct {
	VehicleID       string
	Online          bool
	Time            time.Time // agent clock, when the report was made
	OnlineSince     time.Time // when the current connection began; zero while offline
	AgentVersion    string
	StreamID        uint64
	NextSeq         uint64
	OutboxDepth     uint64
	OutboxBytes     uint64
	OldestUnsentAge time.Duration
	Dropped         uint64
	FixMode         int       // 1 no fix, 2 2D, 3 3D; 0 unknown
	NoFixSince      time.Time // zero while there is a fix
	RTT             time.Duration
	Counters        map[string]uint64 // serial, source, uplink and outbox counters
	Uptime          time.Duration
	// ClockSource is where the agent's own time stamps come from now; 0
	// unknown (an agent that does not report it).
	ClockSource ClockSource
	// ClockOffset is GNSS time minus the agent's system clock; 0 unknown.
	ClockOffset time.Duration
	// OutboxTrouble says what is wrong with the agent's outbox (a full
	// disk, a lowered cap); empty while it is fine or not reported.
	OutboxTrouble string
	// OBDState is the state of the agent's OBD adapter ("ok",
	// "bus_fault: CAN ERROR", "no_vehicle", ...); empty when not reported.
	OBDState   string
	ReceivedAt time.Time
}

// ClockSource says where an agent's own time stamps come from
// (telemetrypb.Status.clock_source).
type ClockSource int

// The clock sources an agent reports.
const (
	ClockUnknown  ClockSource = 0
	ClockSystem   ClockSource = 1 // the system clock, synchronised
	ClockGNSS     ClockSource = 2 // GNSS time
	ClockUnsynced ClockSource = 3 // the system clock, never synchronised
)

// String returns the API's name of c: "system", "gnss", "unsynced", "" for
// unknown and "unknown_N" for a value this server does not know.
func (c ClockSource) String() string {
	switch c {
	case ClockUnknown:
		return ""
	case ClockSystem:
		return "system"
	case ClockGNSS:
		return "gnss"
	case ClockUnsynced:
		return "unsynced"
	}
	return fmt.Sprintf("unknown_%d", int(c))
}

// StatusService keeps each vehicle's latest DeviceStatus. Implementations
// are safe for concurrent use.
type StatusService interface {
	// SaveStatus stores s if it is newer (by Time) than the stored status.
	// An offline status older than the stored one still applies when it is
	// the last will of the current connection (its Time is not before
	// OnlineSince): the agent died after its last report. It returns an
	// error with code EUNAVAILABLE when the store cannot be reached.
	SaveStatus(ctx context.Context, s *DeviceStatus) error
	// FindStatus returns a vehicle's status, or an error with code ENOTFOUND.
	FindStatus(ctx context.Context, vehicleID string) (*DeviceStatus, error)
	// FindStatusHistory returns one page of the statuses a vehicle's agent
	// reported (each one stored once, whatever its order of arrival),
	// ordered by agent time, and the cursor of the next page, nil on the
	// last; ENOTFOUND for an unknown vehicle.
	FindStatusHistory(ctx context.Context, f StatusFilter) ([]*DeviceStatus, *Cursor, error)
}

// StatusFilter selects a vehicle's reported statuses with From ≤ Time < To,
// like PositionFilter.
type StatusFilter struct {
	VehicleID string
	From, To  time.Time
	After     *Cursor
	Limit     int
}

// Cursor returns the keyset position just after s in its vehicle's status
// history: its time, then offline before online.
func (s *DeviceStatus) Cursor() Cursor {
	c := Cursor{Time: s.Time}
	if s.Online {
		c.Seq = 1
	}
	return c
}

// CommandType names a command as the API writes it.
type CommandType string

// The commands an agent accepts (telemetrypb.CommandType).
const (
	CommandSetReportInterval CommandType = "set_report_interval" // IntervalMs
	CommandSetPIDs           CommandType = "set_pids"            // PIDs, Mode 01
	CommandReadDTCs          CommandType = "read_dtcs"
	CommandReportStatus      CommandType = "report_status"
)

// Command is an operator's command to one vehicle's agent, with its result
// once the agent answered.
type Command struct {
	ID         string
	VehicleID  string
	Type       CommandType
	IntervalMs int64    // set_report_interval
	PIDs       []uint16 // set_pids: mode<<8 | pid, e.g. 0x010C
	CreatedAt  time.Time
	ExpiresAt  time.Time // the agent ignores it after this
	SentAt     time.Time // zero until the broker took it
	// CancelledAt is when an operator cancelled the command before it was
	// sent; zero otherwise.
	CancelledAt time.Time
	// IdempotencyKey, when set, is the client's key for the request that
	// created the command: the same key again gets this command back.
	IdempotencyKey string
	// RequestHash identifies the request that created the command (its
	// body), to tell a retry from another request reusing a key.
	RequestHash string
	Token       string // name of the token that created it
	Result      *CommandResult
}

// CommandResult is the agent's answer (up/cmd-result).
type CommandResult struct {
	OK         bool
	Error      string
	DTCs       []string
	Time       time.Time // agent clock
	ReceivedAt time.Time
}

// Status returns "done" or "failed" once answered, "cancelled" when cancelled
// before it was sent, "expired" when the deadline passed unanswered, "sent"
// once the broker took it, else "pending" (stored, to be sent: a publish
// that failed is retried).
func (c *Command) Status(now time.Time) string {
	switch {
	case c.Result != nil && c.Result.OK:
		return "done"
	case c.Result != nil:
		return "failed"
	case !c.CancelledAt.IsZero():
		return "cancelled"
	case !now.Before(c.ExpiresAt):
		return "expired"
	case !c.SentAt.IsZero():
		return "sent"
	}
	return "pending"
}

// CommandService stores commands and their results. Implementations are
// safe for concurrent use.
type CommandService interface {
	// CreateCommand stores a new command; ENOTFOUND for an unknown vehicle.
	// When c has an IdempotencyKey that the vehicle already has a command
	// for, nothing is stored: it returns that command and created false
	// (the caller compares RequestHash).
	CreateCommand(ctx context.Context, c *Command) (stored *Command, created bool, err error)
	// MarkSent records that the broker took the command, unless it was
	// cancelled meanwhile.
	MarkSent(ctx context.Context, vehicleID, id string, at time.Time) error
	// FindCommand returns a vehicle's command, or ENOTFOUND.
	FindCommand(ctx context.Context, vehicleID, id string) (*Command, error)
	// FindCommands returns one page of a vehicle's commands, newest first,
	// and the cursor of the next page (nil on the last); ENOTFOUND for an
	// unknown vehicle.
	FindCommands(ctx context.Context, f CommandFilter) ([]*Command, *Cursor, error)
	// CancelCommand cancels a command not yet sent and returns it;
	// ECONFLICT when it was sent, answered, cancelled or has expired.
	CancelCommand(ctx context.Context, vehicleID, id string, at time.Time) (*Command, error)
	// ClaimPending returns up to limit commands not sent, not cancelled,
	// not expired at now and created before olderThan, and marks them
	// attempted at now, so that another replica skips them until
	// retryAfter has passed.
	ClaimPending(ctx context.Context, now, olderThan time.Time, retryAfter time.Duration, limit int) ([]*Command, error)
	// SaveCommandResult stores the agent's answer to command id. A repeated
	// answer (the agent answers a redelivered command from its log) changes
	// nothing; an answer to an unknown command is ENOTFOUND.
	SaveCommandResult(ctx context.Context, vehicleID, id string, r *CommandResult) error
}

// CommandFilter selects one page of a vehicle's commands, newest first.
type CommandFilter struct {
	VehicleID string
	After     *Cursor // Time: created; Key: id
	Limit     int
}

// Cursor returns the keyset position just after c in its vehicle's list
// (newest first).
func (c *Command) Cursor() Cursor { return Cursor{Time: c.CreatedAt, Key: c.ID} }

// CommandPublisher sends a command to a vehicle's agent (the broker's
// down/cmd topic at QoS 1).
type CommandPublisher interface {
	// PublishCommand returns once the broker took the command, or an error
	// with code EUNAVAILABLE.
	PublishCommand(ctx context.Context, c *Command) error
}
