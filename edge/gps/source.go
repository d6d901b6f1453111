package gps

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Source reads a GNSS receiver and sends a position record per fix. It
// implements edge.Source. Besides the Assembler's counters it sends
// EventGPSFixAcquired and EventGPSFixLost when the fix state changes, and the
// DeviceLoop's connect and disconnect events.
type Source struct {
	Device   edge.Device
	MaxLine  int          // see NewLineReader
	Backoff  edge.Backoff // between reopens; the zero value is 200ms to 5s
	Logger   *slog.Logger
	Counters *edge.Counters
	Now      func() time.Time // agent clock for events; nil means time.Now
}

var _ edge.Source = (*Source)(nil)

// Run reads the device until ctx is done and returns ctx.Err(). A device that
// fails or ends is reopened with backoff; Run returns early only for a
// configuration error (see edge.DeviceLoop.Run).
func (s *Source) Run(ctx context.Context, out chan<- edge.Record) error {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	asm := &Assembler{Counters: s.Counters}
	var fix, known bool // fix state, once known
	session := func(ctx context.Context, rw io.ReadWriter) error {
		asm.Reset()
		lr := NewLineReader(rw, s.MaxLine, s.Counters)
		for {
			line, err := lr.Next()
			if err != nil {
				return err
			}
			ep, closed := asm.Feed(line)
			if !closed {
				continue
			}
			if !known || ep.Fix != fix {
				typ := telemetry.EventGPSFixLost
				if ep.Fix {
					typ = telemetry.EventGPSFixAcquired
				}
				if known || ep.Fix {
					ev := telemetry.Event{UnixMs: now().UnixMilli(), Type: typ}
					if err := edge.Send(ctx, out, edge.EventRecord(ev)); err != nil {
						return err
					}
				}
				fix, known = ep.Fix, true
			}
			if ep.Fix {
				if err := edge.Send(ctx, out, edge.PositionRecord(ep.Position)); err != nil {
					return err
				}
			}
		}
	}
	loop := edge.DeviceLoop{Device: s.Device, Name: "gps", Backoff: s.Backoff, Logger: s.Logger, Counters: s.Counters, Now: s.Now}
	return loop.Run(ctx, out, session)
}
