package edge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		rand float64
		want []time.Duration
	}{
		// Equal jitter: each delay lies in [d/2, d] of the capped exponential d.
		{"top of range", 0.999999999, []time.Duration{100, 200, 400, 800, 1000, 1000}},
		{"bottom of range", 0, []time.Duration{50, 100, 200, 400, 500, 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := edge.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return tt.rand }}
			for i, w := range tt.want {
				got := b.Next().Round(time.Millisecond)
				if got != w*time.Millisecond {
					t.Errorf("delay %d = %v, want %v", i, got, w*time.Millisecond)
				}
			}
			b.Reset()
			if got := b.Next().Round(time.Millisecond); got != tt.want[0]*time.Millisecond {
				t.Errorf("after Reset: %v, want %v", got, tt.want[0]*time.Millisecond)
			}
		})
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	var b edge.Backoff // defaults: 200ms to 5s
	seen := map[time.Duration]bool{}
	for range 50 {
		b.Reset()
		d := b.Next()
		if d < 100*time.Millisecond || d > 200*time.Millisecond {
			t.Fatalf("first delay %v outside [100ms, 200ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 first delays took only %d values: no jitter", len(seen))
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := edge.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a done context = %v", err)
	}
	if err := edge.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep(1ms) = %v", err)
	}
}
