package mqtt

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// PublishCommand sends c to its vehicle's down/cmd topic at QoS 1 and waits
// for the broker's PUBACK; see cloud.CommandPublisher.
func (in *Ingester) PublishCommand(ctx context.Context, c *cloud.Command) error {
	pb := &telemetrypb.Command{Id: c.ID, ExpiresUnixMs: c.ExpiresAt.UnixMilli(), IntervalMs: c.IntervalMs}
	switch c.Type {
	case cloud.CommandSetReportInterval:
		pb.Type = telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL
	case cloud.CommandSetPIDs:
		pb.Type = telemetrypb.CommandType_COMMAND_TYPE_SET_PIDS
	case cloud.CommandReadDTCs:
		pb.Type = telemetrypb.CommandType_COMMAND_TYPE_READ_DTCS
	case cloud.CommandReportStatus:
		pb.Type = telemetrypb.CommandType_COMMAND_TYPE_REPORT_STATUS
	default:
		return cloud.Errorf(cloud.EINVALID, "unknown command type %q", c.Type)
	}
	for _, p := range c.PIDs {
		pb.Pids = append(pb.Pids, uint32(p))
	}
	payload, err := telemetry.Encode(pb, false)
	if err != nil {
		return cloud.Errorf(cloud.EINTERNAL, "encode command: %w", err)
	}
	topic, err := in.Namespace.Topic(c.VehicleID, telemetry.KindCmd)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "%w", err)
	}
	in.mu.Lock()
	client := in.client
	in.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker at %s", in.URL)
	}
	if err := wait(ctx, client.Publish(topic, 1, false, payload), in.PublishTimeout); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "publish command %s: %w", c.ID, err)
	}
	return nil
}

var _ cloud.CommandPublisher = (*Ingester)(nil)

// onResult stores an agent's answer to a command, then acknowledges it.
func (in *Ingester) onResult(m paho.Message) {
	vehicle, _, _ := in.Namespace.Parse(m.Topic())
	var r telemetrypb.CommandResult
	if err := telemetry.Decode(m.Payload(), &r); err != nil || r.GetId() == "" {
		in.Logger.Warn("bad command result dropped", "topic", m.Topic(), "err", err)
		m.Ack()
		return
	}
	res := &cloud.CommandResult{OK: r.GetOk(), Error: r.GetError(), DTCs: r.GetDtcs(),
		Time: time.UnixMilli(r.GetUnixMs()).UTC(), ReceivedAt: in.Now().UTC()}
	save := func(ctx context.Context) error {
		return in.CommandStore.SaveCommandResult(ctx, vehicle, r.GetId(), res)
	}
	if in.retry(fmt.Sprintf("save result of command %s", r.GetId()), save) {
		m.Ack()
	}
}
