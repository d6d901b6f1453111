// Package dispatch sends operators' commands to the agents: at once when
// one is created, and again later while its publish keeps failing, until
// the broker takes it, it is cancelled or it expires. It is plain Go over
// cloud.CommandService and cloud.CommandPublisher; replicas share the work
// through the store (a command is claimed by one replica at a time).
package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// Defaults of a Dispatcher (New).
const (
	DefaultInterval   = 5 * time.Second
	DefaultRetryAfter = 10 * time.Second
	DefaultGrace      = 5 * time.Second
	DefaultBatch      = 100
)

// Dispatcher publishes commands and retries those whose publish failed.
// Create it with New; Send may be called from any goroutine; Run once.
type Dispatcher struct {
	Commands  cloud.CommandService
	Publisher cloud.CommandPublisher
	Logger    *slog.Logger
	Now       func() time.Time

	// Interval is how often Run looks for pending commands.
	Interval time.Duration
	// RetryAfter is the least time between two attempts at one command
	// (across replicas).
	RetryAfter time.Duration
	// Grace leaves a new command to the request that created it for this
	// long before Run may retry it.
	Grace time.Duration
	// Batch is how many pending commands one look takes at most.
	Batch int
}

// New returns a Dispatcher with the defaults above.
func New(commands cloud.CommandService, publisher cloud.CommandPublisher) *Dispatcher {
	return &Dispatcher{Commands: commands, Publisher: publisher, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Interval: DefaultInterval, RetryAfter: DefaultRetryAfter, Grace: DefaultGrace, Batch: DefaultBatch}
}

// Send publishes c and records that the broker took it (c.SentAt is set).
// When the broker does not take it, c stays pending and Run retries it; the
// error (code EUNAVAILABLE) says why.
func (d *Dispatcher) Send(ctx context.Context, c *cloud.Command) error {
	if err := d.Publisher.PublishCommand(ctx, c); err != nil {
		return err
	}
	at := d.Now().UTC()
	if err := d.Commands.MarkSent(ctx, c.VehicleID, c.ID, at); err != nil {
		return err
	}
	c.SentAt = at
	return nil
}

// Run retries pending commands every Interval until ctx is done; it returns
// nil then. A failed look or publish is logged (at the start of an outage
// and then every doubling of failures) and tried again at the next look.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sent, err := d.retry(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			if failures&(failures-1) == 0 {
				d.Logger.Warn("pending commands not sent; will retry", "failures", failures, "err", err)
			}
			continue
		}
		if failures > 0 || sent > 0 {
			d.Logger.Info("pending commands sent", "sent", sent, "after_failures", failures)
		}
		failures = 0
	}
}

// retry claims the pending commands due and sends them. It returns how many
// it sent and the first error.
func (d *Dispatcher) retry(ctx context.Context) (int, error) {
	now := d.Now().UTC()
	cs, err := d.Commands.ClaimPending(ctx, now, now.Add(-d.Grace), d.RetryAfter, d.Batch)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, c := range cs {
		if err := d.Send(ctx, c); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}
