package obd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// DefaultMaxTimeouts is how many commands in a row may time out before the
// Source gives the device up and reopens it (and so resets the adapter).
const DefaultMaxTimeouts = 3

// Source polls Mode 01 PIDs through an ELM327 and sends an OBD record per
// value. It implements edge.Source. Each (re)opened device gets a fresh
// session: ATZ, ATE0, ATL0, ATS0, ATH0, ATSP0; then every Interval each PID is
// asked once, in order. Error replies are counted (obd.errors.<code>) and
// skipped; MaxTimeouts timeouts in a row, or a read or write error, end the
// session and the device is reopened with backoff.
type Source struct {
	Device      edge.Device
	PIDs        []byte        // Mode 01 PIDs, each in the PID table
	Interval    time.Duration // between polling rounds; default 1s
	Timeout     time.Duration // per command; DefaultTimeout if 0
	MaxTimeouts int           // DefaultMaxTimeouts if 0
	Backoff     edge.Backoff
	Logger      *slog.Logger
	Counters    *edge.Counters
	Now         func() time.Time // agent clock: samples' time; nil means time.Now
}

var _ edge.Source = (*Source)(nil)

// Run polls until ctx is done and returns ctx.Err(). It returns early for a
// PID it cannot decode, or an open error that is not transient.
func (s *Source) Run(ctx context.Context, out chan<- edge.Record) error {
	for _, p := range s.PIDs {
		if _, ok := Lookup(p); !ok {
			return fmt.Errorf("obd: PID %02X is not in the decode table", p)
		}
	}
	loop := edge.DeviceLoop{Device: s.Device, Name: "obd", Backoff: s.Backoff, Logger: s.Logger, Counters: s.Counters, Now: s.Now}
	return loop.Run(ctx, out, func(ctx context.Context, rw io.ReadWriter) error { return s.session(ctx, rw, out) })
}

func (s *Source) session(ctx context.Context, rw io.ReadWriter, out chan<- edge.Record) error {
	sess := NewSession(rw, s.Counters)
	defer sess.Close()
	sess.Timeout, sess.Now = s.Timeout, s.Now
	banner, err := sess.Init(ctx)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if s.Logger != nil {
		s.Logger.Info("obd adapter ready", "adapter", banner)
	}
	interval := or(s.Interval, time.Second)
	maxTimeouts := s.MaxTimeouts
	if maxTimeouts <= 0 {
		maxTimeouts = DefaultMaxTimeouts
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	timeouts := 0
	for {
		for _, pid := range s.PIDs {
			v, at, err := sess.Query(ctx, pid)
			switch {
			case err == nil:
				timeouts = 0
				rec := edge.OBDRecord(telemetry.OBDSample{UnixMs: at.UnixMilli(), PID: 0x0100 | uint16(pid), Value: v})
				if err := edge.Send(ctx, out, rec); err != nil {
					return err
				}
				s.inc("samples")
			case errors.Is(err, ErrTimeout):
				timeouts++
				if timeouts >= maxTimeouts {
					return fmt.Errorf("%d commands in a row timed out: %w", timeouts, err)
				}
			case errors.Is(err, ErrAdapter):
				timeouts = 0 // an answer, if not a value: the adapter is alive
			default:
				return err // device gone or ctx done
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Source) inc(name string) {
	if s.Counters != nil {
		s.Counters.Inc("obd." + name)
	}
}
