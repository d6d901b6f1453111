package obd_test

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
)

// lateLine is the adapter's side of a link that delivers chosen replies
// late: a reply carrying engine speed (41 0C), once armed, is held until the
// agent has given up waiting for it and sent the ATI of its resync. The reply
// then comes after the agent's timeout whatever the machine's load, and the
// adapter still answers in order (the ATI after it).
type lateLine struct {
	io.ReadWriter
	hold    atomic.Int32 // replies still to hold back
	held    atomic.Int32 // replies held back so far
	pending []byte       // read while holding a reply, for the adapter's next Read
}

func (l *lateLine) Read(p []byte) (int, error) {
	if len(l.pending) > 0 {
		n := copy(p, l.pending)
		l.pending = l.pending[n:]
		return n, nil
	}
	return l.ReadWriter.Read(p)
}

func (l *lateLine) Write(p []byte) (int, error) {
	if bytes.Contains(bytes.ReplaceAll(p, []byte(" "), nil), []byte("410C")) && l.hold.Load() > 0 {
		l.hold.Add(-1)
		buf := make([]byte, 64)
		for !bytes.Contains(l.pending, []byte("ATI\r")) {
			n, err := l.ReadWriter.Read(buf)
			if err != nil {
				return 0, err
			}
			l.pending = append(l.pending, buf[:n]...)
		}
		l.held.Add(1)
	}
	return l.ReadWriter.Write(p)
}

// A reply that comes only after the agent's timeout, while it resyncs, is
// still the answer to its request: the agent keeps its values
// (obd.late_replies), and of what the adapter sent it skips nothing. Under
// load a reply is late because the agent was not scheduled in time; here
// because the link held it.
func TestOBDLateReply(t *testing.T) {
	t.Parallel()
	for _, p := range []elm327.Profile{elm327.Genuine, elm327.CloneV21} {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			line := &lateLine{}
			sim := startAdapterOn(t, func(rw io.ReadWriter) io.ReadWriter { line.ReadWriter = rw; return line }, elm327.WithProfile(p))
			run := runSource(t, sim.Path, nil)
			run.until(t, 30*time.Second, "first values", func() bool { return run.count() >= 3 })
			const late = 3
			for i := range int32(late) {
				line.hold.Store(1)
				run.until(t, 30*time.Second, "a reply held past the agent's timeout", func() bool { return line.held.Load() > i })
				k := run.count()
				run.until(t, 30*time.Second, "polling after it", func() bool { return run.count() >= k+6 })
			}
			got := run.got()
			inOrder(t, got, sim.caughtUp(got), true)
			c := run.Counters.Snapshot()
			if c["obd.late_replies"] != late || c["obd.errors.timeout"] < late {
				t.Errorf("%d replies held past the timeout: obd.late_replies = %d, obd.errors.timeout = %d",
					late, c["obd.late_replies"], c["obd.errors.timeout"])
			}
		})
	}
}
