package ingest

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// item is one received message with what to store and acknowledge for it.
type item struct {
	msg      Message
	held     uint64 // in Pipeline.held
	received time.Time
	limit    time.Time // received + MaxClockAhead
	vehicle  string    // from the topic; "" for a topic outside the protocol
	log      *slog.Logger

	// A batch: the decoded batch, the records accepted, and the Ack.
	batch, accepted     *telemetry.Batch
	committed, rejected []telemetry.SeqRange
	reason              string
	protoAck            bool

	status        *cloud.DeviceStatus
	statusApplied bool // the commit changed the stored status: announce it
	answer        *cloud.CommandAnswer

	dead       *cloud.DeadLetter
	deadReason string // one of Reasons
}

// records returns how many records the item would write.
func (it *item) records() int {
	if it.accepted == nil {
		return 0
	}
	return it.accepted.Len()
}

// prepare decodes and validates a message and says what to store and
// acknowledge for it.
func (p *Pipeline) prepare(m Message, held uint64) *item {
	received := p.Now().UTC()
	topic := m.Topic()
	it := &item{msg: m, held: held, received: received, limit: received.Add(p.MaxClockAhead), log: p.Logger.With("topic", topic)}
	vehicle, kind, err := p.Namespace.Parse(topic)
	if err == nil && kind != telemetry.KindBatch && kind != telemetry.KindBatchV2 && kind != telemetry.KindStatus && kind != telemetry.KindCmdResult {
		err = fmt.Errorf("kind %q is not one the cloud takes", kind)
	}
	if err != nil {
		it.deadLetter(ReasonTopic, "topic: "+err.Error())
		return it
	}
	it.vehicle = vehicle
	switch kind {
	case telemetry.KindBatch, telemetry.KindBatchV2:
		p.prepareBatch(it)
	case telemetry.KindStatus:
		p.prepareStatus(it)
	case telemetry.KindCmdResult:
		p.prepareAnswer(it)
	}
	return it
}

// deadLetter makes the whole message a dead letter for reason (one of
// Reasons), described by text.
func (it *item) deadLetter(reason, text string) {
	var stream uint64
	if it.batch != nil {
		stream = it.batch.StreamID
	}
	it.log.Warn("dead letter", "vehicle_id", it.vehicle, "reason", text)
	it.dead = &cloud.DeadLetter{Topic: it.msg.Topic(), VehicleID: it.vehicle, StreamID: stream,
		Payload: it.msg.Payload(), Reason: text, ReceivedAt: it.received}
	it.deadReason = reason
}

// prepareBatch decodes a batch of either version and validates it. A
// version 2 batch carries no vehicle id: it is the topic's, which the
// broker's access rules tie to the agent's identity. A version 1 batch names
// its vehicle, which validation compares with the topic's.
func (p *Pipeline) prepareBatch(it *item) {
	b, err := telemetry.DecodeBatchOn(it.vehicle, it.msg.Payload())
	if err != nil {
		it.deadLetter(ReasonDecode, "decode: "+err.Error())
		return
	}
	it.batch = b
	v := cloud.ValidateBatch(b, it.vehicle, it.received)
	it.accepted = v.Accepted
	if it.accepted != nil {
		it.committed = it.accepted.SeqRanges()
		p.countAhead(it.accepted, it.limit)
	}
	if !v.OK() {
		p.stats.rejected.Add(int64(len(v.Rejected)))
		it.deadLetter(ReasonInvalid, v.Reason())
	}
	it.rejected, it.reason = v.RejectedRanges(), v.Reason()
	it.protoAck = len(it.committed) > 0 || len(it.rejected) > 0 // an empty batch needs no Ack
}

// countAhead counts the records of b stamped after limit: stored, but never
// a vehicle's latest state.
func (p *Pipeline) countAhead(b *telemetry.Batch, limit time.Time) {
	ms := limit.UnixMilli()
	n := [3]int64{}
	for i := range b.Positions {
		if b.Positions[i].UnixMs > ms {
			n[0]++
		}
	}
	for i := range b.OBD {
		if b.OBD[i].UnixMs > ms {
			n[1]++
		}
	}
	for i := range b.Events {
		if b.Events[i].UnixMs > ms {
			n[2]++
		}
	}
	for i, kind := range []string{KindPosition, KindOBD, KindEvent} {
		p.stats.add(&p.stats.clockAhed, kind, n[i])
	}
}

