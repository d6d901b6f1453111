package bolt

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

var testTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// FuzzDecodeRecord feeds arbitrary stored values to the record decoder: it
// never panics, refuses what encodeRecord cannot have written (a time source
// past TimeUnsynced in the kind byte's high nibble included), and what it
// accepts encodes back to the same value.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []edge.Record{
		edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 437384166, LonE7: 74246333,
			Has: telemetry.HasAlt | telemetry.HasSpeed, AltCm: 5230, SpeedMmps: 13891}),
		edge.OBDRecord(telemetry.OBDSample{UnixMs: 1795773600412, PID: 0x010C, Value: 1303.75}).Stamped(testTime, edge.TimeGNSS),
		edge.EventRecord(telemetry.Event{Type: telemetry.EventOBDAdapter, Code: "bus_fault", Detail: "CAN ERROR"}).Stamped(testTime, edge.TimeUnsynced),
	} {
		f.Add(encodeRecord(nil, &r, 1795773600000))
	}
	f.Add([]byte{recordFormat, 0x42, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, appended, err := decodeRecord(v, 7)
		if err != nil {
			return
		}
		if r.Time > edge.TimeUnsynced || r.Seq() != 7 {
			t.Fatalf("decoded %+v from %x", r, v)
		}
		back, appended2, err := decodeRecord(encodeRecord(nil, &r, appended), 7)
		if err != nil || appended2 != appended {
			t.Fatalf("re-encoded %+v does not decode: %v", r, err)
		}
		if diff := cmp.Diff(r, back, cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
