package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
)

// BenchmarkOutboxAppend measures durable appends (every commit fsynced) in
// group commits of 200 records — what the Collector writes per 200 ms flush at
// 1,000 records/s — against the baseline of one commit, and so one fsync, per
// record (target ≥ 50×, docs/BENCHMARKS.md). Both run on the same disk, in the same file
// layout.
func BenchmarkOutboxAppend(b *testing.B) {
	const group = 200
	dir := b.TempDir()
	open := func(name string) *bolt.Outbox {
		o, err := bolt.Open(filepath.Join(dir, name), &bolt.Options{MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { o.Close() })
		return o
	}
	// The baseline: one record per commit, timed over a fixed count.
	base := open("per-record.db")
	const baseN = 300
	recs := fixes(0, baseN)
	start := time.Now()
	for i := range recs {
		if err := base.Append(ctx, recs[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	perRecord := float64(baseN) / time.Since(start).Seconds()

	o := open("group.db")
	batch := fixes(0, group)
	b.ResetTimer()
	n := 0
	for n < b.N {
		k := min(group, b.N-n)
		recs := make([]edge.Record, k)
		copy(recs, batch[:k])
		if err := o.Append(ctx, recs); err != nil {
			b.Fatal(err)
		}
		n += k
	}
	b.StopTimer()
	grouped := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(grouped, "records/s")
	b.ReportMetric(perRecord, "per-record-commit-records/s")
	b.ReportMetric(grouped/perRecord, "x-vs-per-record-commit")
}
