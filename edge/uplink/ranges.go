package uplink

import "github.com/fleetgate/fleetgate/shared/telemetry"

// subtract returns the parts of rs (sorted, merged) not covered by cover
// (sorted, merged).
func subtract(rs, cover []telemetry.SeqRange) []telemetry.SeqRange {
	var out []telemetry.SeqRange
	for _, r := range rs {
		for _, c := range cover {
			if c.Last < r.First || c.First > r.Last {
				continue
			}
			if c.First > r.First {
				out = append(out, telemetry.SeqRange{First: r.First, Last: c.First - 1})
			}
			if c.Last >= r.Last {
				r.First, r.Last = 1, 0 // consumed
				break
			}
			r.First = c.Last + 1
		}
		if r.First <= r.Last {
			out = append(out, r)
		}
	}
	return out
}
