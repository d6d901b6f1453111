package obd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

// ErrNotConnected is wrapped by ReadDTCs's error when no adapter session took
// the request: the device is unplugged or still being opened.
var ErrNotConnected = errors.New("no OBD session")

// DTCRequestWait is how long ReadDTCs waits for a running session to take its
// request.
const DTCRequestWait = 10 * time.Second

// commands carries SetPIDs and ReadDTCs to the poller, the only goroutine
// that talks to the adapter.
type commands struct {
	once    sync.Once
	mu      sync.Mutex
	pids    []byte        // the commanded PID set; nil: as configured
	changed chan struct{} // a new PID set waits to be applied
	dtcs    chan chan dtcAnswer
}

type dtcAnswer struct {
	codes []string
	err   error
}

func (c *commands) init() {
	c.once.Do(func() {
		c.changed = make(chan struct{}, 1)
		c.dtcs = make(chan chan dtcAnswer)
	})
}

var (
	_ edge.PIDSetter = (*Source)(nil)
	_ edge.DTCReader = (*Source)(nil)
)

// SetPIDs implements edge.PIDSetter: from its next wait the source polls
// exactly pids (Mode 01), each at its configured interval if it had one and
// at Interval otherwise, among those the vehicle supports. The set lasts until
// the agent restarts. A PID missing from the decode table is an error wrapping
// edge.ErrNotSupported, and nothing changes. Safe to call while Run runs.
func (s *Source) SetPIDs(pids []byte) error {
	if len(pids) == 0 {
		return errors.New("set PIDs: at least one")
	}
	for _, p := range pids {
		if _, ok := Lookup(p); !ok {
			return fmt.Errorf("PID %02X: %w: not in the decode table", p, edge.ErrNotSupported)
		}
	}
	s.cmd.init()
	s.cmd.mu.Lock()
	s.cmd.pids = slices.Compact(slices.Clone(pids))
	s.cmd.mu.Unlock()
	select {
	case s.cmd.changed <- struct{}{}:
	default: // already signalled; the poller reads the latest set
	}
	return nil
}

// ReadDTCs implements edge.DTCReader: the running session reads the stored
// trouble codes (Mode 03) between two polling rounds and returns them (the
// DTC set/cleared events follow as for a scheduled reading). It returns an
// error wrapping ErrNotConnected when no session takes the request within
// DTCRequestWait, and the adapter's error (e.g. NO DATA with the engine off)
// as it comes. Safe to call while Run runs.
func (s *Source) ReadDTCs(ctx context.Context) ([]string, error) {
	s.cmd.init()
	reply := make(chan dtcAnswer, 1)
	wait := time.NewTimer(DTCRequestWait)
	defer wait.Stop()
	select {
	case s.cmd.dtcs <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, fmt.Errorf("%w took the request within %v (device unplugged?)", ErrNotConnected, DTCRequestWait)
	}
	select {
	case a := <-reply:
		return a.codes, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// activePolls returns the polls to run: the configured ones, or the
// commanded PID set.
func (s *Source) activePolls(configured []Poll) []Poll {
	s.cmd.mu.Lock()
	pids := s.cmd.pids
	s.cmd.mu.Unlock()
	if pids == nil {
		return configured
	}
	every := or(s.Interval, time.Second)
	out := make([]Poll, len(pids))
	for i, p := range pids {
		out[i] = Poll{PID: p, Every: every}
		if j := slices.IndexFunc(configured, func(q Poll) bool { return q.PID == p }); j >= 0 {
			out[i].Every = configured[j].Every
		}
	}
	return out
}

// wait sleeps for d while serving the commands: a new PID set replaces the
// schedule, a trouble-code request is answered. It returns the poller's error
// when serving a request calls for one (a re-init, a lost device).
func (p *poller) wait(ctx context.Context, d time.Duration) error {
	s := p.src
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-s.cmd.changed:
			p.polls = s.activePolls(p.configured)
			p.sched = newSchedule(p.polls, time.Now())
			if dropped := p.sched.keep(p.supported); len(dropped) > 0 {
				p.log.Warn("commanded PIDs the vehicle does not support are not polled", "pids", fmt.Sprintf("% X", dropped))
			}
			p.log.Info("polled PIDs changed by command", "pids", fmt.Sprintf("%v", p.polls))
			return nil // the next round follows the new schedule
		case reply := <-s.cmd.dtcs:
			codes, err := p.sess.DTCs(ctx, DTCStored)
			if err != nil {
				reply <- dtcAnswer{err: err}
				if serr := p.settle(ctx, err, false); serr != nil {
					return serr
				}
				continue
			}
			s.inc("dtc_reads")
			reply <- dtcAnswer{codes: codes}
			if err := p.sawDTCs(ctx, DTCStored, codes); err != nil {
				return err
			}
		}
	}
}
