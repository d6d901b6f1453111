package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// BenchmarkCommitTripTriggers measures what marking trips dirty costs
// ingest: commits of 100 vehicles × 100 fixes (and of one vehicle's minute
// of 1 Hz fixes), alternately with the statement triggers of trip_dirty
// disabled and enabled, on one database, so that both see the same load on
// a shared machine. It reports rows/s of each and their ratio.
func BenchmarkCommitTripTriggers(b *testing.B) {
	for _, size := range []struct{ vehicles, fixes int }{{100, 100}, {1, 60}} {
		b.Run(fmt.Sprintf("rows=%d", size.vehicles*size.fixes), func(b *testing.B) {
			db, u := openDB(b)
			c := sql(b, u)
			ctx := context.Background()
			var seq uint64
			start := now.Add(-24 * time.Hour)
			set := func(on bool) {
				verb := map[bool]string{false: "DISABLE", true: "ENABLE"}[on]
				for _, t := range []string{"positions", "obd_samples", "events"} {
					if _, err := c.Exec(ctx, fmt.Sprintf("ALTER TABLE %s %s TRIGGER %s_trips", t, verb, t)); err != nil {
						b.Fatal(err)
					}
				}
			}
			commit := func() time.Duration {
				cm := &cloud.Commit{ReceivedAt: now}
				for v := range size.vehicles {
					bt := &telemetry.Batch{VehicleID: fmt.Sprintf("veh-%04d", v), StreamID: 1}
					for i := range size.fixes {
						at := start.Add(time.Duration(seq+uint64(i)) * time.Second)
						bt.Positions = append(bt.Positions, fix(seq+uint64(i)+1, at, 437384166+int32(i)))
					}
					cm.Batches = append(cm.Batches, bt)
				}
				seq += uint64(size.fixes)
				t0 := time.Now()
				if _, err := db.Commit(ctx, cm); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			var off, on []time.Duration
			for b.Loop() {
				b.StopTimer()
				set(false)
				b.StartTimer()
				off = append(off, commit())
				b.StopTimer()
				set(true)
				b.StartTimer()
				on = append(on, commit())
			}
			// Medians: the machine is shared, and a commit that waited for
			// another process says nothing about triggers.
			rows := float64(size.vehicles * size.fixes)
			mOff, mOn := median(off), median(on)
			b.ReportMetric(rows/mOff.Seconds(), "rows/s-without-triggers")
			b.ReportMetric(rows/mOn.Seconds(), "rows/s-with-triggers")
			b.ReportMetric(mOn.Seconds()/mOff.Seconds(), "x-median-commit-time")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
