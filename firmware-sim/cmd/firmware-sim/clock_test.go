package main

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestScaledClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
		c := newScaledClock(sim0, 20)
		if got := c.Now(); !got.Equal(sim0) {
			t.Fatalf("Now() at start = %v, want %v", got, sim0)
		}
		real0 := time.Now()
		// 20 simulated seconds take one real second at speed 20.
		if err := c.SleepUntil(context.Background(), sim0.Add(20*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(real0); got != time.Second {
			t.Errorf("slept %v of real time, want 1s", got)
		}
		if got := c.Now(); !got.Equal(sim0.Add(20 * time.Second)) {
			t.Errorf("Now() = %v, want start + 20s", got)
		}
		// A time already past returns at once.
		if err := c.SleepUntil(context.Background(), sim0); err != nil || time.Since(real0) != time.Second {
			t.Errorf("SleepUntil(past) = %v after %v", err, time.Since(real0))
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		if err := c.SleepUntil(ctx, sim0.Add(time.Hour)); err != context.Canceled {
			t.Errorf("SleepUntil with ctx cancelled = %v", err)
		}
	})
}
