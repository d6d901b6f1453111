package ingest

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// batch gathers queued items into micro-batches and hands each to a
// committer on out (see Pipeline for the rules). When Run is stopping it
// hands over what it holds and what is queued, then closes out.
func (p *Pipeline) batch(ctx context.Context, out chan<- []*item) {
	defer close(out)
	var (
		cur   []*item
		rows  int
		timer = time.NewTimer(time.Hour)
		ready bool // MaxBatchDelay has passed since cur's first item
	)
	timer.Stop()
	defer timer.Stop()
	for {
		full := len(cur) >= p.MaxBatchMessages || rows >= p.MaxBatchRows
		var take <-chan *item
		if !full {
			take = p.queue
		}
		var give chan<- []*item
		if len(cur) > 0 && (full || ready || p.MaxBatchDelay <= 0 && len(p.places) == 0) {
			give = out
		}
		select {
		case it := <-take:
			<-p.places
			if len(cur) == 0 && p.MaxBatchDelay > 0 {
				timer.Reset(p.MaxBatchDelay)
			}
			cur = append(cur, it)
			rows += it.records()
		case give <- cur:
			cur, rows, ready = nil, 0, false
			timer.Stop()
		case <-timer.C:
			ready = true
		case <-p.stopping:
			for more := true; more; {
				select {
				case it := <-p.queue:
					<-p.places
					cur = append(cur, it)
				default:
					more = false
				}
			}
			if len(cur) == 0 {
				return
			}
			select {
			case out <- cur:
			case <-ctx.Done():
				p.release(cur)
			}
			return
		}
	}
}

// release forgets items that will not be acknowledged now: the broker keeps
// their messages and delivers them again.
func (p *Pipeline) release(items []*item) {
	for _, it := range items {
		p.held.remove(it.held)
	}
}

// commitBatch commits a micro-batch, then acknowledges each of its messages.
// When ctx ends first, the messages not yet acknowledged are released.
func (p *Pipeline) commitBatch(ctx context.Context, items []*item) {
	stored := p.store(ctx, items)
	if len(stored) < len(items) {
		p.release(slices.DeleteFunc(slices.Clone(items), func(it *item) bool { return slices.Contains(stored, it) }))
	}
	p.noteLive(stored)
	p.acknowledge(ctx, stored)
}

// store commits items in one transaction, retrying while the store is
// unavailable. When the store refuses the data (EINVALID), it commits each
// half on its own, down to the single message refused, which becomes a dead
// letter. Answers to commands the store does not know become dead letters,
// committed next. It returns the items whose effect is committed: all,
// unless ctx ended first.
func (p *Pipeline) store(ctx context.Context, items []*item) []*item {
	c := &cloud.Commit{}
	var answered []*item // by index in c.Answers
	var statused []*item // by index in c.Statuses
	records := 0
	for _, it := range items {
		if it.accepted != nil {
			c.Batches = append(c.Batches, it.accepted)
			records += it.accepted.Len()
		}
		if it.status != nil {
			c.Statuses = append(c.Statuses, *it.status)
			statused = append(statused, it)
		}
		if it.answer != nil {
			c.Answers = append(c.Answers, *it.answer)
			answered = append(answered, it)
		}
		if it.dead != nil {
			c.DeadLetters = append(c.DeadLetters, *it.dead)
		}
		if it.received.After(c.ReceivedAt) {
			c.ReceivedAt = it.received
			c.ClockLimit = it.limit
		}
	}
	res, took, err := p.commit(ctx, c)
	if err == nil {
		p.committed(c, items, records, res, took)
		for _, i := range res.AppliedStatuses {
			statused[i].statusApplied = true
		}
		var unknown []*item
		for _, i := range res.UnknownCommands {
			it := answered[i]
			it.answer = nil
			it.deadLetter(ReasonUnknownCommand, "answer to command "+c.Answers[i].CommandID+", which the vehicle does not have")
			unknown = append(unknown, it)
		}
		if len(unknown) == 0 {
			return items
		}
		if stored := p.store(ctx, unknown); len(stored) < len(unknown) {
			return slices.DeleteFunc(slices.Clone(items), func(it *item) bool {
				return slices.Contains(unknown, it) && !slices.Contains(stored, it)
			})
		}
		return items
	}
	if ctx.Err() != nil {
		return nil // the broker keeps the messages
	}
	if len(items) > 1 {
		p.Logger.Warn("the database refused a micro-batch; committing its halves apart", "messages", len(items), "err", err)
		half := len(items) / 2
		return append(p.store(ctx, items[:half]), p.store(ctx, items[half:])...)
	}
	it := items[0]
	if it.accepted != nil || it.status != nil || it.answer != nil {
		p.refuse(it, err)
		return p.store(ctx, items)
	}
	// Not even the dead letter went in (it cannot be: its text is made
	// storable). Acknowledge it anyway rather than hold a slot of the
	// broker's window for good; count and log it.
	p.stats.dropped.Add(1)
	it.log.Error("the database refused a dead letter; message dropped", "vehicle_id", it.vehicle, "reason", it.dead.Reason, "err", err)
	it.dead, it.protoAck = nil, false
	return items
}

