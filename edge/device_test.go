package edge_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

func TestDeviceLoopStopsOnConfigurationError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-tty")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := serial.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	var c edge.Counters
	l := edge.DeviceLoop{Device: dev, Name: "gps", Counters: &c}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = l.Run(ctx, make(chan edge.Record, 1), func(context.Context, io.ReadWriter) error { return nil })
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, edge.ErrTransient) {
		t.Errorf("Run = %v; want the open error at once", err)
	}
}

func TestDeviceLoopRetriesUntilTheDeviceAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unplugged")
	dev, err := serial.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	var c edge.Counters
	l := edge.DeviceLoop{Device: dev, Name: "obd", Counters: &c, Backoff: edge.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan edge.Record, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, out, func(context.Context, io.ReadWriter) error { return nil })
	}()
	testenv.Eventually(t, 10*time.Second, "three failed opens", func() error { return testenv.True(c.Snapshot()["obd.open_errors"] >= 3) })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	select {
	case r := <-out:
		t.Errorf("an event %v for a device that never opened", r.Event.Type)
	default:
	}
}
