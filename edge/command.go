package edge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// CommandLog remembers, durably, the commands the agent has run and their
// results, so that a command delivered twice (MQTT QoS 1 is at least once)
// runs once and is answered the same way twice. edge/bolt keeps it in the
// outbox file. Methods are safe for concurrent use.
type CommandLog interface {
	// CommandResult returns the stored result of command id, and false when
	// the id was never run (or was forgotten after it expired).
	CommandResult(ctx context.Context, id string) (*telemetrypb.CommandResult, bool, error)
	// SaveCommandResult stores the result of command id, kept until a day
	// after expires.
	SaveCommandResult(ctx context.Context, id string, expires time.Time, res *telemetrypb.CommandResult) error
}

// Settings keeps small named values durably, so that they survive a
// restart: the report interval the cloud commanded. edge/bolt keeps them in
// the outbox file. Methods are safe for concurrent use.
type Settings interface {
	// Setting returns the value saved under name, and false when there is
	// none.
	Setting(ctx context.Context, name string) ([]byte, bool, error)
	// SaveSetting stores value under name, durably, in place of what was
	// there.
	SaveSetting(ctx context.Context, name string, value []byte) error
}

// PIDSetter is implemented by an OBD source that can change the PIDs it
// polls while it runs. SetPIDs takes Mode 01 PIDs (e.g. 0x0C) and returns an
// error for one it cannot poll, changing nothing then.
type PIDSetter interface {
	SetPIDs(pids []byte) error
}

// DTCReader is implemented by an OBD source that can read the stored
// diagnostic trouble codes on demand (Mode 03), e.g. "P0301".
type DTCReader interface {
	ReadDTCs(ctx context.Context) ([]string, error)
}

// ErrNotSupported is wrapped by command errors for what this agent's sources
// cannot do; the CommandResult says so rather than faking success.
var ErrNotSupported = errors.New("not supported")

// Commander runs the cloud's commands (telemetrypb.Command): each id at most
// once, none after it expired. Fields left nil make the commands that need
// them fail with ErrNotSupported.
type Commander struct {
	Log CommandLog
	// SetReportInterval changes how long the uplink lets a partial batch
	// wait at least (uplink.min_batch_age).
	SetReportInterval func(time.Duration) error
	// Settings, if set, keeps a commanded report interval, with
	// ConfiguredReportInterval (the configuration's, which it overrides), so
	// that RestoreReportInterval applies it again after a restart.
	Settings                 Settings
	ConfiguredReportInterval time.Duration
	PIDs                     PIDSetter
	DTCs                     DTCReader
	// ReportStatus publishes a status report now.
	ReportStatus func(ctx context.Context) error
	Logger       *slog.Logger
	Now          func() time.Time // nil means time.Now
}

// Report interval bounds for COMMAND_TYPE_SET_REPORT_INTERVAL.
const (
	MinReportInterval = 100 * time.Millisecond
	MaxReportInterval = time.Hour
)

// reportIntervalSetting names the commanded report interval in Settings:
// 16 bytes, the interval and the configured interval it overrode, each in
// nanoseconds, big-endian.
const reportIntervalSetting = "report_interval"

// RestoreReportInterval applies the report interval last commanded, kept in
// Settings, and returns it with true. A command outlives restarts but not a
// change of the configuration: when ConfiguredReportInterval differs from
// the one the command overrode, the configuration is the newer intent and
// nothing is applied. It returns false when nothing is applied, and an error
// when Settings fails or SetReportInterval refuses the stored value.
func (c *Commander) RestoreReportInterval(ctx context.Context) (time.Duration, bool, error) {
	if c.Settings == nil || c.SetReportInterval == nil {
		return 0, false, nil
	}
	v, ok, err := c.Settings.Setting(ctx, reportIntervalSetting)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 16 {
		return 0, false, fmt.Errorf("stored report interval: %w: %d bytes", ErrCorrupt, len(v))
	}
	d, configured := time.Duration(binary.BigEndian.Uint64(v)), time.Duration(binary.BigEndian.Uint64(v[8:]))
	if configured != c.ConfiguredReportInterval {
		return 0, false, nil
	}
	if err := c.SetReportInterval(d); err != nil {
		return 0, false, fmt.Errorf("stored report interval: %w", err)
	}
	return d, true, nil
}

