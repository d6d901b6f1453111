package bolt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// smallFS mounts a tmpfs of size (as mount's size=, e.g. "700k") for the
// test and unmounts it at the end. It needs root, as the tests run here.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs (the test needs root): %v", size, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// batch returns n positions from second from on, then an OBD sample.
func batch(from, n int) []edge.Record {
	var recs []edge.Record
	for i := range n {
		ms := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(from+i) * time.Second).UnixMilli()
		recs = append(recs, edge.PositionRecord(telemetry.Position{UnixMs: ms, LatE7: 481173000 + int32(from+i), LonE7: 115166667,
			Has: telemetry.HasSpeed | telemetry.HasAlt | telemetry.HasSatsUsed, SpeedMmps: 11524, AltCm: 54540, SatsUsed: 8}))
	}
	return append(recs, edge.OBDRecord(telemetry.OBDSample{UnixMs: recs[n-1].Position.UnixMs, PID: 0x010C, Value: 1726}))
}

// everyDropCounted checks the outbox's books with no ack in between: every
// seq given out is still stored or was dropped and counted.
func everyDropCounted(t *testing.T, st edge.OutboxStats) {
	t.Helper()
	if st.NextSeq-1 != st.Depth+st.Dropped || st.Dropped != st.DroppedThinned+st.DroppedOldest+st.DroppedExpired {
		t.Errorf("seqs given %d, stored %d + dropped %d (%d thinned, %d oldest, %d expired)", st.NextSeq-1, st.Depth,
			st.Dropped, st.DroppedThinned, st.DroppedOldest, st.DroppedExpired)
	}
}

// events returns the stored events of type typ.
func events(t *testing.T, o *bolt.Outbox, typ telemetry.EventType) []telemetry.Event {
	t.Helper()
	recs, err := o.Unsent(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []telemetry.Event
	for _, r := range recs {
		if r.Kind == edge.KindEvent && r.Event.Type == typ {
			out = append(out, r.Event)
		}
	}
	return out
}

// Item 12: a 700 KiB filesystem under an outbox whose cap is the default
// 256 MiB. The cap in force is what the filesystem holds, known from the
// start; appends go on past it, as they do past a reached cap: old
// positions thinned, then the oldest dropped, every drop counted and
// reported, the newest kept; the disk never fills.
func TestOutboxOnASmallFilesystem(t *testing.T) {
	dir := smallFS(t, "700k")
	o, err := bolt.Open(filepath.Join(dir, "outbox.db"), &bolt.Options{FSCheckEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxBytes != bolt.DefaultMaxBytes || st.CapBytes <= 0 || st.CapBytes >= 700<<10 || st.FSBytes != 700<<10 ||
		!strings.HasPrefix(st.Trouble, "filesystem full") {
		t.Fatalf("stats at open %+v", st)
	}
	if fi, err := os.Stat(filepath.Join(dir, "outbox.db.reserve")); err != nil || fi.Size() != bolt.BallastBytes {
		t.Errorf("ballast: %v %v", fi, err)
	}
	const rounds, per = 1500, 20 // about four times what the filesystem holds
	for i := range rounds {
		if err := o.Append(ctx, batch(i*per, per)); err != nil {
			t.Fatalf("append %d: %v (stats %+v)", i, err, st)
		}
		if i == 0 {
			// The first append says why the cap is lower than configured.
			if tr := events(t, o, telemetry.EventOutboxTrouble); len(tr) != 1 || tr[0].Code != "filesystem_full" || tr[0].Value != st.CapBytes {
				t.Errorf("trouble events %+v (cap %d)", tr, st.CapBytes)
			}
		}
	}
	st, _ = o.Stats(ctx)
	everyDropCounted(t, st)
	if st.DroppedThinned == 0 || st.DroppedOldest == 0 || st.NoSpace != 0 {
		t.Errorf("stats %+v: want thinned and dropped, and no commit to have met a full disk", st)
	}
	newest, ok, err := o.Newest(ctx, edge.KindPosition)
	if want := batch((rounds-1)*per, per)[per-1].Position.UnixMs; err != nil || !ok || newest.Position.UnixMs != want {
		t.Errorf("newest position %+v %v %v, want the last appended (%d)", newest.Position, ok, err, want)
	}
	if drops := events(t, o, telemetry.EventRecordsDropped); len(drops) == 0 || !strings.Contains(drops[0].Detail, "filesystem") {
		t.Errorf("drop events %+v", drops)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Bavail == 0 {
		t.Errorf("the filesystem filled up: %+v %v", fs, err)
	}
}

// Item 12: the disk filled by another writer, with no statfs in between to
// see it coming: the commit meets ENOSPC, the outbox drops records in a
// transaction of its own (the ballast gives it room if it needs some),
// and the append goes through.
func TestOutboxDiskFilledByAnother(t *testing.T) {
	dir := smallFS(t, "3m")
	o, err := bolt.Open(filepath.Join(dir, "outbox.db"), &bolt.Options{MaxBytes: 1 << 20, FSCheckEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if st, _ := o.Stats(ctx); st.CapBytes != 1<<20 || st.Trouble != "" {
		t.Fatalf("stats %+v: the filesystem holds the cap", st)
	}
	for i := range 300 {
		if err := o.Append(ctx, batch(i*20, 20)); err != nil {
			t.Fatal(err)
		}
	}
	// Another program fills the disk.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	for i := 300; i < 600; i++ {
		if err := o.Append(ctx, batch(i*20, 20)); err != nil {
			t.Fatalf("append %d on a full disk: %v", i, err)
		}
	}
	st, _ := o.Stats(ctx)
	everyDropCounted(t, st)
	if st.NoSpace == 0 || st.DroppedOldest+st.DroppedThinned == 0 || !strings.HasPrefix(st.Trouble, "filesystem full") || st.CapBytes >= 1<<20 {
		t.Errorf("stats %+v", st)
	}
	if newest, ok, _ := o.Newest(ctx, edge.KindPosition); !ok || newest.Position.UnixMs != batch(599*20, 20)[19].Position.UnixMs {
		t.Errorf("newest %+v, want the last appended", newest.Position)
	}
}
