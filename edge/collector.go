package edge

import (
	"context"
	"fmt"
	"log/slog"
	"time"
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
	// appends; past it the Collector stops reading its input, so sources
	// block instead of the agent growing without bound. Default 100000.
	MaxPending int
	Logger     *slog.Logger
	Counters   *Counters
	// OnCommit, if set, is called after every successful append with the
	// records just stored; the uplink uses it to wake up.
	OnCommit func([]Record)
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
	var lastErr error // of the last failed append; nil while appends succeed
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
		if err := c.Outbox.Append(ctx, pending); err != nil {
			c.inc("collector.append_errors")
			if lastErr == nil {
				log.Error("outbox append failed, holding records", "records", len(pending), "err", err)
			}
			lastErr = err
			return
		}
		if lastErr != nil {
			log.Info("outbox append recovered", "records", len(pending))
			lastErr = nil
		}
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
		var recv <-chan Record
		if len(pending) < maxPending {
			recv = in
		}
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
		case r := <-recv:
			pending = append(pending, r)
			if len(pending) >= maxRecs && lastErr == nil {
				flush(ctx)
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
