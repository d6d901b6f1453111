package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var ctx = context.Background()

var clock = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func openAt(t *testing.T, path string) *bolt.Outbox {
	t.Helper()
	o, err := bolt.Open(path, &bolt.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// sample returns one record of each kind, every field set.
func sample() []edge.Record {
	return []edge.Record{
		edge.PositionRecord(telemetry.Position{
			UnixMs: 1795773600000, LatE7: 437384166, LonE7: 74246333,
			Has: telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality |
				telemetry.HasSatsUsed | telemetry.HasHDOP | telemetry.HasErrAlt,
			AltCm: 5230, SpeedMmps: 13891, CourseCdeg: 4520, Quality: 1, SatsUsed: 9, HDOPc: 90, ErrAltCm: -7,
			GeoidSepCm: 999, // not in Has: not stored, comes back 0
		}),
		edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773600412, PID: 0x010C, Value: 1303.75}).Stamped(time.UnixMilli(1795773600412), edge.TimeGNSS),
		edge.EventRecord(telemetry.Event{UnixMs: 1795773600500, Type: telemetry.EventDTCSet, Code: "P0301", Detail: "é", Value: -3}).Stamped(time.UnixMilli(1795773600500), edge.TimeUnsynced),
		edge.PositionRecord(telemetry.Position{UnixMs: -1, LatE7: -900000000, LonE7: 1800000000}),
	}
}

func TestAppendUnsentAck(t *testing.T) {
	o := openAt(t, filepath.Join(t.TempDir(), "outbox.db"))
	recs := sample()
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if got := recs[i].Seq(); got != uint64(i+1) {
			t.Errorf("record %d got seq %d, want %d", i, got, i+1)
		}
	}
	want := sample()
	for i := range want {
		want[i].SetSeq(uint64(i + 1))
	}
	want[0].Position.GeoidSepCm = 0
	got, err := o.Unsent(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Unsent (-want +got):\n%s", diff)
	}
	if got, _ := o.Unsent(ctx, 2, 1); len(got) != 1 || got[0].Seq() != 3 {
		t.Errorf("Unsent(after 2, max 1) = %+v, want seq 3", got)
	}
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 4 || st.NextSeq != 5 || st.Bytes == 0 || !st.OldestUnsent.Equal(clock) || st.StreamID != o.StreamID() {
		t.Errorf("Stats = %+v", st)
	}

	// Ack is idempotent and ignores what was never stored.
	for i, step := range []struct {
		ranges  []telemetry.SeqRange
		deleted int
		left    []uint64
	}{
		{[]telemetry.SeqRange{{First: 2, Last: 3}}, 2, []uint64{1, 4}},
		{[]telemetry.SeqRange{{First: 2, Last: 3}}, 0, []uint64{1, 4}},
		{[]telemetry.SeqRange{{First: 4, Last: 1 << 40}, {First: 0, Last: 0}}, 1, []uint64{1}},
		{[]telemetry.SeqRange{{First: 5, Last: 3}}, 0, []uint64{1}}, // First > Last: ignored
		{[]telemetry.SeqRange{{First: 1, Last: 1}}, 1, nil},
	} {
		n, err := o.Ack(ctx, step.ranges)
		if err != nil || n != step.deleted {
			t.Errorf("step %d: Ack(%v) = %d, %v; want %d", i, step.ranges, n, err, step.deleted)
		}
		got, err := o.Unsent(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range got {
			seqs = append(seqs, r.Seq())
		}
		if diff := cmp.Diff(step.left, seqs); diff != "" {
			t.Errorf("step %d: left (-want +got):\n%s", i, diff)
		}
	}
	st, _ = o.Stats(ctx)
	if st.Depth != 0 || st.Bytes != 0 || !st.OldestUnsent.IsZero() || st.NextSeq != 5 {
		t.Errorf("Stats after acking everything = %+v", st)
	}
}

