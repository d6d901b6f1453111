package edge_test

import (
	"sync"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func TestRecordSeq(t *testing.T) {
	recs := []edge.Record{
		edge.PositionRecord(telemetry.Position{UnixMs: 1}),
		edge.OBDRecord(telemetry.OBDSample{UnixMs: 2}),
		edge.EventRecord(telemetry.Event{UnixMs: 3}),
	}
	var b telemetry.Batch
	for i := range recs {
		recs[i].SetSeq(uint64(10 + i))
		if got := recs[i].Seq(); got != uint64(10+i) {
			t.Errorf("%v: Seq() = %d after SetSeq(%d)", recs[i].Kind, got, 10+i)
		}
		if got := recs[i].UnixMs(); got != int64(i+1) {
			t.Errorf("%v: UnixMs() = %d, want %d", recs[i].Kind, got, i+1)
		}
		recs[i].AddTo(&b)
	}
	if len(b.Positions) != 1 || len(b.OBD) != 1 || len(b.Events) != 1 || b.OBD[0].Seq != 11 {
		t.Errorf("AddTo built %+v", b)
	}
}

func TestCountersConcurrent(t *testing.T) {
	var c edge.Counters
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Inc("a")
				c.Add([]string{"b", "c"}[i%2], 2)
			}
		}()
	}
	wg.Wait()
	got := c.Snapshot()
	if got["a"] != 8000 || got["b"] != 8000 || got["c"] != 8000 {
		t.Errorf("Snapshot() = %v, want a, b and c at 8000", got)
	}
}
