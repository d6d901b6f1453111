// Package bolt is the agent's durable outbox on bbolt (go.etcd.io/bbolt, which
// no other package imports). Records wait here, keyed by their sequence
// number, until the cloud acknowledges them.
//
// The file holds these buckets:
//
//	records   key: seq, 8 bytes big-endian; value: the record (see encodeRecord)
//	meta      stream_id (8 bytes, random, made with the file), next_seq,
//	          count, bytes, dropped, dropped_thinned, dropped_oldest,
//	          dropped_expired (8 bytes each, big-endian), format (1 byte)
//	commands  key: command id; value: expiry (8 bytes, ms) + the encoded
//	          CommandResult (see CommandLog)
//
// Every change to records updates meta in the same transaction, so the seq
// counter, the drop counters and the records can never disagree after a
// crash.
//
// # Bounds
//
// The file is capped by Options.MaxBytes and the records by Options.MaxAge.
// Append enforces both in its own transaction (edge/README.md): records
// appended more than MaxAge ago are dropped; when the stored records' page
// use passes the budget (see Budget) it first thins old positions — in the
// oldest quarter of the outbox it deletes every second fix, never leaving
// two kept fixes more than ThinMaxGap apart — and only if that is not
// enough drops the oldest records of any kind, until the page use is 90 %
// of the budget. Every drop is counted in meta, and the same transaction
// appends an EventRecordsDropped record saying how many and why, so the
// cloud learns of it too. bbolt's MaxSize is set to MaxBytes as a backstop:
// should the file still need to grow past it, Append drops the oldest tenth
// and tries again.
package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")

	keyFormat   = []byte("format")
	keyStreamID = []byte("stream_id")
	keyNextSeq  = []byte("next_seq")
	keyCount    = []byte("count")
	keyBytes    = []byte("bytes")
	keyDropped  = []byte("dropped")

	bucketCommands = []byte("commands")
)

// Defaults of Options.
const (
	DefaultMaxBytes   = 256 << 20
	DefaultMaxAge     = 30 * 24 * time.Hour
	DefaultThinMaxGap = 5 * time.Minute
)

// leafElementSize is bbolt's per-key overhead on a leaf page; with the key
// and value it is what a record costs in pages (pages are filled to 100 %
// by Append, see fillPercent).
const leafElementSize = 16

// fillPercent: records are appended at the end of the key space, so a full
// page is never split again; filling pages completely keeps the file close
// to the records' size.
const fillPercent = 1.0

// maxFileBytes32 is the largest MaxBytes on a 32-bit system: bbolt maps the
// whole file, and an arm/v7 process has about 3 GiB of address space in
// which the mapping must be one free run.
const maxFileBytes32 = 1 << 30

// fileFormat is meta/format: the layout above.
const fileFormat = 1

// Options configure Open. A nil *Options means the defaults.
type Options struct {
	// Now is the agent clock (append times, quarantine names); nil means
	// time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to release the
	// file; default 1s. The outbox is one process's: a second agent on the
	// same data directory fails instead of waiting forever.
	LockTimeout time.Duration
	// Rand is the source of new stream ids; nil means crypto/rand.
	Rand io.Reader
	// MaxBytes caps the file's size; 0 means DefaultMaxBytes, below 0 no
	// cap. On a 32-bit system it may be at most 1 GiB.
	MaxBytes int64
	// MaxAge drops records appended longer ago than this; 0 means
	// DefaultMaxAge, below 0 no age cap.
	MaxAge time.Duration
	// ThinMaxGap is the widest gap (in record time) that thinning may leave
	// between two kept positions; 0 means DefaultThinMaxGap.
	ThinMaxGap time.Duration
	// ReadOnly opens an existing file for reading (Stats, Unsent) with a
	// shared lock: it fails after LockTimeout while an agent has the file
	// open, and never creates, repairs or quarantines anything.
	ReadOnly bool
	// FSReserve is the room left on the filesystem to everything else in
	// the data directory (at least 1 % of the filesystem); 0 means
	// DefaultFSReserve. See "The filesystem's share of the bounds".
	FSReserve int64
	// FSCheckEvery is how often Append reads the filesystem's free space
	// again; 0 means DefaultFSCheckEvery.
	FSCheckEvery time.Duration
}

