package telemetry

import "slices"

// SeqRange is an inclusive range [First, Last] of sequence numbers of one stream.
type SeqRange struct {
	First, Last uint64
}

// Contains reports whether seq lies in r.
func (r SeqRange) Contains(seq uint64) bool { return r.First <= seq && seq <= r.Last }

// Len returns the number of sequence numbers in r.
func (r SeqRange) Len() uint64 { return r.Last - r.First + 1 }

// RangesOf returns the sorted, merged ranges covering seqs. It sorts seqs in place;
// duplicates are merged.
func RangesOf(seqs []uint64) []SeqRange {
	if len(seqs) == 0 {
		return nil
	}
	slices.Sort(seqs)
	out := []SeqRange{{seqs[0], seqs[0]}}
	for _, s := range seqs[1:] {
		last := &out[len(out)-1]
		switch {
		case s <= last.Last:
		case s == last.Last+1:
			last.Last = s
		default:
			out = append(out, SeqRange{s, s})
		}
	}
	return out
}

// AddSeq adds seq to rs, a list of ranges built in ascending seq order:
// it extends the last range when seq follows it, else appends a new one.
func AddSeq(rs []SeqRange, seq uint64) []SeqRange {
	if n := len(rs); n > 0 && rs[n-1].Last+1 == seq {
		rs[n-1].Last = seq
		return rs
	}
	return append(rs, SeqRange{seq, seq})
}

// MergeRanges returns the sorted union of rs, with overlapping and adjacent ranges
// merged. Ranges with First > Last are ignored.
func MergeRanges(rs []SeqRange) []SeqRange {
	in := make([]SeqRange, 0, len(rs))
	for _, r := range rs {
		if r.First <= r.Last {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b SeqRange) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	out := []SeqRange{in[0]}
	for _, r := range in[1:] {
		last := &out[len(out)-1]
		if last.Last == ^uint64(0) || r.First <= last.Last+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}
