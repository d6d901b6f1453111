package mqtt

import (
	"context"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// PublishCommand sends c to its vehicle's down/cmd topic at QoS 1 and waits
// for the broker's PUBACK; see cloud.CommandPublisher.
func (s *Session) PublishCommand(ctx context.Context, c *cloud.Command) error {
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
	topic, err := s.Namespace.Topic(c.VehicleID, telemetry.KindCmd)
	if err != nil {
		return cloud.Errorf(cloud.EINVALID, "%w", err)
	}
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker at %s", redactURL(s.URL))
	}
	if err := wait(ctx, client.Publish(topic, 1, false, payload), s.PublishTimeout); err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "publish command %s: %w", c.ID, hidePassword(err, s.URL))
	}
	return nil
}

var _ cloud.CommandPublisher = (*Session)(nil)