// Budget returns how many bytes of pages the stored records may use under a
// file cap of maxBytes: half of it up to 64 MiB (bbolt grows a small file by
// doubling it), above that three quarters less bbolt's 16 MiB growth step.
// Keeping the records within it keeps the file within maxBytes.
func Budget(maxBytes int64) int64 {
	if maxBytes <= 64<<20 {
		return maxBytes / 2
	}
	return maxBytes - maxBytes/4 - 16<<20
}

// Outbox is the durable outbox in one bbolt file. It implements edge.Outbox;
// its methods are safe for concurrent use (bbolt serialises writers and lets
// readers run beside them).
type Outbox struct {
	db          *bbolt.DB
	path        string
	streamID    uint64
	now         func() time.Time
	maxBytes    int64  // 0: no cap
	space       *space // the filesystem's share; nil read-only
	maxAge      time.Duration
	thinGap     int64 // ms
	commits     atomic.Uint64
	corrupt     atomic.Uint64
	closed      atomic.Bool
	quarantined string
	// shed holds drops made by the MaxSize backstop that no
	// EventRecordsDropped record has reported yet.
	shed dropCount
}

var _ edge.Outbox = (*Outbox)(nil)

// Open opens the outbox file at path, creating it (with a new random stream
// id) if it does not exist. A file that is not a readable outbox (not bbolt,
// a damaged header, a foreign layout) is renamed to
// path.corrupt-<UTC time>, a new outbox is created in its place, and an
// EventOutboxQuarantined record naming the old file is its first record;
// Quarantined says where it went. Other failures (permissions, a lock held
// past LockTimeout) are returned.
func Open(path string, opts *Options) (*Outbox, error) {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	lock := opts.LockTimeout
	if lock <= 0 {
		lock = time.Second
	}
	lim := limits{maxBytes: opts.MaxBytes, maxAge: opts.MaxAge, thinGap: opts.ThinMaxGap, readOnly: opts.ReadOnly,
		fsReserve: opts.FSReserve, fsEvery: opts.FSCheckEvery}
	if lim.fsReserve <= 0 {
		lim.fsReserve = DefaultFSReserve
	}
	if lim.fsEvery <= 0 {
		lim.fsEvery = DefaultFSCheckEvery
	}
	if lim.maxBytes == 0 {
		lim.maxBytes = DefaultMaxBytes
	}
	if lim.maxBytes < 0 {
		lim.maxBytes = 0
	}
	if lim.maxBytes > 0 && lim.maxBytes < 1<<20 {
		return nil, fmt.Errorf("open outbox %s: max bytes %d: must be at least 1 MiB", path, lim.maxBytes)
	}
	if strconv.IntSize == 32 && lim.maxBytes > maxFileBytes32 {
		return nil, fmt.Errorf("open outbox %s: max bytes %d: at most 1 GiB on a 32-bit system", path, lim.maxBytes)
	}
	if lim.maxAge == 0 {
		lim.maxAge = DefaultMaxAge
	}
	if lim.thinGap <= 0 {
		lim.thinGap = DefaultThinMaxGap
	}
	o, err := open(path, lock, rnd, now, lim)
	if err == nil || !errors.Is(err, edge.ErrCorrupt) || lim.readOnly {
		return o, err
	}
	moved := path + ".corrupt-" + now().UTC().Format("20060102T150405.000Z")
	if rerr := os.Rename(path, moved); rerr != nil {
		return nil, fmt.Errorf("quarantine %s after %v: %w", path, err, rerr)
	}
	o, oerr := open(path, lock, rnd, now, lim)
	if oerr != nil {
		return nil, fmt.Errorf("new outbox after quarantining %s: %w", moved, oerr)
	}
	o.quarantined = moved
	ev := edge.EventRecord(telemetry.Event{UnixMs: now().UnixMilli(), Type: telemetry.EventOutboxQuarantined, Detail: moved})
	if aerr := o.Append(context.Background(), []edge.Record{ev}); aerr != nil {
		o.Close()
		return nil, fmt.Errorf("record quarantine of %s: %w", moved, aerr)
	}
	return o, nil
}

