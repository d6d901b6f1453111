package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// BenchmarkCommit measures one ingest transaction into the real PostgreSQL:
// a micro-batch of one vehicle's minute of 1 Hz fixes, and one of 100
// vehicles × 100 fixes; and the latter with a replay in it (one vehicle's
// batch of the previous commit again), which takes the staging path.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []struct {
		vehicles, fixes int
		replay          bool
	}{{1, 60, false}, {100, 100, false}, {100, 100, true}} {
		name := fmt.Sprintf("rows=%d", size.vehicles*size.fixes)
		if size.replay {
			name += ",replay"
		}
		b.Run(name, func(b *testing.B) {
			db, _ := openDB(b)
			ctx := context.Background()
			var seq uint64
			var last *telemetry.Batch
			start := now.Add(-24 * time.Hour)
			for b.Loop() {
				c := &cloud.Commit{ReceivedAt: now}
				for v := range size.vehicles {
					bt := &telemetry.Batch{VehicleID: fmt.Sprintf("veh-%04d", v), StreamID: 1}
					for i := range size.fixes {
						at := start.Add(time.Duration(seq+uint64(i)) * time.Second)
						bt.Positions = append(bt.Positions, fix(seq+uint64(i)+1, at, 437384166+int32(i)))
					}
					c.Batches = append(c.Batches, bt)
				}
				if size.replay && last != nil {
					c.Batches = append(c.Batches, last)
				}
				last = c.Batches[0]
				seq += uint64(size.fixes)
				res, err := db.Commit(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if res.Inserted != int64(size.vehicles*size.fixes) {
					b.Fatalf("inserted %d", res.Inserted)
				}
			}
			b.ReportMetric(float64(b.N*size.vehicles*size.fixes)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
