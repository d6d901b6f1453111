package cloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// memMatchStore is a MatchStore over a slice of trips; every trip is due.
type memMatchStore struct {
	trips []*cloud.Trip
	track []*cloud.Position
	saved map[int64]cloud.TripMatch
	next  map[int64]time.Time
}

func (m *memMatchStore) ClaimTripsToMatch(_ context.Context, _ time.Time, n int, _ time.Duration) ([]*cloud.Trip, error) {
	var out []*cloud.Trip
	for _, t := range m.trips {
		if st := m.saved[t.ID].Status; st == "" || st == cloud.MatchUnmatched {
			t.Match.Attempts++
			out = append(out, t)
		}
	}
	return out[:min(n, len(out))], nil
}

func (m *memMatchStore) TripTrack(context.Context, string, time.Time, time.Time) ([]*cloud.Position, error) {
	return m.track, nil
}

func (m *memMatchStore) SaveMatch(_ context.Context, t *cloud.Trip, r cloud.TripMatch, next time.Time) error {
	m.saved[t.ID], m.next[t.ID] = r, next
	return nil
}

type matcherFunc func() (*cloud.TripMatch, error)

func (f matcherFunc) Match(context.Context, []*cloud.Position) (*cloud.TripMatch, error) { return f() }

func TestMatchJob(t *testing.T) {
	store := &memMatchStore{saved: map[int64]cloud.TripMatch{}, next: map[int64]time.Time{},
		trips: []*cloud.Trip{{ID: 1}, {ID: 2}}, track: newDrive().move(time.Minute, 10).in.Positions}
	var answer error
	job := &cloud.MatchJob{Store: store, Now: func() time.Time { return t0 },
		Matcher: matcherFunc(func() (*cloud.TripMatch, error) {
			if answer != nil {
				return nil, answer
			}
			return &cloud.TripMatch{DistanceM: 600, Confidence: 0.8}, nil
		})}
	answer = cloud.Errorf(cloud.EUNAVAILABLE, "OSRM down")
	st, err := job.RunOnce(context.Background())
	if err != nil || st.Unmatched != 2 {
		t.Fatalf("matcher down: %+v %v", st, err)
	}
	if s := store.saved[1]; s.Status != cloud.MatchUnmatched || s.Error != "OSRM down" || !store.next[1].Equal(t0.Add(time.Minute)) {
		t.Errorf("down: %+v next %v", s, store.next[1])
	}
	job.RunOnce(context.Background())
	job.RunOnce(context.Background())
	if !store.next[1].Equal(t0.Add(4 * time.Minute)) {
		t.Errorf("third attempt: next in %v, want 4m (doubling)", store.next[1].Sub(t0))
	}
	answer = nil
	if st, err := job.RunOnce(context.Background()); err != nil || st.Matched != 2 {
		t.Fatalf("matcher back: %+v %v", st, err)
	}
	if s := store.saved[2]; s.Status != cloud.MatchMatched || s.DistanceM != 600 {
		t.Errorf("matched: %+v", s)
	}
	store.saved = map[int64]cloud.TripMatch{}
	answer = cloud.Errorf(cloud.EINVALID, "NoMatch")
	if st, _ := job.RunOnce(context.Background()); st.Failed != 2 || store.saved[1].Status != cloud.MatchFailed {
		t.Errorf("no match: %+v %+v", st, store.saved[1])
	}
	store.saved = map[int64]cloud.TripMatch{}
	store.track = store.track[:1]
	if st, _ := job.RunOnce(context.Background()); st.Failed != 2 {
		t.Errorf("a track of one fix: %+v", st)
	}
}
