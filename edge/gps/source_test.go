package gps_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestSourceReconnects serves the recorded session over TCP, hangs up, and
// serves one more epoch on the next connection: the Source reopens the device
// by itself and the fixes of both connections arrive, in order, with the
// device and fix events around them.
func TestSourceReconnects(t *testing.T) {
	session, err := os.ReadFile("testdata/session.nmea")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for _, chunk := range [][]byte{session, []byte(
			"$GPRMC,220516,A,5133.82,N,00042.24,W,173.8,231.8,130694,004.2,W*70\r\n")} {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write(chunk)
			c.Close()
		}
	}()
	dev, err := serial.Parse("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var counters edge.Counters
	src := gps.Source{Device: dev, Counters: &counters, Backoff: edge.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan edge.Record, 100)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()

	type step struct {
		kind  edge.Kind
		event telemetry.EventType
		pos   *telemetry.Position
	}
	want := []step{
		{kind: edge.KindEvent, event: telemetry.EventDeviceConnected},
		{kind: edge.KindEvent, event: telemetry.EventGPSFixAcquired},
		{kind: edge.KindPosition, pos: &classic},
		{kind: edge.KindEvent, event: telemetry.EventGPSFixLost},
		{kind: edge.KindEvent, event: telemetry.EventGPSFixAcquired},
		{kind: edge.KindPosition, pos: &sirf},
		{kind: edge.KindPosition, pos: &ublox},
		{kind: edge.KindPosition, pos: &gnrmc},
		{kind: edge.KindEvent, event: telemetry.EventDeviceDisconnected},
		{kind: edge.KindEvent, event: telemetry.EventDeviceConnected},
		// 1994-06-13 is after 1994-03-23 but before the 2017 fix: stale.
		// The epoch is still open when the connection ends; nothing more.
		{kind: edge.KindEvent, event: telemetry.EventDeviceDisconnected},
	}
	for i, w := range want {
		var r edge.Record
		select {
		case r = <-out:
		case <-ctx.Done():
			t.Fatalf("step %d: nothing within the deadline", i)
		}
		if r.Kind != w.kind || (w.kind == edge.KindEvent && r.Event.Type != w.event) ||
			(w.pos != nil && r.Position != *w.pos) {
			t.Fatalf("step %d: got %v %+v %+v, want %v %v %+v", i, r.Kind, r.Event, r.Position, w.kind, w.event, w.pos)
		}
		if r.Kind == edge.KindEvent && r.Event.Code != "" && r.Event.Code != "gps" {
			t.Errorf("step %d: event code %q", i, r.Event.Code)
		}
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if n := counters.Snapshot()["gps.opens"]; n < 2 {
		t.Errorf("gps.opens = %d, want at least 2", n)
	}
}
