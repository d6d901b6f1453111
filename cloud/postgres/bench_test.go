package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// BenchmarkCommit measures one ingest transaction of a micro-batch: 100
// vehicles × 100 fixes (10,000 positions with the fields a receiver gives)
// per Commit, into the real PostgreSQL.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []struct{ vehicles, fixes int }{{1, 60}, {100, 100}} {
		b.Run(fmt.Sprintf("rows=%d", size.vehicles*size.fixes), func(b *testing.B) {
			db, _ := openDB(b)
			ctx := context.Background()
			var seq uint64
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
