package memory_test

import (
	"context"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// The in-memory outbox keeps the edge.Outbox contract the uplink relies on.
func TestOutbox(t *testing.T) {
	ctx := context.Background()
	o := memory.NewOutbox(1, 5)
	if o.StreamID() == 0 || o.StreamID() == memory.NewOutbox(2, 5).StreamID() {
		t.Error("stream ids not drawn from the seed")
	}
	recs := []edge.Record{edge.PositionRecord(telemetry.Position{UnixMs: 1}), edge.OBDRecord(telemetry.OBDSample{UnixMs: 2}), edge.PositionRecord(telemetry.Position{UnixMs: 3})}
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq() != 1 || recs[2].Seq() != 3 {
		t.Errorf("seqs %d..%d", recs[0].Seq(), recs[2].Seq())
	}
	got, _ := o.Unsent(ctx, 1, 10)
	if len(got) != 2 || got[0].Seq() != 2 {
		t.Errorf("Unsent(after 1) = %d records from %d", len(got), got[0].Seq())
	}
	if n, _ := o.Ack(ctx, []telemetry.SeqRange{{First: 1, Last: 2}, {First: 7, Last: 9}}); n != 2 {
		t.Errorf("Ack deleted %d, want 2", n)
	}
	if n, _ := o.Ack(ctx, []telemetry.SeqRange{{First: 1, Last: 2}}); n != 0 {
		t.Errorf("a second Ack deleted %d", n)
	}
	if r, ok, err := o.Newest(ctx, edge.KindPosition); err != nil || !ok || r.Seq() != 3 {
		t.Errorf("Newest(position) = seq %d, %v, %v; want 3", r.Seq(), ok, err)
	}
	if _, ok, _ := o.Newest(ctx, edge.KindEvent); ok {
		t.Error("Newest(event) found one")
	}
	o.Append(ctx, make([]edge.Record, 6)) // over capacity: the oldest go
	st, _ := o.Stats(ctx)
	if st.Depth != 5 || st.Dropped != 2 || st.NextSeq != 10 || st.StreamID != o.StreamID() || o.Appended() != 9 {
		t.Errorf("stats %+v, %d appended", st, o.Appended())
	}
	unbounded := memory.NewOutbox(3, 0)
	unbounded.Append(ctx, make([]edge.Record, 1000))
	if st, _ := unbounded.Stats(ctx); st.Depth != 1000 || st.Dropped != 0 {
		t.Errorf("capacity 0: stats %+v, want all kept", st)
	}
}
