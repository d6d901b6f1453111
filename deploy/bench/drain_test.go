package bench_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	edgemqtt "github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// The backlog: 24 h of 1 Hz fixes and the 8 PIDs of bench.PIDs every 10 s
// (86,400 positions and 69,120 OBD samples).
const (
	backlog     = 24 * time.Hour
	obdInterval = 10 * time.Second
)

// fillBacklog appends span of the backlog, ending a minute ago, to a new
// outbox in dir, 1,000 records per transaction (the agent's group commit,
// sped up), and returns it with the number of fixes and OBD samples.
func fillBacklog(tb testing.TB, dir string, span time.Duration) (*bolt.Outbox, int, int) {
	tb.Helper()
	o, err := bolt.Open(filepath.Join(dir, "outbox.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { o.Close() })
	start := time.Now().Add(-span - time.Minute).Truncate(time.Second)
	d := bench.NewDrive(1)
	var recs []edge.Record
	fixes, samples := 0, 0
	for i := range int(span / time.Second) {
		t := start.Add(time.Duration(i) * time.Second)
		recs = append(recs, edge.PositionRecord(d.Next(t, time.Second)))
		fixes++
		if t.Sub(start)%obdInterval == 0 {
			for j, pid := range bench.PIDs {
				at := t.Add(500*time.Millisecond + time.Duration(j)*20*time.Millisecond)
				recs = append(recs, edge.OBDRecord(telemetry.OBDSample{UnixMs: at.UnixMilli(), PID: pid, Value: bench.OBD(pid, i)}))
				samples++
			}
		}
		if len(recs) >= 1000 {
			if err := o.Append(context.Background(), recs); err != nil {
				tb.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := o.Append(context.Background(), recs); err != nil {
		tb.Fatal(err)
	}
	return o, fixes, samples
}

// drain fills span of backlog, runs the real uplink (edge/uplink's sending
// policy with cfg on edge/mqtt's connection) against the cloud c until the
// outbox is empty, checks that PostgreSQL has every record, and returns how
// long the drain took: from the uplink's start to the outbox holding
// nothing.
func drain(tb testing.TB, c *cloudEnv, span time.Duration, cfg uplink.Config) time.Duration {
	tb.Helper()
	outbox, fixes, samples := fillBacklog(tb, tb.TempDir(), span)
	vehicle := "drain-" + testenv.ID()
	cfg.VehicleID = vehicle
	sender, err := uplink.New(cfg, outbox, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	up, err := edgemqtt.New(edgemqtt.Config{URL: c.mqttURL, Namespace: c.ns}, vehicle, sender, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer e2e.ForgetAgent(tb, c.mqttURL, c.ns, vehicle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- up.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			tb.Errorf("uplink: %v", err)
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := began.Add(30 * time.Minute)
	for now := range tick.C {
		st, err := outbox.Stats(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Depth == 0 {
			break
		}
		if now.After(deadline) {
			tb.Fatalf("backlog not drained in 30 minutes: %d records left", st.Depth)
		}
	}
	took := time.Since(began)
	for table, want := range map[string]int{"positions": fixes, "obd_samples": samples} {
		if n := c.count(tb, fmt.Sprintf("SELECT count(*) FROM %s WHERE vehicle_id = '%s'", table, vehicle)); n != want {
			tb.Fatalf("%s: %d rows for %d records sent", table, n, want)
		}
	}
	return took
}

// BenchmarkBacklogDrain24h measures how long the agent takes to send a 24 h
// backlog (1 Hz GPS and 8 OBD PIDs every 10 s: 155,520 records in a real
// bbolt outbox) through Mosquitto to the cloud ingester and PostgreSQL, on
// loopback (target ≤ 15 s), with the uplink's defaults, against the baseline
// of one message at a time (batches of 60 records, 1 in flight), measured on
// the same 24 h backlog: nothing is scaled.
func BenchmarkBacklogDrain24h(b *testing.B) {
	c := startCloud(b)
	slow := drain(b, c, backlog, uplink.Config{BatchMaxRecords: 60, Inflight: 1})
	var fast time.Duration
	for b.Loop() {
		fast = drain(b, c, backlog, uplink.Config{})
	}
	b.ReportMetric(fast.Seconds(), "s-to-drain")
	b.ReportMetric(slow.Seconds(), "s-one-at-a-time")
	b.ReportMetric(slow.Seconds()/fast.Seconds(), "x-vs-one-at-a-time")
}
