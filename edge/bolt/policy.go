package bolt

import (
	"encoding/binary"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var (
	keyDroppedThinned = []byte("dropped_thinned")
	keyDroppedOldest  = []byte("dropped_oldest")
	keyDroppedExpired = []byte("dropped_expired")
)

// state is meta's counters during a write transaction.
type state struct {
	nextSeq, count, bytes uint64
}

// cost is the page use of the stored records, estimated.
func (s *state) cost() int64 { return int64(s.bytes + leafElementSize*s.count) }

// put writes the counters, adding d to the drop counters.
func (s *state) put(meta *bbolt.Bucket, d dropCount) error {
	kv := map[string]uint64{"next_seq": s.nextSeq, "count": s.count, "bytes": s.bytes}
	if d.total() > 0 {
		kv["dropped"] = getU64(meta, keyDropped) + d.total()
		kv["dropped_thinned"] = getU64(meta, keyDroppedThinned) + d.thinned
		kv["dropped_oldest"] = getU64(meta, keyDroppedOldest) + d.oldest
		kv["dropped_expired"] = getU64(meta, keyDroppedExpired) + d.expired
	}
	return putAll(meta, kv)
}

// dropCount is what the bounds dropped, by reason, with the seq ranges.
type dropCount struct {
	thinned, oldest, expired uint64
	ranges                   []telemetry.SeqRange
}

func (d dropCount) total() uint64 { return d.thinned + d.oldest + d.expired }

func (d *dropCount) add(e dropCount) {
	d.thinned += e.thinned
	d.oldest += e.oldest
	d.expired += e.expired
	d.ranges = append(d.ranges, e.ranges...)
}

// entry is one stored record as the bounds see it.
type entry struct {
	key      []byte
	cost     uint64
	size     uint64 // len(key) + len(value)
	kind     edge.Kind
	appended int64 // ms, agent clock
	unixMs   int64 // record time
}

// peek reads the header of a stored value without decoding the record. ok
// is false for a value that does not start like one (it is then dropped
// like any other record when its turn comes).
func peek(k, v []byte) (e entry, ok bool) {
	e = entry{key: k, size: uint64(len(k) + len(v)), cost: uint64(len(k)+len(v)) + leafElementSize}
	if len(v) < 2 || v[0] != recordFormat {
		return e, false
	}
	e.kind = edge.Kind(v[1] & 0x0f)
	a, n := binary.Uvarint(v[2:])
	if n <= 0 {
		return e, false
	}
	t, m := binary.Varint(v[2+n:])
	if m <= 0 {
		return e, false
	}
	e.appended, e.unixMs = int64(a), t
	return e, true
}

// enforce applies the age and size bounds to the records bucket, updating
// st, and returns what it dropped. now is the append time (ms); budget the
// page use the records may have (0: no size bound).
func (o *Outbox) enforce(b *bbolt.Bucket, st *state, now, budget int64) (dropCount, error) {
	var d dropCount
	if o.maxAge > 0 {
		cutoff := now - o.maxAge.Milliseconds()
		var gone []entry
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, ok := peek(k, v)
			if ok && e.appended >= cutoff {
				break
			}
			gone = append(gone, e)
		}
		n, err := o.delete(b, st, gone, &d)
		if err != nil {
			return d, err
		}
		d.expired += n
	}
	if budget <= 0 || st.cost() <= budget {
		return d, nil
	}
	need := uint64(st.cost() - budget*9/10)
	freed, n, err := o.thin(b, st, need, &d)
	if err != nil {
		return d, err
	}
	d.thinned += n
	if freed >= need {
		return d, nil
	}
	n, err = o.dropOldest(b, st, need-freed, &d)
	d.oldest += n
	return d, err
}

// thin deletes every second position in the oldest quarter of the records
// (by page use), never leaving two kept positions more than thinGap apart in
// record time, until need bytes of pages are freed or the quarter is walked.
// It returns the bytes freed and how many positions it deleted.
func (o *Outbox) thin(b *bbolt.Bucket, st *state, need uint64, d *dropCount) (freed, n uint64, err error) {
	region := uint64(st.cost() / 4)
	var (
		gone    []entry
		walked  uint64
		prev    int64 = -1 << 63 // record time of the last kept position
		havePrv bool
		cand    *entry // a position that may go, between prev and the next
	)
	c := b.Cursor()
	for k, v := c.First(); k != nil && walked < region && freed < need; k, v = c.Next() {
		e, ok := peek(k, v)
		walked += e.cost
		if !ok || e.kind != edge.KindPosition {
			continue
		}
		switch {
		case !havePrv:
			prev, havePrv = e.unixMs, true
		case cand == nil:
			cand = &e
		case e.unixMs-prev <= o.thinGap:
			gone = append(gone, *cand)
			freed += cand.cost
			prev, cand = e.unixMs, nil
		default:
			prev, cand = cand.unixMs, &e
		}
	}
	n, err = o.delete(b, st, gone, d)
	return freed, n, err
}

