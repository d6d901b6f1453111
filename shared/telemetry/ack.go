package telemetry

import "github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"

// NewAck builds the Ack for records of one stream: committed ones and, with the
// reason, rejected (dead-lettered) ones.
func NewAck(vehicleID string, streamID uint64, committed, rejected []SeqRange, reason string) *telemetrypb.Ack {
	return &telemetrypb.Ack{
		VehicleId: vehicleID,
		StreamId:  streamID,
		Committed: rangesToProto(committed),
		Rejected:  rangesToProto(rejected),
		Reason:    reason,
	}
}

// AckRanges returns the committed and rejected ranges of a, each merged and
// sorted. Ranges with First > Last are dropped.
func AckRanges(a *telemetrypb.Ack) (committed, rejected []SeqRange) {
	return MergeRanges(rangesFromProto(a.GetCommitted())), MergeRanges(rangesFromProto(a.GetRejected()))
}

func rangesToProto(rs []SeqRange) []*telemetrypb.SeqRange {
	out := make([]*telemetrypb.SeqRange, len(rs))
	for i, r := range rs {
		out[i] = &telemetrypb.SeqRange{First: r.First, Last: r.Last}
	}
	return out
}

func rangesFromProto(rs []*telemetrypb.SeqRange) []SeqRange {
	out := make([]SeqRange, len(rs))
	for i, r := range rs {
		out[i] = SeqRange{r.GetFirst(), r.GetLast()}
	}
	return out
}
