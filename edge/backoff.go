package edge

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff computes the delays between retries: exponential from Min, capped at
// Max, with "equal jitter" (each delay is uniformly random in [d/2, d]) so that
// a fleet that lost the same broker does not come back in lockstep. The zero
// value uses 200ms and 5s. A Backoff is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.
	Rand func() float64

	attempt int
}

// Next returns the delay before the next retry and advances the sequence.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 200 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	hi = max(hi, lo)
	d := lo
	for i := 0; i < b.attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	b.attempt++
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}

// Reset starts the sequence again from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits for d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