// committed counts what a successful commit wrote.
func (p *Pipeline) committed(c *cloud.Commit, items []*item, records int, res cloud.CommitResult, took time.Duration) {
	s := &p.stats
	s.commits.Add(1)
	s.records.Add(int64(records))
	s.inserted.Add(res.Inserted)
	var rows [3]int64
	for _, b := range c.Batches {
		rows[0] += int64(len(b.Positions))
		rows[1] += int64(len(b.OBD))
		rows[2] += int64(len(b.Events))
	}
	s.add(&s.rows, KindPosition, rows[0])
	s.add(&s.rows, KindOBD, rows[1])
	s.add(&s.rows, KindEvent, rows[2])
	s.add(&s.rows, KindStatus, int64(len(c.Statuses)))
	s.add(&s.rows, KindCommandResult, int64(len(c.Answers)-len(res.UnknownCommands)))
	s.add(&s.rows, KindDeadLetter, int64(len(c.DeadLetters)))
	for _, it := range items {
		if it.dead != nil {
			s.add(&s.deadLetters, it.deadReason, 1)
		}
	}
	if p.OnCommit != nil {
		p.OnCommit(CommitInfo{Messages: len(items), Records: records, Inserted: res.Inserted, Duration: took})
	}
}

// commit stores c, retrying with backoff until it succeeds, the store refuses
// the data (EINVALID, returned), or ctx is done (ctx's error). It returns how
// long the successful attempt took. An empty c is not sent to the store.
func (p *Pipeline) commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, time.Duration, error) {
	if len(c.Batches) == 0 && len(c.Statuses) == 0 && len(c.Answers) == 0 && len(c.DeadLetters) == 0 {
		return cloud.CommitResult{}, 0, nil
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := p.Store.Commit(ctx, c)
		if err == nil {
			took := time.Since(start)
			p.health.succeeded()
			return res, took, nil
		}
		if cloud.ErrorCode(err) == cloud.EINVALID || ctx.Err() != nil {
			if ctx.Err() == nil {
				p.health.succeeded() // the database answered
			}
			return res, 0, errors.Join(err, ctx.Err())
		}
		p.stats.storeRetries.Add(1)
		p.health.failed(p.Now(), err)
		d := cloud.Backoff(p.RetryMin, p.RetryMax, attempt)
		if logEvery(attempt) {
			p.Logger.Warn("commit failed; not acknowledging, will retry", "attempt", attempt, "backoff", d,
				"messages", len(c.Batches)+len(c.Statuses)+len(c.Answers)+len(c.DeadLetters), "err", err)
		}
		if !sleep(ctx, d) {
			return res, 0, ctx.Err()
		}
	}
}

// BatchVersion is the highest Batch version the pipeline reads, which every
// Ack it publishes carries (Ack.version): agents send version 2 only to a
// cloud that says it reads it.
const BatchVersion = telemetry.Version

// acknowledge publishes the Ack of every committed batch that needs one, all
// at once, and acknowledges each message once its Ack is confirmed (or at
// once when it needs none). Failed publishes are retried with backoff; when
// ctx ends, the messages not yet acknowledged are released.
func (p *Pipeline) acknowledge(ctx context.Context, items []*item) {
	var pending []*item
	var out []Outgoing
	for _, it := range items {
		if !it.protoAck {
			p.ack(it)
			continue
		}
		a := telemetry.NewAck(it.vehicle, it.batch.StreamID, it.committed, it.rejected, it.reason)
		a.Version = BatchVersion // an agent switches to version 2 on the first Ack that says so
		payload, err := telemetry.Encode(a, false)
		if err != nil {
			it.log.Error("encode ack", "err", err) // cannot happen for a valid Ack; the agent will resend
			p.ack(it)
			continue
		}
		topic, _ := p.Namespace.Topic(it.vehicle, telemetry.KindAck) // the vehicle came from Parse: valid
		pending = append(pending, it)
		out = append(out, Outgoing{Topic: topic, Payload: payload})
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		errs := p.Acks.Publish(ctx, out)
		var again []*item
		var againOut []Outgoing
		var last error
		for i, it := range pending {
			if errs[i] == nil {
				p.stats.acksPublished.Add(1)
				p.ack(it)
				continue
			}
			again, againOut, last = append(again, it), append(againOut, out[i]), errs[i]
		}
		pending, out = again, againOut
		if len(pending) == 0 {
			return
		}
		if ctx.Err() != nil {
			p.release(pending)
			return
		}
		p.stats.ackRetries.Add(int64(len(pending)))
		d := cloud.Backoff(p.RetryMin, p.RetryMax, attempt)
		if logEvery(attempt) {
			p.Logger.Warn("ack publish failed; will retry", "acks", len(pending), "attempt", attempt, "backoff", d, "err", last)
		}
		if !sleep(ctx, d) {
			p.release(pending)
			return
		}
	}
}

// ack acknowledges an item's message to the broker.
func (p *Pipeline) ack(it *item) {
	it.msg.Ack()
	p.stats.acked.Add(1)
	p.held.remove(it.held)
}
