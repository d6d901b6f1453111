package ingest_test

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// FuzzReceive feeds arbitrary payloads on each kind of topic, the vehicle's
// own (batches in protocol version 2) included: the pipeline
// never panics, and every message is acknowledged exactly once (stored or
// dead-lettered, never left holding a slot of the broker's window).
func FuzzReceive(f *testing.F) {
	f.Add(0, []byte{})
	f.Add(0, []byte{0x10, 0xff, 0xff})
	f.Add(1, []byte{0x10, 0x0a, 0x01})
	f.Add(2, []byte{0x11, 0x28, 0xb5, 0x2f, 0xfd})
	f.Add(4, []byte{0x20, 0xff, 0xff})
	f.Add(4, []byte{0x21, 0x28, 0xb5, 0x2f, 0xfd})
	v2 := &telemetry.Batch{VehicleID: "veh-1", StreamID: 1, Positions: []telemetry.Position{{Seq: 1, UnixMs: time.Now().UnixMilli(), LatE7: 437384166, LonE7: 74246333}},
		OBD: []telemetry.OBDSample{{Seq: 2, UnixMs: time.Now().UnixMilli(), PID: 0x010C, Value: 1303.75}}}
	for _, p := range [][]byte{batchPayload(&testing.T{}, "veh-1", 1, 1, 3, time.Now()), statusPayload(&testing.T{}, "veh-1", true, time.Now()), encodeBatchV2(f, v2)} {
		f.Add(0, p)
		f.Add(1, p)
		f.Add(4, p)
	}
	kinds := []telemetry.Kind{telemetry.KindBatch, telemetry.KindStatus, telemetry.KindCmdResult, telemetry.KindAck, telemetry.KindBatchV2}
	f.Fuzz(func(t *testing.T, kind int, payload []byte) {
		r := newRig(t)
		m := &msg{topic: topic("veh-1", kinds[(kind%len(kinds)+len(kinds))%len(kinds)]), payload: payload, j: r.j}
		if err := r.p.Receive(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		r.stop() // drains: commits and acknowledges what it holds
		if m.acked() != 1 {
			t.Fatalf("acknowledged %d times", m.acked())
		}
		if s := r.p.Stats(); s.Held != 0 {
			t.Fatalf("%d held", s.Held)
		}
	})
}
