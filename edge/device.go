package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Session reads (and for an adapter, writes) one opened device until the byte
// stream fails, ends or ctx is done. It returns the reason the stream ended;
// the DeviceLoop closes the device.
type Session func(ctx context.Context, rw io.ReadWriter) error

// DeviceLoop keeps one device open for a source: it opens Device, runs a
// Session on it, and when the session ends (unplug, EOF, garbage the session
// gave up on) closes the device and opens it again after a jittered, capped
// backoff. gps and obd use it so that their parsing stays free of I/O policy.
type DeviceLoop struct {
	Device   Device
	Name     string // "gps" or "obd": counter prefix, event code, log field
	Backoff  Backoff
	Logger   *slog.Logger
	Counters *Counters
	Now      func() time.Time // nil means time.Now
	// Clock, if set, stamps the events (see Clock); nil: the system clock.
	Clock *Clock
	// StableAfter is how long a session must last for the backoff to start
	// again from its minimum; default 5s.
	StableAfter time.Duration
}

// Run opens the device and runs session on it until ctx is done, then returns
// ctx.Err(). It returns earlier only for an open error that does not wrap
// ErrTransient (a configuration error, such as a path that is not a tty). It
// sends EventDeviceConnected and EventDeviceDisconnected records on out and
// counts <name>.opens, <name>.open_errors and <name>.disconnects.
func (l *DeviceLoop) Run(ctx context.Context, out chan<- Record, session Session) error {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", l.Name, "url", l.Device.String())
	now := l.Now
	if now == nil {
		now = time.Now
	}
	stable := l.StableAfter
	if stable <= 0 {
		stable = 5 * time.Second
	}
	failing := false // log repeated open failures once, not every retry
	for {
		rwc, err := l.Device.Open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, ErrTransient) {
				return fmt.Errorf("%s: %w", l.Name, err)
			}
			l.count("open_errors")
			d := l.Backoff.Next()
			if !failing {
				log.Warn("device open failed, retrying", "backoff", d, "err", err)
				failing = true
			} else {
				log.Debug("device open failed", "backoff", d, "err", err)
			}
			if err := Sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		failing = false
		l.count("opens")
		log.Info("device connected")
		if err := l.event(ctx, out, now(), telemetry.EventDeviceConnected, ""); err != nil {
			rwc.Close()
			return err
		}
		start := now()
		serr := l.run(ctx, rwc, session)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.count("disconnects")
		if now().Sub(start) >= stable {
			l.Backoff.Reset()
		}
		d := l.Backoff.Next()
		log.Warn("device disconnected, reopening", "backoff", d, "err", serr)
		if err := l.event(ctx, out, now(), telemetry.EventDeviceDisconnected, errText(serr)); err != nil {
			return err
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// run runs session on rwc and closes rwc; closing it when ctx is done is what
// unblocks a session stuck in Read.
func (l *DeviceLoop) run(ctx context.Context, rwc io.ReadWriteCloser, session Session) error {
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	err := session(ctx, rwc)
	if cerr := rwc.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = io.EOF
	}
	return err
}

func (l *DeviceLoop) count(name string) {
	if l.Counters != nil {
		l.Counters.Inc(l.Name + "." + name)
	}
}

func (l *DeviceLoop) event(ctx context.Context, out chan<- Record, t time.Time, typ telemetry.EventType, detail string) error {
	r := EventRecord(telemetry.Event{Type: typ, Code: l.Name, Detail: detail})
	return Send(ctx, out, r.Stamped(l.Clock.Stamp(t)))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Send sends r on out unless ctx is done first, in which case it returns
// ctx.Err(). Sources use it so that a full pipeline never blocks a shutdown.
func Send(ctx context.Context, out chan<- Record, r Record) error {
	select {
	case out <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
