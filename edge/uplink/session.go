package uplink

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// batch is a published batch awaiting its Ack.
type batch struct {
	ranges []telemetry.SeqRange // what is still unacked
	sent   time.Time
	live   bool
}

// session is what one connection has published: history is the backlog
// found at connect (seqs below liveFrom), oldest first; live is what was
// appended since. skip holds seqs published out of order (the newest fix).
type session struct {
	*Sender
	conn       Conn
	liveFrom   uint64
	hist, live uint64 // the highest seq published in each
	histDone   bool
	skip       map[uint64]bool
	inflight   []*batch  // in the order sent
	waiting    time.Time // when the partial live batch was first seen
}

// reset forgets what was published: everything unacked goes again.
func (ss *session) reset() {
	ss.hist, ss.live, ss.histDone = 0, ss.liveFrom-1, false
	ss.skip, ss.inflight, ss.waiting = map[uint64]bool{}, nil, time.Time{}
}

// newestFirst publishes the newest fix of the backlog alone.
func (ss *session) newestFirst(ctx context.Context) error {
	r, ok, err := ss.outbox.Newest(ctx, edge.KindPosition)
	if err != nil || !ok {
		return err
	}
	if err := ss.publish(ctx, []edge.Record{r}, false); err != nil {
		return err
	}
	ss.skip[r.Seq()] = true
	ss.counters.Inc("uplink.newest_first")
	return nil
}

// liveInflight reports whether a live batch awaits its Ack.
func (ss *session) liveInflight() bool {
	for _, b := range ss.inflight {
		if b.live {
			return true
		}
	}
	return false
}

// held reports whether a partial live batch must wait: for the ack of the
// live batch in flight, or for the minimum batch age.
func (ss *session) held() bool {
	return (ss.liveInflight() && !ss.cfg.NoDelay) || time.Since(ss.waiting) < ss.MinBatchAge()
}

// fill publishes while the window has room: live records first — a full
// batch at once, a partial one when no live batch is in flight and it has
// waited the minimum batch age — then history in batches of
// HistoryBatchRecords.
func (ss *session) fill(ctx context.Context) error {
	for len(ss.inflight) < ss.cfg.Inflight {
		if !ss.waiting.IsZero() && ss.held() {
			// A partial batch waits: read the records only if they may
			// have reached a full batch (seqs after ss.live are at most
			// NextSeq-1-ss.live records), not on every commit.
			st, err := ss.outbox.Stats(ctx)
			if err != nil {
				return err
			}
			if st.NextSeq <= ss.live || st.NextSeq-1-ss.live < uint64(ss.cfg.BatchMaxRecords) {
				break
			}
		}
		recs, err := ss.outbox.Unsent(ctx, ss.live, ss.cfg.BatchMaxRecords)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			ss.waiting = time.Time{}
			break
		}
		if len(recs) < ss.cfg.BatchMaxRecords {
			now := time.Now()
			if ss.waiting.IsZero() {
				ss.waiting = now
			}
			if ss.held() {
				break
			}
		}
		if err := ss.publish(ctx, recs, true); err != nil {
			return err
		}
		ss.live, ss.waiting = recs[len(recs)-1].Seq(), time.Time{}
	}
	for !ss.histDone && len(ss.inflight) < ss.cfg.Inflight {
		recs, err := ss.outbox.Unsent(ctx, ss.hist, ss.cfg.HistoryBatchRecords)
		if err != nil {
			return err
		}
		if len(recs) == 0 || recs[0].Seq() >= ss.liveFrom {
			ss.histDone = true
			break
		}
		last := recs[len(recs)-1].Seq()
		kept := recs[:0]
		for _, r := range recs {
			if r.Seq() >= ss.liveFrom {
				break
			}
			if !ss.skip[r.Seq()] {
				kept = append(kept, r)
			}
		}
		if len(kept) > 0 {
			if err := ss.publish(ctx, kept, false); err != nil {
				return err
			}
		}
		ss.hist = min(last, ss.liveFrom-1)
	}
	return nil
}

