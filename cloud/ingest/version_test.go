package ingest_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestBatchVersions: a batch in protocol version 2, on the vehicle's own
// topic, is validated, committed and acknowledged as a version 1 batch is,
// with the same dead-letter reasons; every Ack says the cloud reads version
// 2; the messages are counted by the version of their topic.
func TestBatchVersions(t *testing.T) {
	now := start
	positions := func(lat ...int32) []telemetry.Position {
		var ps []telemetry.Position
		for i, l := range lat {
			ps = append(ps, telemetry.Position{Seq: uint64(i + 1), UnixMs: now.Add(time.Duration(i) * time.Second).UnixMilli(), LatE7: l, LonE7: 74246333})
		}
		return ps
	}
	good := &telemetry.Batch{VehicleID: "veh-1", StreamID: 5, Positions: positions(437384166, 437384167, 437384168)}
	partly := &telemetry.Batch{VehicleID: "veh-1", StreamID: 5, Positions: positions(437384166, 95e7)}
	stamped := *good
	stamped.VehicleID = "veh-2" // a version 1 batch names its vehicle: it must be the topic's
	tests := []struct {
		name     string
		topic    string
		payload  func(t *testing.T) []byte
		stored   int    // records committed
		dead     string // the dead-letter reason, "" for none
		ack      string // committed and rejected ranges of the Ack, "" for no Ack
		version  string // the label the message is counted under
		ackOwner string
	}{
		{"v2 batch", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte { return encodeBatchV2(t, good) },
			3, "", "[{1 3}] []", ingest.Version2, "veh-1"},
		{"v1 batch", topic("veh-1", telemetry.KindBatch), func(t *testing.T) []byte { return encodeBatch(t, good) },
			3, "", "[{1 3}] []", ingest.Version1, "veh-1"},
		{"v2 batch, zstd", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte {
			p, err := telemetry.EncodeBatchV2(good, true)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}, 3, "", "[{1 3}] []", ingest.Version2, "veh-1"},
		{"v2 garbage", topic("veh-1", telemetry.KindBatchV2), func(*testing.T) []byte { return []byte{0x20, 0xff, 0xff, 0x01} },
			0, ingest.ReasonDecode, "", ingest.Version2, ""},
		{"v2 truncated", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte { p := encodeBatchV2(t, good); return p[:len(p)-3] },
			0, ingest.ReasonDecode, "", ingest.Version2, ""},
		{"v2 unknown flags", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte {
			p := encodeBatchV2(t, good)
			p[0] |= 0x04
			return p
		}, 0, ingest.ReasonDecode, "", ingest.Version2, ""},
		{"v2 empty payload", topic("veh-1", telemetry.KindBatchV2), func(*testing.T) []byte { return nil },
			0, ingest.ReasonDecode, "", ingest.Version2, ""},
		{"v2 partly invalid", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte { return encodeBatchV2(t, partly) },
			1, ingest.ReasonInvalid, "[{1 1}] [{2 2}]", ingest.Version2, "veh-1"},
		{"v1 payload of another vehicle on the v2 topic", topic("veh-1", telemetry.KindBatchV2), func(t *testing.T) []byte { return encodeBatch(t, &stamped) },
			0, ingest.ReasonInvalid, "[] [{1 3}]", ingest.Version2, "veh-1"},
		{"v2 topic with an invalid vehicle id", string(telemetry.DefaultNamespace) + "/veh.1", func(t *testing.T) []byte { return encodeBatchV2(t, good) },
			0, ingest.ReasonTopic, "", ingest.VersionNone, ""},
		{"v2 topic with an empty vehicle id", string(telemetry.DefaultNamespace) + "/", func(t *testing.T) []byte { return encodeBatchV2(t, good) },
			0, ingest.ReasonTopic, "", ingest.VersionNone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t)
				m := r.send(tt.topic, tt.payload(t))
				synctest.Wait()
				if m.acked() != 1 {
					t.Fatalf("acknowledged to the broker %d times, want 1", m.acked())
				}
				_, records, dead := r.store.snapshot()
				if records != tt.stored {
					t.Errorf("%d records stored, want %d", records, tt.stored)
				}
				s := r.p.Stats()
				switch {
				case tt.dead == "" && len(dead) != 0:
					t.Errorf("dead letters %+v, want none", dead)
				case tt.dead != "" && (len(dead) != 1 || s.DeadLetters[tt.dead] != 1 || dead[0].Reason == ""):
					t.Errorf("dead letters %+v (by reason %v), want one for %s", dead, s.DeadLetters, tt.dead)
				}
				acks := r.pub.all()
				var got string
				if len(acks) == 1 {
					c, rj := telemetry.AckRanges(acks[0])
					got = fmt.Sprint(c, rj)
					if v := acks[0].GetVersion(); v != 2 || acks[0].GetVehicleId() != tt.ackOwner || acks[0].GetStreamId() != 5 {
						t.Errorf("Ack %v: want version 2, vehicle %s, stream 5", acks[0], tt.ackOwner)
					}
				}
				if len(acks) > 1 || got != tt.ack {
					t.Errorf("Acks %v, want %q", acks, tt.ack)
				}
				want := map[string]int64{ingest.Version1: 0, ingest.Version2: 0, ingest.VersionNone: 0}
				want[tt.version] = 1
				if fmt.Sprint(s.ReceivedByVersion) != fmt.Sprint(want) || s.Received != 1 {
					t.Errorf("received %d, by version %v, want %v", s.Received, s.ReceivedByVersion, want)
				}
			})
		})
	}
}