// dropOldest deletes records from the head until need bytes of pages are
// freed, and returns how many.
func (o *Outbox) dropOldest(b *bbolt.Bucket, st *state, need uint64, d *dropCount) (uint64, error) {
	var (
		gone  []entry
		freed uint64
	)
	c := b.Cursor()
	for k, v := c.First(); k != nil && freed < need; k, v = c.Next() {
		e, _ := peek(k, v)
		gone = append(gone, e)
		freed += e.cost
	}
	return o.delete(b, st, gone, d)
}

// delete removes the entries (after the cursor walk that found them:
// deleting under a bbolt cursor can skip keys) and updates st.
func (o *Outbox) delete(b *bbolt.Bucket, st *state, gone []entry, d *dropCount) (uint64, error) {
	seqs := make([]uint64, 0, len(gone))
	for _, e := range gone {
		key := append([]byte(nil), e.key...)
		if err := b.Delete(key); err != nil {
			return 0, err
		}
		st.count--
		st.bytes -= e.size
		seqs = append(seqs, binary.BigEndian.Uint64(key))
	}
	d.ranges = append(d.ranges, telemetry.RangesOf(seqs)...)
	return uint64(len(gone)), nil
}

// makeRoom is the backstop for a commit that found no room (the disk full,
// bbolt's MaxSize reached): in a transaction of its own, it brings the
// records within budget as Append would (thin, then drop the oldest) or,
// when they are within it already, drops the oldest tenth (at least one
// record). The drop is counted now and reported by the next Append's
// EventRecordsDropped.
func (o *Outbox) makeRoom(tx *bbolt.Tx, budget int64) error {
	b, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
	b.FillPercent = fillPercent
	st := state{nextSeq: getU64(meta, keyNextSeq), count: getU64(meta, keyCount), bytes: getU64(meta, keyBytes)}
	d, err := o.enforce(b, &st, o.now().UnixMilli(), budget)
	if err != nil {
		return err
	}
	if d.total() == 0 {
		n, err := o.dropOldest(b, &st, uint64(max(st.cost()/10, 1)), &d)
		if err != nil {
			return err
		}
		d.oldest = n
	}
	if err := st.put(meta, d); err != nil {
		return err
	}
	o.shed.add(d)
	return nil
}

// reportDrops appends one EventRecordsDropped record per reason in d, with
// the next seqs: value is how many, code the bound ("max_bytes" or
// "max_age"), detail what was done and to which seqs.
func (o *Outbox) reportDrops(b *bbolt.Bucket, st *state, d dropCount, now int64) error {
	if d.total() == 0 {
		return nil
	}
	ranges := describe(telemetry.MergeRanges(d.ranges))
	var evs []telemetry.Event
	if n := d.thinned + d.oldest; n > 0 {
		full := "outbox full"
		if o.space != nil && o.space.trouble(o.maxBytes) != "" {
			full = "outbox full (the filesystem holds less than its cap)"
		}
		evs = append(evs, telemetry.Event{UnixMs: now, Type: telemetry.EventRecordsDropped, Code: "max_bytes", Value: int64(n),
			Detail: fmt.Sprintf("%s: thinned %d old positions, dropped %d oldest records; seqs %s", full, d.thinned, d.oldest, ranges)})
	}
	if d.expired > 0 {
		evs = append(evs, telemetry.Event{UnixMs: now, Type: telemetry.EventRecordsDropped, Code: "max_age", Value: int64(d.expired),
			Detail: fmt.Sprintf("older than %v: dropped %d records; seqs %s", o.maxAge, d.expired, ranges)})
	}
	return o.putEvents(b, st, evs, now)
}

// putEvents stores events the outbox makes itself, with the next seqs.
func (o *Outbox) putEvents(b *bbolt.Bucket, st *state, evs []telemetry.Event, now int64) error {
	for _, ev := range evs {
		r := edge.EventRecord(ev)
		var buf []byte
		buf = binary.BigEndian.AppendUint64(buf, st.nextSeq)
		buf = encodeRecord(buf, &r, now)
		if err := b.Put(buf[:8], buf[8:]); err != nil {
			return err
		}
		st.nextSeq++
		st.count++
		st.bytes += uint64(len(buf))
	}
	return nil
}

// describe writes ranges as "1-40,43,45-50", eliding the middle of a long
// list.
func describe(rs []telemetry.SeqRange) string {
	var parts []string
	for i, r := range rs {
		if len(rs) > 10 && i == 5 {
			parts = append(parts, fmt.Sprintf("(%d more)", len(rs)-10))
		}
		if len(rs) > 10 && i >= 5 && i < len(rs)-5 {
			continue
		}
		if r.First == r.Last {
			parts = append(parts, fmt.Sprint(r.First))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
	}
	return strings.Join(parts, ",")
}
