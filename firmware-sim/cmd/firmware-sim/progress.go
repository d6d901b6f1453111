package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
)

// progress is stderr for a person at a terminal: a live status line at the
// bottom, with the log lines printed above it. It is safe for concurrent use.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	line string
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Write prints b above the status line.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line == "" {
		return p.w.Write(b)
	}
	if _, err := io.WriteString(p.w, "\r\x1b[K"); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	if err == nil {
		_, err = io.WriteString(p.w, p.line)
	}
	return n, err
}

// run redraws the status line from status twice a second until ctx is done,
// then leaves the last one on its own line.
func (p *progress) run(ctx context.Context, status func() string) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	draw := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.line = status()
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line)
	}
	draw()
	for {
		select {
		case <-ctx.Done():
			draw()
			p.mu.Lock()
			p.line = ""
			fmt.Fprintln(p.w)
			p.mu.Unlock()
			return
		case <-t.C:
			draw()
		}
	}
}

// progressLine says how far the simulation has come.
func progressLine(vehicles int, c *counters, faults int, start time.Time, clock firmwaresim.Clock, sc *scenario.Scenario) string {
	now := clock.Now()
	elapsed := now.Sub(start).Truncate(time.Second)
	of := ""
	if sc.Duration > 0 {
		elapsed = min(elapsed, sc.Duration)
		of = "/" + sc.Duration.String()
	}
	return fmt.Sprintf("firmware-sim: %d vehicles, %d fixes, %d OBD samples, %d/%d fault marks, sim %s +%v%s (x%g)",
		vehicles, c.fixes.Load(), c.samples.Load(), c.faults.Load(), faults, now.UTC().Format("15:04:05"), elapsed, of, sc.Speed)
}
