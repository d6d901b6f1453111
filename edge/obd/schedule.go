package obd

import (
	"slices"
	"time"
)

// Poll is one Mode 01 PID to poll and how often.
type Poll struct {
	PID   byte
	Every time.Duration
}

// Unanswered PIDs (claimed in the support bitmaps, yet answered NO DATA while
// other PIDs answer) are asked at Every × unansweredFactor, within these
// bounds, until they answer again.
const (
	unansweredAfter  = 3
	unansweredFactor = 10
	unansweredMin    = time.Minute
	unansweredMax    = 10 * time.Minute
)

// schedule keeps when each polled PID is next due. It reads no clock: times
// are passed in.
type schedule struct {
	items []*pollItem
}

type pollItem struct {
	Poll
	next   time.Time
	misses int  // NO DATA in a row while other PIDs answered
	muted  bool // asked at the slow rate
}

func newSchedule(polls []Poll, now time.Time) *schedule {
	s := &schedule{}
	for _, p := range polls {
		s.items = append(s.items, &pollItem{Poll: p, next: now})
	}
	return s
}

// keep drops the PIDs not in supported (when it is not nil).
func (s *schedule) keep(supported []byte) (dropped []byte) {
	if supported == nil {
		return nil
	}
	s.items = slices.DeleteFunc(s.items, func(it *pollItem) bool {
		if slices.Contains(supported, it.PID) {
			return false
		}
		dropped = append(dropped, it.PID)
		return true
	})
	return dropped
}

// due returns the items due at now, in configuration order.
func (s *schedule) due(now time.Time) []*pollItem {
	var out []*pollItem
	for _, it := range s.items {
		if !it.next.After(now) {
			out = append(out, it)
		}
	}
	return out
}

// nextAt returns when the next item is due; zero with no items.
func (s *schedule) nextAt() time.Time {
	var t time.Time
	for _, it := range s.items {
		if t.IsZero() || it.next.Before(t) {
			t = it.next
		}
	}
	return t
}

func (s *schedule) has(pid byte) bool {
	return slices.ContainsFunc(s.items, func(it *pollItem) bool { return it.PID == pid })
}

// interval is how often the item is asked now.
func (it *pollItem) interval() time.Duration {
	if !it.muted {
		return it.Every
	}
	return min(max(it.Every*unansweredFactor, unansweredMin), unansweredMax)
}

// done moves the item to its next time after being asked at now: one
// interval on, or one interval from now when the poller fell behind.
func (it *pollItem) done(now time.Time) {
	it.next = it.next.Add(it.interval())
	if !it.next.After(now) {
		it.next = now.Add(it.interval())
	}
}

// answered records whether the PID was answered in a round in which some
// PID was; it returns true when the PID just became unanswered (muted) or
// answered again (unmuted).
func (it *pollItem) answered(ok bool) (changed bool) {
	if ok {
		it.misses = 0
		if it.muted {
			it.muted = false
			return true
		}
		return false
	}
	it.misses++
	if it.misses >= unansweredAfter && !it.muted {
		it.muted = true
		return true
	}
	return false
}
