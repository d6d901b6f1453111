package ingest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// TestStatusHealthFields: the clock, outbox and OBD adapter state of a
// status (fields 16 to 19) reach the store as reported; a clock source
// beyond what the store can hold is a dead letter, never a made-up value.
func TestStatusHealthFields(t *testing.T) {
	tests := []struct {
		name string
		in   *telemetrypb.Status
		want *cloud.DeviceStatus // nil: a dead letter for ReasonInvalid
	}{
		{"all four", &telemetrypb.Status{ClockSource: 2, ClockOffsetMs: -1500, OutboxTrouble: "filesystem_full", ObdState: "bus_fault: CAN ERROR"},
			&cloud.DeviceStatus{ClockSource: cloud.ClockGNSS, ClockOffset: -1500 * time.Millisecond, OutboxTrouble: "filesystem_full", OBDState: "bus_fault: CAN ERROR"}},
		{"an older agent: none", &telemetrypb.Status{}, &cloud.DeviceStatus{}},
		{"a clock source this server does not know", &telemetrypb.Status{ClockSource: 7}, &cloud.DeviceStatus{ClockSource: 7}},
		{"a clock source out of range", &telemetrypb.Status{ClockSource: 1 << 31}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t)
				tt.in.VehicleId, tt.in.Online, tt.in.UnixMs = "veh-1", true, time.Now().UnixMilli()
				p, err := telemetry.Encode(tt.in, false)
				if err != nil {
					t.Fatal(err)
				}
				m := r.send(topic("veh-1", telemetry.KindStatus), p)
				synctest.Wait()
				if m.acked() != 1 {
					t.Fatalf("acknowledged %d times", m.acked())
				}
				got, stored := r.store.statuses["veh-1"]
				if tt.want == nil {
					if stored || r.p.Stats().DeadLetters[ingest.ReasonInvalid] != 1 {
						t.Errorf("stored %+v, dead letters %v: want a dead letter for %s", got, r.p.Stats().DeadLetters, ingest.ReasonInvalid)
					}
					return
				}
				if !stored || got.ClockSource != tt.want.ClockSource || got.ClockOffset != tt.want.ClockOffset ||
					got.OutboxTrouble != tt.want.OutboxTrouble || got.OBDState != tt.want.OBDState {
					t.Errorf("stored %+v (%v), want %+v", got, stored, tt.want)
				}
			})
		})
	}
}