// prepareStatus decodes an agent's status. An empty payload (a retained
// status being cleared) has nothing to store; a status that does not
// decode, names another vehicle or is stamped beyond MaxClockAhead is a dead
// letter.
func (p *Pipeline) prepareStatus(it *item) {
	payload := it.msg.Payload()
	if len(payload) == 0 {
		return
	}
	var s telemetrypb.Status
	if err := telemetry.Decode(payload, &s); err != nil {
		it.deadLetter(ReasonDecode, "decode status: "+err.Error())
		return
	}
	if s.GetVehicleId() != it.vehicle {
		it.deadLetter(ReasonInvalid, fmt.Sprintf("status of vehicle %q on the topic of %q", s.GetVehicleId(), it.vehicle))
		return
	}
	ds := &cloud.DeviceStatus{
		VehicleID: it.vehicle, Online: s.GetOnline(), Time: time.UnixMilli(s.GetUnixMs()).UTC(),
		AgentVersion: s.GetAgentVersion(), StreamID: s.GetStreamId(), NextSeq: s.GetNextSeq(),
		OutboxDepth: s.GetOutboxDepth(), OutboxBytes: s.GetOutboxBytes(),
		OldestUnsentAge: time.Duration(s.GetOldestUnsentAgeMs()) * time.Millisecond, Dropped: s.GetDropped(),
		FixMode: int(s.GetFixMode()), RTT: time.Duration(s.GetRttMs()) * time.Millisecond, Counters: s.GetCounters(),
		Uptime: time.Duration(s.GetUptimeMs()) * time.Millisecond, ReceivedAt: it.received,
		ClockSource: cloud.ClockSource(s.GetClockSource()), ClockOffset: time.Duration(s.GetClockOffsetMs()) * time.Millisecond,
		OutboxTrouble: s.GetOutboxTrouble(), OBDState: s.GetObdState(),
	}
	if cs := s.GetClockSource(); cs > math.MaxInt32 {
		it.deadLetter(ReasonInvalid, fmt.Sprintf("status clock source %d out of range", cs))
		return
	}
	if ms := s.GetNoFixSinceUnixMs(); ms > 0 {
		ds.NoFixSince = time.UnixMilli(ms).UTC()
	}
	if ds.Time.After(it.limit) {
		p.stats.add(&p.stats.clockAhed, KindStatus, 1)
		it.deadLetter(ReasonClockAhead, fmt.Sprintf("status time %s more than %s ahead of the server clock",
			ds.Time.Format(time.RFC3339Nano), p.MaxClockAhead))
		return
	}
	it.status = ds
}

// prepareAnswer decodes an agent's answer to a command; one that does not
// decode or names no command is a dead letter.
func (p *Pipeline) prepareAnswer(it *item) {
	var r telemetrypb.CommandResult
	if err := telemetry.Decode(it.msg.Payload(), &r); err != nil {
		it.deadLetter(ReasonDecode, "decode command result: "+err.Error())
		return
	}
	if r.GetId() == "" {
		it.deadLetter(ReasonInvalid, "command result without a command id")
		return
	}
	it.answer = &cloud.CommandAnswer{VehicleID: it.vehicle, CommandID: r.GetId(), Result: cloud.CommandResult{
		OK: r.GetOk(), Error: r.GetError(), DTCs: r.GetDtcs(), Time: time.UnixMilli(r.GetUnixMs()).UTC(), ReceivedAt: it.received}}
}

// refuse turns an item whose data the store refused into a dead letter of
// the whole message (for a batch, all its records rejected).
func (p *Pipeline) refuse(it *item, err error) {
	text := "refused by the database: " + cloud.ErrorMessage(err)
	it.log.Error("the database refused validated data: dead letter", "vehicle_id", it.vehicle, "err", err)
	if it.accepted != nil {
		p.stats.rejected.Add(int64(it.accepted.Len()))
		it.accepted, it.committed, it.rejected, it.reason = nil, nil, it.batch.SeqRanges(), text
	}
	it.status, it.answer = nil, nil
	it.deadLetter(ReasonRefused, text)
}
