package bolt_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// fixes returns n positions one second apart from t (ms), as a GPS source
// sends them.
func fixes(t int64, n int) []edge.Record {
	recs := make([]edge.Record, n)
	for i := range recs {
		recs[i] = edge.PositionRecord(telemetry.Position{
			UnixMs: t + int64(i)*1000, LatE7: 437384166 + int32(i), LonE7: 74246333 - int32(i),
			Has:   telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasSatsUsed | telemetry.HasHDOP,
			AltCm: 5230, SpeedMmps: 13891, CourseCdeg: 4520, SatsUsed: 9, HDOPc: 90,
		})
	}
	return recs
}

func stats(t *testing.T, o *bolt.Outbox) edge.OutboxStats {
	t.Helper()
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func checkSound(t *testing.T, o *bolt.Outbox) {
	t.Helper()
	if err := o.Check(ctx); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

// droppedEvents returns the EventRecordsDropped records stored.
func droppedEvents(t *testing.T, o *bolt.Outbox) []telemetry.Event {
	t.Helper()
	recs, err := o.Unsent(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var evs []telemetry.Event
	for _, r := range recs {
		if r.Kind == edge.KindEvent && r.Event.Type == telemetry.EventRecordsDropped {
			evs = append(evs, r.Event)
		}
	}
	return evs
}

// TestCapHolds fills a 1 MiB outbox with ten times what fits: the file never
// grows past the cap, every seq ever given is either stored or counted as
// dropped, the drops are reported as events, the file passes bbolt's check,
// and the counters survive a reopen.
func TestCapHolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	const maxBytes = 1 << 20
	o, err := bolt.Open(path, &bolt.Options{MaxBytes: maxBytes, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := clock.UnixMilli()
	for i := range 400 {
		if err := o.Append(ctx, fixes(t0+int64(i)*100_000, 100)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		st := stats(t, o)
		if st.FileBytes > maxBytes {
			t.Fatalf("after %d appends the file is %d bytes, over the cap of %d", i+1, st.FileBytes, maxBytes)
		}
		if st.Depth+st.Dropped != st.NextSeq-1 {
			t.Fatalf("after %d appends: %d stored + %d dropped != %d seqs given", i+1, st.Depth, st.Dropped, st.NextSeq-1)
		}
	}
	st := stats(t, o)
	if st.Dropped == 0 || st.DroppedThinned == 0 || st.Dropped != st.DroppedThinned+st.DroppedOldest+st.DroppedExpired {
		t.Errorf("drop counters: %+v", st)
	}
	if st.Depth < 5000 {
		t.Errorf("only %d records kept in a 1 MiB outbox", st.Depth)
	}
	evs := droppedEvents(t, o)
	if len(evs) == 0 {
		t.Fatal("no EventRecordsDropped record stored")
	}
	for _, e := range evs {
		if e.Code != "max_bytes" || e.Value <= 0 || !strings.Contains(e.Detail, "outbox full") {
			t.Errorf("drop event %+v", e)
		}
	}
	checkSound(t, o)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openAt(t, path)
	if again := stats(t, o); again.Dropped != st.Dropped || again.DroppedThinned != st.DroppedThinned {
		t.Errorf("drop counters after reopen %+v, before %+v", again, st)
	}
}

// TestThinsOldPositionsFirst: the first overflow thins the oldest positions
// (every second one goes) instead of dropping the oldest records, and keeps
// other kinds of records.
func TestThinsOldPositionsFirst(t *testing.T) {
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), &bolt.Options{MaxBytes: 1 << 20, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	t0 := clock.UnixMilli()
	ev := edge.EventRecord(telemetry.Event{UnixMs: t0, Type: telemetry.EventIgnitionOn})
	if err := o.Append(ctx, []edge.Record{ev}); err != nil {
		t.Fatal(err)
	}
	for i := 0; stats(t, o).Dropped == 0; i++ {
		if err := o.Append(ctx, fixes(t0+int64(i)*100_000, 100)); err != nil {
			t.Fatal(err)
		}
	}
	st := stats(t, o)
	if st.DroppedOldest != 0 || st.DroppedThinned == 0 {
		t.Fatalf("first overflow: %+v, want thinning only", st)
	}
	recs, err := o.Unsent(ctx, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq() != 1 || recs[0].Kind != edge.KindEvent {
		t.Errorf("the oldest record (an event) was not kept: %+v", recs[0])
	}
	// Positions 2, 3, 4, ... : every second one gone, the others one
	// second... two seconds apart now.
	var prev int64
	for _, r := range recs[1:50] {
		if r.Kind != edge.KindPosition {
			continue
		}
		if prev != 0 && r.Position.UnixMs-prev != 2000 {
			t.Fatalf("thinned positions %d ms apart, want 2000", r.Position.UnixMs-prev)
		}
		prev = r.Position.UnixMs
	}
}

// TestThinningKeepsMaxGap: positions already ThinMaxGap apart are not thinned
// further; the oldest are dropped instead.
func TestThinningKeepsMaxGap(t *testing.T) {
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), &bolt.Options{MaxBytes: 1 << 20, ThinMaxGap: time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := 0; stats(t, o).Dropped == 0; i++ {
		if err := o.Append(ctx, fixes(clock.UnixMilli()+int64(i)*100_000, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if st := stats(t, o); st.DroppedThinned != 0 || st.DroppedOldest == 0 {
		t.Errorf("fixes 1 s apart with a 1 s gap limit: %+v, want the oldest dropped, none thinned", st)
	}
}

func TestMaxAge(t *testing.T) {
	now := clock
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), &bolt.Options{MaxAge: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Append(ctx, fixes(now.UnixMilli(), 10)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	if err := o.Append(ctx, fixes(now.UnixMilli(), 5)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, o); st.Dropped != 0 {
		t.Fatalf("dropped %d records younger than max age", st.Dropped)
	}
	now = now.Add(45 * time.Minute) // the first ten are 75 minutes old now
	if err := o.Append(ctx, fixes(now.UnixMilli(), 1)); err != nil {
		t.Fatal(err)
	}
	st := stats(t, o)
	if st.DroppedExpired != 10 || st.Dropped != 10 || st.Depth != 7 {
		t.Errorf("after an hour: %+v, want 10 expired and 5+1+1 event kept", st)
	}
	recs, _ := o.Unsent(ctx, 0, 100)
	if recs[0].Seq() != 11 {
		t.Errorf("oldest kept seq %d, want 11", recs[0].Seq())
	}
	evs := droppedEvents(t, o)
	if len(evs) != 1 || evs[0].Code != "max_age" || evs[0].Value != 10 || !strings.Contains(evs[0].Detail, "1-10") {
		t.Errorf("drop events %+v", evs)
	}
}

func TestNewest(t *testing.T) {
	o := openAt(t, filepath.Join(t.TempDir(), "outbox.db"))
	if _, ok, err := o.Newest(ctx, edge.KindPosition); ok || err != nil {
		t.Errorf("Newest on an empty outbox = %v, %v", ok, err)
	}
	recs := append(fixes(1000, 3), edge.OBDRecord(telemetry.OBDSample{UnixMs: 5, PID: 0x010C, Value: 800}))
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	r, ok, err := o.Newest(ctx, edge.KindPosition)
	if err != nil || !ok || r.Seq() != 3 || r.Position.UnixMs != 3000 {
		t.Errorf("Newest = %+v, %v, %v; want seq 3", r, ok, err)
	}
}

// TestReadOnly: a read-only open sees the stats of a closed outbox, and
// fails fast (not as corruption) while a writer holds the file.
func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	if _, err := bolt.Open(path, &bolt.Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
	w := openAt(t, path)
	if err := w.Append(ctx, fixes(0, 4)); err != nil {
		t.Fatal(err)
	}
	_, err := bolt.Open(path, &bolt.Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond})
	if err == nil || errors.Is(err, edge.ErrCorrupt) {
		t.Fatalf("read-only open beside a writer = %v, want a lock timeout", err)
	}
	w.Close()
	r, err := bolt.Open(path, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if st := stats(t, r); st.Depth != 4 || st.NextSeq != 5 {
		t.Errorf("read-only stats %+v", st)
	}
}

// TestCapHoldsMapped: from 32 MiB on the whole capped file is mapped at open
// and bbolt grows the file in 16 MiB steps; the cap still holds.
func TestCapHoldsMapped(t *testing.T) {
	const maxBytes = 40 << 20
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), &bolt.Options{MaxBytes: maxBytes, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := 0; ; i++ {
		if err := o.Append(ctx, fixes(clock.UnixMilli()+int64(i)*1_000_000, 1000)); err != nil {
			t.Fatal(err)
		}
		st := stats(t, o)
		if st.FileBytes > maxBytes {
			t.Fatalf("after %d appends the file is %d bytes, over the cap of %d", i+1, st.FileBytes, maxBytes)
		}
		if st.Dropped > st.Depth {
			break // well past the cap: more dropped than kept
		}
	}
	checkSound(t, o)
}
