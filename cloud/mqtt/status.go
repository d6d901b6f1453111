package mqtt

import (
	"context"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// Statuses and command results ride on the ingester's connection. Statuses
// use a plain (not shared) subscription: a broker sends retained messages —
// every vehicle's last status — only to plain subscriptions, and every
// replica storing every status is harmless (the store keeps the newest).
// Command results use the shared subscription like batches.

// route handles a message that is not a batch and reports whether it did.
func (in *Ingester) route(m paho.Message) bool {
	_, kind, err := in.Namespace.Parse(m.Topic())
	if err != nil {
		return false
	}
	switch kind {
	case telemetry.KindStatus:
		in.onStatus(m)
		return true
	case telemetry.KindCmdResult:
		in.onResult(m)
		return true
	}
	return false
}

// extraFilters returns the subscriptions besides the batches': statuses
// with a StatusStore, command results with a CommandStore.
func (in *Ingester) extraFilters() map[string]byte {
	f := map[string]byte{}
	if in.StatusStore != nil {
		f[in.Namespace.Filter(telemetry.KindStatus)] = 1
	}
	if in.CommandStore != nil {
		f[in.Namespace.SharedFilter(in.ShareGroup, telemetry.KindCmdResult)] = 1
	}
	return f
}

// subscribeExtra subscribes to extraFilters, retrying like subscribe.
func (in *Ingester) subscribeExtra(ctx context.Context, c paho.Client) {
	filters := in.extraFilters()
	if len(filters) == 0 {
		return
	}
	for attempt := 1; c.IsConnectionOpen() && ctx.Err() == nil; attempt++ {
		err := wait(ctx, c.SubscribeMultiple(filters, in.receive), in.PublishTimeout)
		if err == nil {
			in.Logger.Info("subscribed", "filters", filters)
			return
		}
		in.Logger.Warn("subscribe failed", "filters", filters, "attempt", attempt, "err", err)
		if !sleep(ctx, in.backoff(attempt)) {
			return
		}
	}
}

// onStatus stores an agent's status (an empty payload clears a retained
// message: nothing to store) and then acknowledges it. A store failure is
// retried a few times; after that the message stays unacknowledged and the
// next status, or the retained one after a reconnect, brings the state.
func (in *Ingester) onStatus(m paho.Message) {
	vehicle, _, _ := in.Namespace.Parse(m.Topic())
	if len(m.Payload()) == 0 {
		m.Ack()
		return
	}
	var s telemetrypb.Status
	if err := telemetry.Decode(m.Payload(), &s); err != nil || s.GetVehicleId() != vehicle {
		in.Logger.Warn("bad status message dropped", "topic", m.Topic(), "payload_vehicle", s.GetVehicleId(), "err", err)
		m.Ack()
		return
	}
	ds := &cloud.DeviceStatus{
		VehicleID: vehicle, Online: s.GetOnline(), Time: time.UnixMilli(s.GetUnixMs()).UTC(),
		AgentVersion: s.GetAgentVersion(), StreamID: s.GetStreamId(), NextSeq: s.GetNextSeq(),
		OutboxDepth: s.GetOutboxDepth(), OutboxBytes: s.GetOutboxBytes(),
		OldestUnsentAge: time.Duration(s.GetOldestUnsentAgeMs()) * time.Millisecond, Dropped: s.GetDropped(),
		FixMode: int(s.GetFixMode()), RTT: time.Duration(s.GetRttMs()) * time.Millisecond, Counters: s.GetCounters(),
		Uptime: time.Duration(s.GetUptimeMs()) * time.Millisecond, ReceivedAt: in.Now().UTC(),
	}
	if ms := s.GetNoFixSinceUnixMs(); ms > 0 {
		ds.NoFixSince = time.UnixMilli(ms).UTC()
	}
	if in.retry("save device status", func(ctx context.Context) error { return in.StatusStore.SaveStatus(ctx, ds) }) {
		m.Ack()
	}
}

// retry runs f up to five times with backoff, each within PublishTimeout,
// and reports whether it succeeded.
func (in *Ingester) retry(what string, f func(context.Context) error) bool {
	for attempt := 1; attempt <= 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), in.PublishTimeout)
		err := f(ctx)
		cancel()
		if err == nil {
			return true
		}
		if cloud.ErrorCode(err) == cloud.EINVALID || cloud.ErrorCode(err) == cloud.ENOTFOUND {
			in.Logger.Warn(what+" refused", "err", err)
			return true // retrying cannot help; acknowledge
		}
		in.Logger.Warn(what+" failed", "attempt", attempt, "err", err)
		select {
		case <-in.stopping:
			return false
		case <-time.After(in.backoff(attempt)):
		}
	}
	return false
}
