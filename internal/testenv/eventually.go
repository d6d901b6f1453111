package testenv

import (
	"errors"
	"time"
)

// Eventually polls cond until it returns nil, and fails the test with cond's
// last error once within has passed. The deadline only guards against a hang:
// make it generous (tens of seconds), never a measure of speed. Each proc is
// checked on every round, so a program that exits early fails the test at
// once, with its log. The first polls come quickly and the pace then slows
// to one every 100 ms.
func Eventually(t TB, within time.Duration, what string, cond func() error, procs ...*Proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		for _, p := range procs {
			if done, perr := p.Exited(); done {
				t.Fatalf("waiting for %s: %s exited early (%v)", what, p.Name, perr)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not true after %v: %v", what, within, err)
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// TB is the part of testing.TB that Eventually uses, so that its own tests
// can watch it fail.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// ErrNotYet is what True returns for a condition that does not hold.
var ErrNotYet = errors.New("not yet")

// True turns a boolean into a condition for Eventually: nil when ok, else
// ErrNotYet. A condition that can say what it saw instead ("3 of 5 records")
// makes a better failure message.
func True(ok bool) error {
	if ok {
		return nil
	}
	return ErrNotYet
}
