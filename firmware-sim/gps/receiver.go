package gps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// MaxRate is the highest output rate Receiver accepts, in epochs per second.
const MaxRate = 25

// Receiver emits one epoch of NMEA sentences every 1/Rate second of simulated
// time, from the state of its Vehicle at that instant.
type Receiver struct {
	// Vehicle is the receiver's own copy of the vehicle model; Run advances it
	// and nothing else may use it meanwhile.
	Vehicle *firmwaresim.Vehicle
	Clock   firmwaresim.Clock
	Rate    int    // epochs per simulated second, 1..MaxRate
	Talker  string // "GP" when empty
	// Until, if not zero, ends the output: epochs at or after it are not sent.
	Until time.Time
}

// EpochTime returns the time of epoch k (0 at start) at rate epochs per
// second: start + k/rate, truncated to the hundredth of a second that NMEA
// times carry.
func EpochTime(start time.Time, rate, k int) time.Time {
	return start.Add(time.Duration(int64(k) * int64(time.Second) / int64(rate))).Truncate(10 * time.Millisecond)
}

// FromState returns the fix a perfect receiver would compute from s.
func FromState(s firmwaresim.State) Fix {
	return Fix{
		Time: s.Time, Valid: s.FixValid, Lat: s.Lat, Lon: s.Lon, AltM: s.AltM,
		SpeedMps: s.SpeedMps, CourseDeg: s.CourseDeg, Quality: 1, Sats: s.Sats,
		HDOP: s.HDOP, VDOP: s.VDOP, PDOP: s.PDOP,
	}
}

// Run writes epochs to w, each in one Write, waiting on the Clock for each
// epoch's time, from the vehicle's start until Until or until ctx is done.
// After each epoch is written whole it calls onFix (if not nil) with the
// values the epoch carried, when the epoch holds a valid fix.
//
// A Write that blocks (nobody reads the port) holds the output back; the
// epochs due meanwhile follow as soon as it returns, so the bytes do not depend
// on the reader. Run returns nil once the Clock reaches Until, ctx.Err() when
// ctx is done, and the write error otherwise.
func (r *Receiver) Run(ctx context.Context, w io.Writer, onFix func(Fix)) error {
	if r.Rate < 1 || r.Rate > MaxRate {
		return fmt.Errorf("gps receiver: rate %d Hz outside 1..%d", r.Rate, MaxRate)
	}
	if r.Vehicle == nil || r.Clock == nil {
		return errors.New("gps receiver: no vehicle or clock")
	}
	talker := r.Talker
	if talker == "" {
		talker = "GP"
	}
	start := r.Vehicle.Config().Start
	for k := 0; ; k++ {
		t := EpochTime(start, r.Rate, k)
		if !r.Until.IsZero() && !t.Before(r.Until) {
			return r.Clock.SleepUntil(ctx, r.Until) // the drive ends at Until, not at the last epoch
		}
		if err := r.Clock.SleepUntil(ctx, t); err != nil {
			return err
		}
		e := Encode(talker, FromState(r.Vehicle.AdvanceTo(t)))
		if _, err := w.Write(e.Bytes()); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("gps receiver: write epoch %s: %w", t.Format(time.RFC3339Nano), err)
		}
		if e.Fix.Valid && onFix != nil {
			onFix(e.Fix)
		}
	}
}