type limits struct {
	maxBytes  int64
	maxAge    time.Duration
	thinGap   time.Duration
	readOnly  bool
	fsReserve int64
	fsEvery   time.Duration
}

// open opens or creates the file. Errors that mean the file is not a usable
// outbox wrap edge.ErrCorrupt.
func open(path string, lock time.Duration, rnd io.Reader, now func() time.Time, lim limits) (o *Outbox, err error) {
	// Options chosen for crash safety first, then for a small ARM board:
	//   NoSync false: every commit is fdatasync'ed; an acknowledged Append
	//     survives a power cut. (Group commit keeps that to one per flush.)
	//   NoGrowSync false: growing the file is synced too.
	//   NoFreelistSync false: the freelist is written with each commit, so
	//     opening after a crash does not scan the whole file.
	//   FreelistMapType: O(1) page allocation; the outbox appends at the tail
	//     and deletes at the head, so free pages pile up.
	//   Timeout: a second process fails fast instead of waiting forever.
	//   MaxSize: the file never grows past the cap (see Bounds).
	//   InitialMmapSize: the whole capped file is mapped once, so a write
	//     never waits for readers to let go of a smaller mapping. Only from
	//     32 MiB on (below, bbolt would grow the file to the mapping's
	//     size) and at most 1 GiB, which a 32-bit arm/v7 process can map.
	bo := &bbolt.Options{
		Timeout:        lock,
		NoSync:         false,
		NoGrowSync:     false,
		NoFreelistSync: false,
		FreelistType:   bbolt.FreelistMapType,
		ReadOnly:       lim.readOnly,
	}
	if lim.maxBytes > 0 && !lim.readOnly {
		bo.MaxSize = int(lim.maxBytes)
		if lim.maxBytes >= 32<<20 {
			bo.InitialMmapSize = int(min(lim.maxBytes, maxFileBytes32))
		}
	}
	if lim.readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open outbox %s: %w", path, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, bo)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) ||
			errors.Is(err, bolterrors.ErrChecksum) || isTooSmall(path) {
			return nil, fmt.Errorf("open outbox %s: %w: %w", path, edge.ErrCorrupt, err)
		}
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o = &Outbox{db: db, path: path, now: now, maxBytes: lim.maxBytes, maxAge: lim.maxAge, thinGap: lim.thinGap.Milliseconds()}
	if !lim.readOnly {
		o.space = &space{path: path, reserve: lim.fsReserve, every: lim.fsEvery}
		o.space.check(now(), true)
	}
	defer func() {
		// bbolt panics on some damaged pages; such a file is corrupt.
		if p := recover(); p != nil {
			err = fmt.Errorf("open outbox %s: %w: %v", path, edge.ErrCorrupt, p)
		}
		if err != nil {
			db.Close()
			o = nil
		}
	}()
	update := db.Update
	if lim.readOnly {
		update = db.View
	}
	err = update(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		meta := tx.Bucket(bucketMeta)
		if meta == nil && recs == nil {
			if lim.readOnly {
				return fmt.Errorf("%w: no outbox buckets", edge.ErrCorrupt)
			}
			return o.create(tx, rnd)
		}
		if meta == nil || recs == nil {
			return fmt.Errorf("%w: only one of the buckets exists", edge.ErrCorrupt)
		}
		if f := meta.Get(keyFormat); len(f) != 1 || f[0] != fileFormat {
			return fmt.Errorf("%w: meta/format is %x, want %d", edge.ErrCorrupt, f, fileFormat)
		}
		for _, k := range [][]byte{keyStreamID, keyNextSeq, keyCount, keyBytes, keyDropped} {
			if len(meta.Get(k)) != 8 {
				return fmt.Errorf("%w: meta/%s missing", edge.ErrCorrupt, k)
			}
		}
		o.streamID = getU64(meta, keyStreamID)
		if !lim.readOnly && tx.Bucket(bucketCommands) == nil {
			_, err := tx.CreateBucket(bucketCommands) // files made before commands existed
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	return o, nil
}

// isTooSmall reports whether the file is too short to hold bbolt's two meta
// pages, which bbolt reports with a plain error.
func isTooSmall(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() > 0 && fi.Size() < 2*int64(os.Getpagesize())
}

func (o *Outbox) create(tx *bbolt.Tx, rnd io.Reader) error {
	var id [8]byte
	for binary.BigEndian.Uint64(id[:]) == 0 {
		if _, err := io.ReadFull(rnd, id[:]); err != nil {
			return fmt.Errorf("stream id: %w", err)
		}
	}
	if _, err := tx.CreateBucket(bucketRecords); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketCommands); err != nil {
		return err
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keyFormat, []byte{fileFormat}); err != nil {
		return err
	}
	if err := meta.Put(keyStreamID, id[:]); err != nil {
		return err
	}
	for k, v := range map[string]uint64{"next_seq": 1, "count": 0, "bytes": 0, "dropped": 0,
		"dropped_thinned": 0, "dropped_oldest": 0, "dropped_expired": 0} {
		if err := putU64(meta, []byte(k), v); err != nil {
			return err
		}
	}
	o.streamID = binary.BigEndian.Uint64(id[:])
	return nil
}

// Close closes the file. Later calls return errors wrapping
// edge.ErrOutboxClosed.
func (o *Outbox) Close() error {
	if o.closed.Swap(true) {
		return nil
	}
	return o.db.Close()
}

// Path returns the file's path.
func (o *Outbox) Path() string { return o.path }

// Quarantined returns where Open moved a corrupt file, or "".
func (o *Outbox) Quarantined() string { return o.quarantined }

// StreamID returns the stream id made with the file.
func (o *Outbox) StreamID() uint64 { return o.streamID }

func (o *Outbox) check(ctx context.Context, op string) error {
	if o.closed.Load() {
		return fmt.Errorf("%s: %w", op, edge.ErrOutboxClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Append stores recs in one transaction with consecutive seqs, and in the
// same transaction applies the bounds (see Bounds), appending an
// EventRecordsDropped record after recs when it dropped anything; see
// edge.Outbox. ctx is checked before the transaction starts (bbolt cannot
// abandon one midway).
func (o *Outbox) Append(ctx context.Context, recs []edge.Record) error {
	if err := o.check(ctx, "outbox append"); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	first, err := o.append(recs)
	if noSpace(err) || maxSizeReached(err) {
		// The backstop: the disk is full (another writer, or the estimate of
		// page use was wrong), or bbolt's MaxSize is reached (a long-lived
		// reader kept freed pages from being reused). Make room in a
		// transaction of its own, whose freed pages the retry reuses; if
		// even that finds no room, the ballast gives it some.
		if noSpace(err) {
			o.space.full()
		}
		serr := o.db.Update(func(tx *bbolt.Tx) error { return o.makeRoom(tx, o.budget()) })
		if noSpace(serr) && o.space.dropBallast() {
			serr = o.db.Update(func(tx *bbolt.Tx) error { return o.makeRoom(tx, o.budget()) })
		}
		if serr != nil {
			return fmt.Errorf("outbox append %d records: %w (making room: %w)", len(recs), err, serr)
		}
		o.commits.Add(1)
		first, err = o.append(recs)
	}
	if err != nil {
		return fmt.Errorf("outbox append %d records: %w", len(recs), err)
	}
	o.commits.Add(1)
	for i := range recs {
		recs[i].SetSeq(first + uint64(i))
	}
	return nil
}

// capBytes returns the cap in force: MaxBytes, or what the filesystem can
// give the file when that is less (0: no cap).
func (o *Outbox) capBytes() int64 {
	if o.space == nil {
		return o.maxBytes
	}
	return o.space.limit(o.maxBytes, o.now())
}

// budget returns the page use the records may have under the cap in force
// (0: no bound).
func (o *Outbox) budget() int64 {
	if c := o.capBytes(); c > 0 {
		return Budget(c)
	}
	return 0
}

func (o *Outbox) append(recs []edge.Record) (first uint64, err error) {
	budget := o.budget()
	now := o.now()
	appended := now.UnixMilli()
	var trouble *telemetry.Event
	if o.space != nil {
		trouble = o.space.takeEvent()
	}
	defer func() {
		if err != nil && o.space != nil {
			o.space.putBack(trouble)
		}
	}()
	err = o.db.Update(func(tx *bbolt.Tx) error {
		b, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		b.FillPercent = fillPercent
		first = getU64(meta, keyNextSeq)
		// bbolt keeps the key and value slices until the commit, so they
		// live in one arena that only ever grows: earlier slices stay valid.
		arena := make([]byte, 0, 48*len(recs))
		for i := range recs {
			start := len(arena)
			arena = binary.BigEndian.AppendUint64(arena, first+uint64(i))
			arena = encodeRecord(arena, &recs[i], appended)
			if err := b.Put(arena[start:start+8:start+8], arena[start+8:len(arena):len(arena)]); err != nil {
				return err
			}
		}
		n := uint64(len(recs))
		st := state{nextSeq: first + n, count: getU64(meta, keyCount) + n, bytes: getU64(meta, keyBytes) + uint64(len(arena))}
		dropped, err := o.enforce(b, &st, appended, budget)
		if err != nil {
			return err
		}
		if err := st.put(meta, dropped); err != nil {
			return err
		}
		dropped.add(o.shed) // counted already, reported now
		if err := o.reportDrops(b, &st, dropped, appended); err != nil {
			return err
		}
		if trouble != nil {
			if err := o.putEvents(b, &st, []telemetry.Event{*trouble}, appended); err != nil {
				return err
			}
		}
		return putAll(meta, map[string]uint64{"next_seq": st.nextSeq, "count": st.count, "bytes": st.bytes})
	})
	if err == nil {
		o.shed = dropCount{}
	}
	return first, err
}

// Unsent returns up to max records with seq > after, in seq order. A stored
// value that does not decode is skipped and counted (Stats.Corrupt) rather
// than blocking the uplink behind it forever.
func (o *Outbox) Unsent(ctx context.Context, after uint64, max int) ([]edge.Record, error) {
	if err := o.check(ctx, "outbox read"); err != nil {
		return nil, err
	}
	if max <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	var out []edge.Record
	err := o.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], after+1)
		for k, v := c.Seek(start[:]); k != nil && len(out) < max; k, v = c.Next() {
			r, _, err := decodeRecord(v, binary.BigEndian.Uint64(k))
			if err != nil {
				o.corrupt.Add(1)
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox read: %w", err)
	}
	return out, nil
}

// Ack deletes the records the ranges cover, in one transaction, and returns
// how many it deleted; see edge.Outbox.
func (o *Outbox) Ack(ctx context.Context, ranges []telemetry.SeqRange) (int, error) {
	if err := o.check(ctx, "outbox ack"); err != nil {
		return 0, err
	}
	ranges = telemetry.MergeRanges(ranges)
	if len(ranges) == 0 {
		return 0, nil
	}
	deleted := 0
	err := o.db.Update(func(tx *bbolt.Tx) error {
		b, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		b.FillPercent = fillPercent
		var keys [][]byte
		var size uint64
		c := b.Cursor()
		for _, r := range ranges {
			var start [8]byte
			binary.BigEndian.PutUint64(start[:], r.First)
			for k, v := c.Seek(start[:]); k != nil && binary.BigEndian.Uint64(k) <= r.Last; k, v = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
				size += uint64(len(k) + len(v))
			}
		}
		// Deleted after the walk: deleting under a bbolt cursor can skip keys.
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		deleted = len(keys)
		if deleted == 0 {
			return nil
		}
		return putAll(meta, map[string]uint64{
			"count": getU64(meta, keyCount) - uint64(deleted),
			"bytes": getU64(meta, keyBytes) - size,
		})
	})
	if err != nil {
		return 0, fmt.Errorf("outbox ack: %w", err)
	}
	if deleted > 0 {
		o.commits.Add(1)
	}
	return deleted, nil
}

// Stats reports the outbox's size and identity.
func (o *Outbox) Stats(ctx context.Context) (edge.OutboxStats, error) {
	if err := o.check(ctx, "outbox stats"); err != nil {
		return edge.OutboxStats{}, err
	}
	var s edge.OutboxStats
	err := o.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		s = edge.OutboxStats{
			StreamID:       o.streamID,
			NextSeq:        getU64(meta, keyNextSeq),
			Depth:          getU64(meta, keyCount),
			Bytes:          getU64(meta, keyBytes),
			Dropped:        getU64(meta, keyDropped),
			DroppedThinned: getU64(meta, keyDroppedThinned),
			DroppedOldest:  getU64(meta, keyDroppedOldest),
			DroppedExpired: getU64(meta, keyDroppedExpired),
			MaxBytes:       o.maxBytes,
			CapBytes:       o.maxBytes,
			Commits:        o.commits.Load(),
			FileBytes:      fileSize(o.path, tx.Size()),
		}
		if o.space != nil {
			s.CapBytes = o.capBytes()
			_, s.FSBytes, s.NoSpace = o.space.stats()
			s.Trouble = o.space.trouble(o.maxBytes)
		}
		if k, v := tx.Bucket(bucketRecords).Cursor().First(); k != nil {
			if _, appended, err := decodeRecord(v, binary.BigEndian.Uint64(k)); err == nil {
				s.OldestUnsent = time.UnixMilli(appended)
			}
		}
		return nil
	})
	if err != nil {
		return edge.OutboxStats{}, fmt.Errorf("outbox stats: %w", err)
	}
	return s, nil
}

