package edge

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Collector is the group commit: it gathers the records of every source from
// one channel and appends them to the Outbox in one transaction, so that the
// agent pays one fsync per commit instead of one per record. Commits come at
// most once every FlushInterval: a record arriving after a quieter spell is
// committed at once (with whatever else is already waiting), one arriving
// sooner waits until FlushInterval has passed since the last commit, and
// MaxRecords waiting are committed at once. A record thus waits at most
// FlushInterval, and at low rates not at all.
type Collector struct {
	Outbox        Outbox
	FlushInterval time.Duration // default 200ms
	MaxRecords    int           // default 1000
	// MaxPending bounds the records held in memory while the outbox refuses
	// appends; past it the Collector drops the oldest it holds
	// (collector.dropped), so that memory stays bounded and the newest
	// records keep coming in. Once appends work again, an
	// EventRecordsDropped (code "append_failed") says how many went.
	// Default 100000.
	MaxPending int
	Logger     *slog.Logger
	Counters   *Counters
	// OnCommit, if set, is called after every successful append with the
	// records just stored; the uplink uses it to wake up.
	OnCommit func([]Record)
	// Clock stamps the drop event (see Clock); nil: the system clock.
	Clock *Clock

	failing atomic.Pointer[error]
}

// Failing returns the error of the last append while appends fail (records
// wait in memory, and past MaxPending are dropped), nil while they work.
// Safe for concurrent use.
func (c *Collector) Failing() error {
	if p := c.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// Run reads in until ctx is done. Records read before then are appended before
// Run returns (with a fresh 5-second deadline), including those still waiting
// in in. Run returns ctx.Err(), or an error saying how many records that last
// append could not store.
func (c *Collector) Run(ctx context.Context, in <-chan Record) error {
	interval := c.FlushInterval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	maxRecs := c.MaxRecords
	if maxRecs <= 0 {
		maxRecs = 1000
	}
	maxPending := max(c.MaxPending, maxRecs)
	if c.MaxPending <= 0 {
		maxPending = max(100000, maxRecs)
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The timer is armed while records wait for the next commit slot.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	var last time.Time // when the last commit was tried
	var pending []Record
	var lastErr error  // of the last failed append; nil while appends succeed
	var dropped uint64 // records dropped since appends failed, not reported yet
	// flush appends what is pending. A failure keeps the records pending for
	// the next try; it is counted, and logged when it starts and ends.
	flush := func(ctx context.Context) {
		if armed {
			timer.Stop()
			armed = false
		}
		if len(pending) == 0 {
			return
		}
		last = time.Now()
		batch := pending
		if dropped > 0 {
			batch = append([]Record{EventRecord(telemetry.Event{Type: telemetry.EventRecordsDropped, Code: "append_failed",
				Value: int64(dropped), Detail: fmt.Sprintf("the outbox refused appends; the %d oldest records held in memory were dropped", dropped)}).
				Stamped(c.Clock.StampNow())}, pending...)
		}
		if err := c.Outbox.Append(ctx, batch); err != nil {
			c.inc("collector.append_errors")
			if lastErr == nil {
				log.Error("outbox append failed, holding records", "records", len(pending), "err", err)
			}
			lastErr = err
			c.failing.Store(&err)
			return
		}
		if lastErr != nil {
			log.Info("outbox append recovered", "records", len(pending), "dropped", dropped)
			lastErr = nil
			c.failing.Store(nil)
		}
		pending, dropped = batch, 0
		c.inc("collector.commits")
		if c.Counters != nil {
			c.Counters.Add("collector.records", uint64(len(pending)))
		}
		if c.OnCommit != nil {
			c.OnCommit(pending)
		}
		pending = nil
	}
	// schedule commits now when the last one is FlushInterval old (after
	// taking what else is already waiting in in), or arms the timer.
	schedule := func(ctx context.Context) {
		if armed || len(pending) == 0 {
			return
		}
		if wait := interval - time.Since(last); wait > 0 {
			timer.Reset(wait)
			armed = true
			return
		}
		for len(pending) < maxRecs {
			select {
			case r := <-in:
				pending = append(pending, r)
				continue
			default:
			}
			break
		}
		flush(ctx)
		if len(pending) > 0 { // the append failed: try again in an interval
			timer.Reset(interval)
			armed = true
		}
	}
	for {
		select {
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case r := <-in:
					pending = append(pending, r)
				default:
					drained = true
				}
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			flush(fctx)
			if len(pending) > 0 {
				return fmt.Errorf("final outbox append: %d records not stored: %w", len(pending), lastErr)
			}
			return ctx.Err()
		case r := <-in:
			pending = append(pending, r)
			if len(pending) >= maxRecs && lastErr == nil {
				flush(ctx)
			}
			if n := len(pending) - maxPending; n > 0 {
				// Appends fail: keep the newest, count the oldest going.
				pending = append(pending[:0:0], pending[n:]...)
				dropped += uint64(n)
				if c.Counters != nil {
					c.Counters.Add("collector.dropped", uint64(n))
				}
			}
			schedule(ctx)
		case <-timer.C:
			armed = false
			schedule(ctx)
		}
	}
}

func (c *Collector) inc(name string) {
	if c.Counters != nil {
		c.Counters.Inc(name)
	}
}
