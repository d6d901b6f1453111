package uplink

import (
	"context"
	"maps"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// StatusInfo is what a status report says besides the outbox and the
// Sender's own figures.
type StatusInfo struct {
	AgentVersion string
	Started      time.Time        // for the uptime
	Fix          edge.FixReporter // nil: the fix state is not reported
	// Report, if set, adds to each status report what other parts of the
	// agent report (the clock, the outbox's storage, the OBD adapter).
	Report func(*telemetrypb.Status)
}

// Status builds the agent's status report at time at: online or the last
// will's offline, the outbox's depth, bytes, oldest unsent age and drop
// counters, the fix state, the round trip to the cloud and every counter of
// the Sender's edge.Counters (the agent's).
// It returns an error only when the outbox cannot say its state.
func (s *Sender) Status(ctx context.Context, online bool, at time.Time, info StatusInfo) (*telemetrypb.Status, error) {
	st, err := s.outbox.Stats(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	r := &telemetrypb.Status{
		VehicleId:         s.cfg.VehicleID,
		Online:            online,
		UnixMs:            at.UnixMilli(),
		AgentVersion:      info.AgentVersion,
		StreamId:          st.StreamID,
		NextSeq:           st.NextSeq,
		OutboxDepth:       st.Depth,
		OutboxBytes:       st.Bytes,
		OldestUnsentAgeMs: st.OldestUnsentAge(now).Milliseconds(),
		Dropped:           st.Dropped,
		RttMs:             s.rttMs.Load(),
		Counters:          s.counters.Snapshot(),
	}
	if !info.Started.IsZero() {
		r.UptimeMs = now.Sub(info.Started).Milliseconds()
	}
	maps.Copy(r.Counters, st.Counters())
	if info.Fix != nil {
		fs := info.Fix.FixState()
		r.FixMode = uint32(max(fs.Mode, 0))
		if !fs.NoFixSince.IsZero() {
			r.NoFixSinceUnixMs = fs.NoFixSince.UnixMilli()
		}
	}
	if info.Report != nil {
		info.Report(r)
	}
	return r, nil
}
