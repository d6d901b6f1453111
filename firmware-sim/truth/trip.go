package truth

import (
	"fmt"
	"math"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
)

// TripRules are the cloud's trip thresholds that decide which trips the
// truth's boundaries make. The defaults are the cloud's defaults
// (cloud.DefaultTripConfig; an end-to-end test checks that they agree).
type TripRules struct {
	// StopDuration: an engine-off stop at least this long ends a trip.
	StopDuration time.Duration
	// MinDistance: a run of the engine shorter than this (m) is no trip.
	MinDistance float64
}

// DefaultTripRules returns the cloud's default thresholds.
func DefaultTripRules() TripRules { return TripRules{StopDuration: 5 * time.Minute, MinDistance: 100} }

// TripTolerance is how far a stored trip may be from the truth's.
type TripTolerance struct {
	// Time bounds the difference of starts and of ends. The cloud sees the
	// engine through the agent, which infers ignition from polling (an
	// off takes a few rounds), and without ignition data (an agent whose
	// clock is not GPS time) by motion alone: the trip then starts when the
	// vehicle leaves (3 to 10 s after the engine starts) and ends when it
	// stands (a few seconds before the engine stops).
	Time time.Duration
	// Distance is the relative difference allowed between the distance
	// stored (along the fixes) and the distance the model drove.
	Distance float64
}

// DefaultTripTolerance returns a minute and 2%.
func DefaultTripTolerance() TripTolerance { return TripTolerance{Time: time.Minute, Distance: 0.02} }

// Trip is a trip of the truth: from the engine's start to its stop, across
// engine-off stops shorter than the StopDuration.
type Trip struct {
	Start, End time.Time // End is zero while the trip goes on
	// DistanceM is what the model drove from Start to End (to the last
	// boundary while the trip goes on).
	DistanceM float64
}

// Ended reports whether the trip's end is known.
func (t Trip) Ended() bool { return !t.End.IsZero() }

func (t Trip) String() string {
	end := "(going on)"
	if t.Ended() {
		end = stamp(t.End)
	}
	return fmt.Sprintf("%s to %s, %.0f m", stamp(t.Start), end, t.DistanceM)
}

// Trips returns the trips of a vehicle's ignition lines by r. The last
// one ends at its ignition off when the drive ended, or when the truth
// runs on for StopDuration after it; otherwise it goes on.
func Trips(v Vehicle, r TripRules) []Trip {
	var out []Trip
	var cur *Trip
	var off *Line // the ignition off that may end cur
	closeAt := func(l *Line) {
		cur.End, cur.DistanceM = l.Time, l.DistanceM-cur.DistanceM
		if cur.DistanceM >= r.MinDistance {
			out = append(out, *cur)
		}
		cur, off = nil, nil
	}
	for i := range v.Ignition {
		l := &v.Ignition[i]
		switch {
		case l.State == "on" && cur == nil:
			cur = &Trip{Start: l.Time, DistanceM: l.DistanceM}
		case l.State == "on" && off != nil && l.Time.Sub(off.Time) >= r.StopDuration:
			closeAt(off)
			cur = &Trip{Start: l.Time, DistanceM: l.DistanceM}
		case l.State == "on":
			off = nil // a short stop: the trip goes on
		case l.State == "off" && cur != nil:
			off = l
		}
	}
	switch {
	case cur == nil:
	case off != nil && (v.Ended || v.Last.Sub(off.Time) >= r.StopDuration):
		closeAt(off)
	default:
		last := v.Ignition[len(v.Ignition)-1]
		cur.DistanceM = last.DistanceM - cur.DistanceM
		out = append(out, *cur) // going on
	}
	return out
}

// CompareTrips compares the truth's trips of one vehicle with the trips
// the API returned for it. A stored trip overlapping a truth trip (give or
// take tol.Time) is its match: mismatched if its start, its end (when the
// truth's trip ended) or its distance (likewise) is off by more than tol;
// more stored trips overlapping the same truth trip (a trip split in
// pieces) and stored trips overlapping none are unexpected; truth trips
// without any are missing.
func CompareTrips(truth []Trip, stored []cloudapi.Trip, tol TripTolerance) Diff {
	d := Diff{Truth: len(truth), Stored: len(stored)}
	used := make([]bool, len(stored))
	for _, tr := range truth {
		end := tr.End
		if !tr.Ended() {
			end = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		matched := -1
		for i, s := range stored {
			if used[i] || s.Start.Time.After(end.Add(tol.Time)) || s.End.Time.Before(tr.Start.Add(-tol.Time)) {
				continue
			}
			used[i] = true
			if matched >= 0 {
				d.Unexpected++
				note(&d.Examples.Unexpected, "trip %s to %s stored besides the one matching %v (split)", stamp(s.Start.Time), stamp(s.End.Time), tr)
				continue
			}
			matched = i
		}
		if matched < 0 {
			d.Missing++
			note(&d.Examples.Missing, "trip %v not stored", tr)
			continue
		}
		s := stored[matched]
		var off []string
		if dt := s.Start.Time.Sub(tr.Start); dt.Abs() > tol.Time {
			off = append(off, fmt.Sprintf("start %+v", dt))
		}
		if tr.Ended() {
			if dt := s.End.Time.Sub(tr.End); dt.Abs() > tol.Time {
				off = append(off, fmt.Sprintf("end %+v", dt))
			}
			if rel := (s.DistanceM - tr.DistanceM) / math.Max(tr.DistanceM, 1); math.Abs(rel) > tol.Distance {
				off = append(off, fmt.Sprintf("distance %.0f m (%+.1f%%)", s.DistanceM, 100*rel))
			}
		}
		if len(off) > 0 {
			d.Mismatched++
			note(&d.Examples.Mismatched, "trip %v stored with %v", tr, off)
		}
	}
	for i, s := range stored {
		if !used[i] {
			d.Unexpected++
			note(&d.Examples.Unexpected, "trip %s to %s (%.0f m) is not in the truth", stamp(s.Start.Time), stamp(s.End.Time), s.DistanceM)
		}
	}
	return d
}