// fileSize returns the bytes the file takes on disk (bbolt grows it ahead of
// the pages in use, sparsely: its unwritten tail takes none), or inUse when
// it cannot be read.
func fileSize(path string, inUse int64) int64 {
	if n := allocated(path); n > 0 {
		return n
	}
	return inUse
}

// Newest returns the record of kind with the highest seq among the newest
// 100000 stored records; see edge.Outbox.
func (o *Outbox) Newest(ctx context.Context, kind edge.Kind) (edge.Record, bool, error) {
	if err := o.check(ctx, "outbox read"); err != nil {
		return edge.Record{}, false, err
	}
	var (
		rec   edge.Record
		found bool
	)
	err := o.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		n := 0
		for k, v := c.Last(); k != nil && n < 100000; k, v = c.Prev() {
			n++
			if len(v) < 2 || edge.Kind(v[1]&0x0f) != kind {
				continue
			}
			r, _, err := decodeRecord(v, binary.BigEndian.Uint64(k))
			if err != nil {
				o.corrupt.Add(1)
				continue
			}
			rec, found = r, true
			return nil
		}
		return nil
	})
	if err != nil {
		return edge.Record{}, false, fmt.Errorf("outbox read: %w", err)
	}
	return rec, found, nil
}

// Check runs bbolt's consistency check of the whole file (the one `bbolt
// check` runs) in a read transaction and returns every problem it finds,
// joined; nil means the file is sound.
func (o *Outbox) Check(ctx context.Context) error {
	if err := o.check(ctx, "outbox check"); err != nil {
		return err
	}
	return o.db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Corrupt returns how many stored records Unsent skipped because they did not
// decode, since Open.
func (o *Outbox) Corrupt() uint64 { return o.corrupt.Load() }

func getU64(b *bbolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bbolt.Bucket, k []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(k, buf[:])
}

func putAll(b *bbolt.Bucket, kv map[string]uint64) error {
	for k, v := range kv {
		if err := putU64(b, []byte(k), v); err != nil {
			return err
		}
	}
	return nil
}