// sleep returns how long the session may wait for an event: until the
// partial live batch reaches the minimum age (when it could go then), or
// the oldest batch in flight times out.
func (ss *session) sleep() time.Duration {
	d := time.Hour
	if !ss.waiting.IsZero() && (!ss.liveInflight() || ss.cfg.NoDelay) && len(ss.inflight) < ss.cfg.Inflight {
		d = min(d, ss.MinBatchAge()-time.Since(ss.waiting))
	}
	if len(ss.inflight) > 0 {
		d = min(d, ss.cfg.AckTimeout-time.Since(ss.inflight[0].sent))
	}
	return max(d, time.Millisecond)
}

// timedOut reports whether the oldest batch in flight waited AckTimeout.
func (ss *session) timedOut() bool {
	return len(ss.inflight) > 0 && time.Since(ss.inflight[0].sent) >= ss.cfg.AckTimeout
}

// publish encodes recs as one batch, in the version the cloud reads, and
// hands it to the connection.
func (ss *session) publish(ctx context.Context, recs []edge.Record, live bool) error {
	b := telemetry.Batch{VehicleID: ss.cfg.VehicleID, StreamID: ss.outbox.StreamID()}
	for i := range recs {
		recs[i].AddTo(&b)
	}
	kind, payload, err := ss.encode(&b)
	if err != nil {
		return fmt.Errorf("encode batch: %w", err) // a bug, not the network's fault
	}
	if err := ss.conn.Publish(ctx, kind, payload); err != nil {
		return fmt.Errorf("publish batch: %w", err)
	}
	ss.counters.Inc("uplink.batches")
	ss.counters.Add("uplink.records_sent", uint64(len(recs)))
	ss.counters.Add("uplink.bytes_sent", uint64(len(payload)))
	ss.inflight = append(ss.inflight, &batch{ranges: b.SeqRanges(), sent: time.Now(), live: live})
	return nil
}

// encode writes b in the version the Sender uses now.
func (s *Sender) encode(b *telemetry.Batch) (telemetry.Kind, []byte, error) {
	if s.Version() >= 2 {
		p, err := telemetry.EncodeBatchV2(b, true)
		return telemetry.KindBatchV2, p, err
	}
	p, err := telemetry.EncodeBatch(b, true)
	return telemetry.KindBatch, p, err
}

// apply deletes what a covers from the outbox and from the window. Acks
// for another vehicle or stream (an old outbox file) are counted and
// ignored.
func (ss *session) apply(ctx context.Context, a *telemetrypb.Ack) error {
	if a.GetVehicleId() != ss.cfg.VehicleID || a.GetStreamId() != ss.outbox.StreamID() {
		ss.counters.Inc("uplink.acks_foreign")
		return nil
	}
	if v := int32(min(a.GetVersion(), 15)); v > ss.cloudReads.Load() {
		ss.cloudReads.Store(v)
	}
	committed, rejected := telemetry.AckRanges(a)
	all := telemetry.MergeRanges(append(committed, rejected...))
	n, err := ss.outbox.Ack(ctx, all)
	if err != nil {
		return err
	}
	ss.counters.Inc("uplink.acks")
	ss.counters.Add("uplink.records_acked", uint64(n))
	if len(rejected) > 0 {
		var k uint64
		for _, r := range rejected {
			k += r.Len()
		}
		ss.counters.Add("uplink.records_rejected", k)
		ss.log.Warn("cloud rejected records", "ranges", rejected, "reason", a.GetReason())
	}
	kept := ss.inflight[:0]
	for _, b := range ss.inflight {
		if b.ranges = subtract(b.ranges, all); len(b.ranges) > 0 {
			kept = append(kept, b)
			continue
		}
		ss.rttMs.Store(time.Since(b.sent).Milliseconds())
	}
	ss.inflight = kept
	return nil
}