// Run runs cmd unless it expired or already ran, and returns its result:
// for a repeated id, the stored result of the first run. The result is
// stored before Run returns; only a failure to read or write the log is
// returned as an error (the command must then not be acknowledged, so that
// it comes again).
func (c *Commander) Run(ctx context.Context, cmd *telemetrypb.Command) (*telemetrypb.CommandResult, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	id := cmd.GetId()
	if id == "" || len(id) > 128 {
		return &telemetrypb.CommandResult{Id: id, Error: "command id must be 1 to 128 bytes", UnixMs: now().UnixMilli()}, nil
	}
	if prev, ok, err := c.Log.CommandResult(ctx, id); err != nil {
		return nil, fmt.Errorf("command %s: %w", id, err)
	} else if ok {
		return prev, nil
	}
	expires := time.UnixMilli(cmd.GetExpiresUnixMs())
	if cmd.GetExpiresUnixMs() <= 0 || !now().Before(expires) {
		// Not stored: an expired command never runs, however often it comes.
		return &telemetrypb.CommandResult{Id: id, Error: "expired", UnixMs: now().UnixMilli()}, nil
	}
	res := &telemetrypb.CommandResult{Id: id}
	if err := c.exec(ctx, cmd, res); err != nil {
		res.Error = err.Error()
	} else {
		res.Ok = true
	}
	res.UnixMs = now().UnixMilli()
	if err := c.Log.SaveCommandResult(ctx, id, expires, res); err != nil {
		return nil, fmt.Errorf("command %s: %w", id, err)
	}
	if c.Logger != nil {
		c.Logger.Info("command run", "id", id, "type", cmd.GetType().String(), "ok", res.Ok, "error", res.Error)
	}
	return res, nil
}

func (c *Commander) exec(ctx context.Context, cmd *telemetrypb.Command, res *telemetrypb.CommandResult) error {
	switch cmd.GetType() {
	case telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL:
		d := time.Duration(cmd.GetIntervalMs()) * time.Millisecond
		if d < MinReportInterval || d > MaxReportInterval {
			return fmt.Errorf("interval_ms %d: must be %d to %d", cmd.GetIntervalMs(), MinReportInterval.Milliseconds(), MaxReportInterval.Milliseconds())
		}
		if c.SetReportInterval == nil {
			return fmt.Errorf("set report interval: %w", ErrNotSupported)
		}
		if c.Settings != nil {
			v := binary.BigEndian.AppendUint64(nil, uint64(d))
			v = binary.BigEndian.AppendUint64(v, uint64(c.ConfiguredReportInterval))
			if err := c.Settings.SaveSetting(ctx, reportIntervalSetting, v); err != nil {
				return fmt.Errorf("set report interval: %w", err)
			}
		}
		return c.SetReportInterval(d)
	case telemetrypb.CommandType_COMMAND_TYPE_SET_PIDS:
		if len(cmd.GetPids()) == 0 {
			return errors.New("pids: at least one")
		}
		pids := make([]byte, len(cmd.GetPids()))
		for i, p := range cmd.GetPids() {
			// PIDs come as mode<<8|pid (0x010C) or as the bare Mode 01 PID.
			if p > 0xFF && p>>8 != 0x01 || p > 0x01FF {
				return fmt.Errorf("pids[%d] %#x: only Mode 01 PIDs can be polled", i, p)
			}
			pids[i] = byte(p)
		}
		if c.PIDs == nil {
			return fmt.Errorf("set PIDs: %w by this agent's OBD source", ErrNotSupported)
		}
		return c.PIDs.SetPIDs(pids)
	case telemetrypb.CommandType_COMMAND_TYPE_READ_DTCS:
		if c.DTCs == nil {
			return fmt.Errorf("read trouble codes: %w by this agent's OBD source", ErrNotSupported)
		}
		dtcs, err := c.DTCs.ReadDTCs(ctx)
		if err != nil {
			return fmt.Errorf("read trouble codes: %w", err)
		}
		res.Dtcs = dtcs
		return nil
	case telemetrypb.CommandType_COMMAND_TYPE_REPORT_STATUS:
		if c.ReportStatus == nil {
			return fmt.Errorf("report status: %w", ErrNotSupported)
		}
		return c.ReportStatus(ctx)
	}
	return fmt.Errorf("command type %d: %w", cmd.GetType(), ErrNotSupported)
}
