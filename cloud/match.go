package cloud

import (
	"context"
	"time"
)

// Matcher snaps a track to roads (OSRM's match service).
type Matcher interface {
	// Match returns the matched geometry, distance and confidence of
	// track (positions in time order), with Status MatchMatched. The error
	// has code EUNAVAILABLE when the matcher cannot be reached, times out
	// or is overloaded (try again later), and EINVALID when the track
	// cannot be matched (no road near it: keep the raw track).
	Match(ctx context.Context, track []*Position) (*TripMatch, error)
}

// MatchStore is the storage the match job works on. Implementations are
// safe for concurrent use, by several replicas.
type MatchStore interface {
	// ClaimTripsToMatch leases up to n trips that ended and wait for
	// matching (pending, or unmatched and due again at now) until
	// now+lease, counting an attempt for each; trips leased by another
	// caller are skipped. A lease that runs out (a replica died) makes the
	// trip due again.
	ClaimTripsToMatch(ctx context.Context, now time.Time, n int, lease time.Duration) ([]*Trip, error)
	// TripTrack returns a vehicle's positions from from to to, both
	// included, in time order.
	TripTrack(ctx context.Context, vehicleID string, from, to time.Time) ([]*Position, error)
	// SaveMatch stores m for t if t is still at the revision it was
	// claimed at; next is when an unmatched trip is due again.
	SaveMatch(ctx context.Context, t *Trip, m TripMatch, next time.Time) error
}

// Match job defaults.
const (
	DefaultMatchBatch    = 10
	DefaultMatchLease    = 5 * time.Minute
	DefaultMatchRetryMin = time.Minute
	DefaultMatchRetryMax = time.Hour
)

// MatchJob matches ended trips to roads: those pending and, when the
// matcher was unavailable, those left unmatched, retried with a backoff.
// A trip whose track the matcher cannot match is marked failed and keeps
// its raw track for good.
type MatchJob struct {
	Store   MatchStore
	Matcher Matcher
	// Batch is how many trips one round claims (DefaultMatchBatch if 0);
	// Lease how long they stay claimed (DefaultMatchLease if 0).
	Batch int
	Lease time.Duration
	// RetryMin and RetryMax bound the backoff of unmatched trips: RetryMin
	// after the first attempt, doubling per attempt, at most RetryMax
	// (defaults DefaultMatchRetryMin and DefaultMatchRetryMax).
	RetryMin, RetryMax time.Duration
	Now                func() time.Time // time.Now if nil
}

// MatchStats counts what a round did.
type MatchStats struct {
	Matched, Unmatched, Failed int
}

// RunOnce claims up to Batch trips and matches each. It returns what
// became of them and the first storage error; matcher errors are recorded
// on the trips, not returned.
func (j *MatchJob) RunOnce(ctx context.Context) (MatchStats, error) {
	var st MatchStats
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	trips, err := j.Store.ClaimTripsToMatch(ctx, now(), or(j.Batch, DefaultMatchBatch), or(j.Lease, DefaultMatchLease))
	if err != nil {
		return st, err
	}
	for _, t := range trips {
		if ctx.Err() != nil {
			return st, ctx.Err() // the others wait for their lease to run out
		}
		track, err := j.Store.TripTrack(ctx, t.VehicleID, t.Start, t.End)
		if err != nil {
			return st, err
		}
		var m TripMatch
		switch res, err := j.match(ctx, track); ErrorCode(err) {
		case "":
			m = *res
			m.Status = MatchMatched
			st.Matched++
		case EINVALID:
			m = TripMatch{Status: MatchFailed, Error: ErrorMessage(err)}
			st.Failed++
		default:
			m = TripMatch{Status: MatchUnmatched, Error: ErrorMessage(err)}
			st.Unmatched++
		}
		if err := j.Store.SaveMatch(ctx, t, m, now().Add(j.backoff(t.Match.Attempts))); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (j *MatchJob) match(ctx context.Context, track []*Position) (*TripMatch, error) {
	if len(track) < 2 {
		return nil, Errorf(EINVALID, "a track of %d fixes cannot be matched", len(track))
	}
	return j.Matcher.Match(ctx, track)
}

// backoff returns how long an unmatched trip waits after its attempts-th
// attempt.
func (j *MatchJob) backoff(attempts int) time.Duration {
	d, hi := or(j.RetryMin, DefaultMatchRetryMin), or(j.RetryMax, DefaultMatchRetryMax)
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// or returns v, or def when v is zero.
func or[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
