// Package bolt is the agent's durable outbox on bbolt (go.etcd.io/bbolt, which
// no other package imports). Records wait here, keyed by their sequence
// number, until the cloud acknowledges them.
//
// The file holds two buckets:
//
//	records  key: seq, 8 bytes big-endian; value: the record (see encodeRecord)
//	meta     stream_id (8 bytes, random, made with the file), next_seq,
//	         count, bytes, dropped (8 bytes each, big-endian), format (1 byte)
//
// Every change to records updates meta in the same transaction, so the seq
// counter and the records can never disagree after a crash.
package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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
)

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
}

// Outbox is the durable outbox in one bbolt file. It implements edge.Outbox;
// its methods are safe for concurrent use (bbolt serialises writers and lets
// readers run beside them).
type Outbox struct {
	db          *bbolt.DB
	path        string
	streamID    uint64
	now         func() time.Time
	commits     atomic.Uint64
	corrupt     atomic.Uint64
	closed      atomic.Bool
	quarantined string
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
	o, err := open(path, lock, rnd, now)
	if err == nil || !errors.Is(err, edge.ErrCorrupt) {
		return o, err
	}
	moved := path + ".corrupt-" + now().UTC().Format("20060102T150405.000Z")
	if rerr := os.Rename(path, moved); rerr != nil {
		return nil, fmt.Errorf("quarantine %s after %v: %w", path, err, rerr)
	}
	o, oerr := open(path, lock, rnd, now)
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

// open opens or creates the file. Errors that mean the file is not a usable
// outbox wrap edge.ErrCorrupt.
func open(path string, lock time.Duration, rnd io.Reader, now func() time.Time) (o *Outbox, err error) {
	// Options chosen for crash safety first, then for a small ARM board:
	//   NoSync false: every commit is fdatasync'ed; an acknowledged Append
	//     survives a power cut. (Group commit keeps that to one per flush.)
	//   NoGrowSync false: growing the file is synced too.
	//   NoFreelistSync false: the freelist is written with each commit, so
	//     opening after a crash does not scan the whole file.
	//   FreelistMapType: O(1) page allocation; the outbox appends at the tail
	//     and deletes at the head, so free pages pile up.
	//   Timeout: a second process fails fast instead of waiting forever.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        lock,
		NoSync:         false,
		NoGrowSync:     false,
		NoFreelistSync: false,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) ||
			errors.Is(err, bolterrors.ErrChecksum) || isTooSmall(path) {
			return nil, fmt.Errorf("open outbox %s: %w: %w", path, edge.ErrCorrupt, err)
		}
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o = &Outbox{db: db, path: path, now: now}
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
	err = db.Update(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		meta := tx.Bucket(bucketMeta)
		if meta == nil && recs == nil {
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
	for k, v := range map[string]uint64{"next_seq": 1, "count": 0, "bytes": 0, "dropped": 0} {
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

// Append stores recs in one transaction with consecutive seqs; see
// edge.Outbox. ctx is checked before the transaction starts (bbolt cannot
// abandon one midway).
func (o *Outbox) Append(ctx context.Context, recs []edge.Record) error {
	if err := o.check(ctx, "outbox append"); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	appended := o.now().UnixMilli()
	var first uint64
	err := o.db.Update(func(tx *bbolt.Tx) error {
		b, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
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
		size := uint64(len(arena))
		n := uint64(len(recs))
		return putAll(meta, map[string]uint64{
			"next_seq": first + n,
			"count":    getU64(meta, keyCount) + n,
			"bytes":    getU64(meta, keyBytes) + size,
		})
	})
	if err != nil {
		return fmt.Errorf("outbox append %d records: %w", len(recs), err)
	}
	o.commits.Add(1)
	for i := range recs {
		recs[i].SetSeq(first + uint64(i))
	}
	return nil
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
			StreamID:  o.streamID,
			NextSeq:   getU64(meta, keyNextSeq),
			Depth:     getU64(meta, keyCount),
			Bytes:     getU64(meta, keyBytes),
			Dropped:   getU64(meta, keyDropped),
			Commits:   o.commits.Load(),
			FileBytes: tx.Size(),
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
