package main

import (
	"context"
	"time"
)

// scaledClock runs simulated time at speed times real time from the moment
// it is made: simulated start sim0 at real time real0.
type scaledClock struct {
	sim0, real0 time.Time
	speed       float64
}

func newScaledClock(simStart time.Time, speed float64) *scaledClock {
	return &scaledClock{sim0: simStart, real0: time.Now(), speed: speed}
}

// Now returns the current simulated time.
func (c *scaledClock) Now() time.Time {
	return c.sim0.Add(time.Duration(float64(time.Since(c.real0)) * c.speed))
}

// SleepUntil waits until simulated time t or until ctx is done.
func (c *scaledClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Duration(float64(t.Sub(c.sim0))/c.speed) - time.Since(c.real0)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
