package gps

import "time"

// DefaultDateFloor is the date before which a receiver's date is taken for a
// GPS week-number rollover victim: 2017-01-01, when UTC last gained a leap
// second (GPS−UTC = 18 s), the reference gpsd uses for the same rule.
//
// GPS broadcasts the week number in 10 bits, so it wraps every 1024 weeks
// (7168 days, about 19.6 years: 1999-08-22, 2019-04-07, ...). A receiver whose
// firmware resolves the week from a fixed base date reports, once it passes
// that base + 1024 weeks, a date exactly 1024 weeks too early. Such a date
// is always before the floor until 2036, while no correct receiver can report
// one any more; so:
//
//   - a date on or after the floor is the receiver's and is kept;
//   - a date before it is moved 1024 weeks later (gps.week_rollover_corrected);
//   - if it is still before the floor it is not a rollover (a receiver two
//     periods behind, or a date invented from an unset clock) and the epoch
//     is dropped (gps.week_rollover_rejected).
//
// gpsd applies the same floor and the same +1024-week step but keeps a date
// that is still before the floor after one step; we drop it.
var DefaultDateFloor = time.Date(2017, time.January, 1, 0, 0, 0, 0, time.UTC)

// RolloverWeeks is the period of the GPS broadcast week number.
const RolloverWeeks = 1024

// resolveRollover applies the rollover rule to t; ok is false when the date
// is rejected.
func (a *Assembler) resolveRollover(t time.Time) (time.Time, bool) {
	floor := a.DateFloor
	if floor.IsZero() {
		floor = DefaultDateFloor
	}
	if !t.Before(floor) {
		return t, true
	}
	t = t.AddDate(0, 0, 7*RolloverWeeks)
	if t.Before(floor) {
		return t, false
	}
	a.inc("week_rollover_corrected")
	return t, true
}