func TestReopenKeepsStreamAndSeq(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	o, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, sample()); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Ack(ctx, []telemetry.SeqRange{{First: 1, Last: 2}}); err != nil {
		t.Fatal(err)
	}
	stream := o.StreamID()
	if stream == 0 {
		t.Fatal("stream id 0")
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, sample()); !errors.Is(err, edge.ErrOutboxClosed) {
		t.Errorf("Append after Close = %v", err)
	}

	o = openAt(t, path)
	if o.StreamID() != stream {
		t.Errorf("stream id %x after reopen, was %x", o.StreamID(), stream)
	}
	recs := sample()[:1]
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq() != 5 {
		t.Errorf("first seq after reopen = %d, want 5", recs[0].Seq())
	}
	got, _ := o.Unsent(ctx, 0, 10)
	if len(got) != 3 || got[0].Seq() != 3 || got[2].Seq() != 5 {
		t.Errorf("after reopen Unsent = %d records starting %d", len(got), got[0].Seq())
	}

	other := openAt(t, filepath.Join(dir, "other.db"))
	if other.StreamID() == stream {
		t.Errorf("a new file got the same stream id %x", stream)
	}
}

func TestGroupCommitIsOneTransaction(t *testing.T) {
	o := openAt(t, filepath.Join(t.TempDir(), "outbox.db"))
	recs := make([]edge.Record, 500)
	for i := range recs {
		recs[i] = edge.PositionRecord(telemetry.Position{UnixMs: int64(i), LatE7: int32(i)})
	}
	before, _ := o.Stats(ctx)
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	after, _ := o.Stats(ctx)
	if n := after.Commits - before.Commits; n != 1 {
		t.Errorf("Append of 500 records made %d commits, want 1", n)
	}
	if after.Depth != 500 || after.NextSeq != 501 {
		t.Errorf("Stats = %+v", after)
	}
}

func TestCorruptFileIsQuarantined(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"garbage", bytes.Repeat([]byte("not a bbolt file "), 2000)},
		{"short garbage", []byte("junk")},
		{"zeroed header", make([]byte, 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "outbox.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			o := openAt(t, path)
			moved := o.Quarantined()
			if !strings.HasPrefix(moved, path+".corrupt-") {
				t.Fatalf("Quarantined() = %q", moved)
			}
			if b, err := os.ReadFile(moved); err != nil || !bytes.Equal(b, tt.content) {
				t.Errorf("quarantined file not kept as it was: %v", err)
			}
			got, err := o.Unsent(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			want := []edge.Record{edge.EventRecord(telemetry.Event{
				Seq: 1, UnixMs: clock.UnixMilli(), Type: telemetry.EventOutboxQuarantined, Detail: moved,
			})}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records of the new outbox (-want +got):\n%s", diff)
			}
			recs := sample()
			if err := o.Append(ctx, recs); err != nil || recs[0].Seq() != 2 {
				t.Errorf("Append on the new outbox: %v, seq %d", err, recs[0].Seq())
			}
		})
	}
}

func TestLockedFileIsNotQuarantined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	openAt(t, path)
	o, err := bolt.Open(path, &bolt.Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		o.Close()
		t.Fatal("a second Open of a locked file succeeded")
	}
	if errors.Is(err, edge.ErrCorrupt) {
		t.Errorf("lock timeout reported as corruption: %v", err)
	}
	if matches, _ := filepath.Glob(path + ".corrupt-*"); len(matches) != 0 {
		t.Errorf("a locked file was quarantined: %v", matches)
	}
}

func TestCancelledContext(t *testing.T) {
	o := openAt(t, filepath.Join(t.TempDir(), "outbox.db"))
	c, cancel := context.WithCancel(ctx)
	cancel()
	recs := sample()
	if err := o.Append(c, recs); !errors.Is(err, context.Canceled) || recs[0].Seq() != 0 {
		t.Errorf("Append on a cancelled context = %v, seq %d", err, recs[0].Seq())
	}
	if st, _ := o.Stats(ctx); st.Depth != 0 || st.NextSeq != 1 {
		t.Errorf("a refused Append changed the outbox: %+v", st)
	}
}
