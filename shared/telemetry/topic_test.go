package telemetry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func TestTopic(t *testing.T) {
	ns := telemetry.DefaultNamespace
	tests := []struct {
		id   string
		kind telemetry.Kind
		want string
		err  error
	}{
		{"car-1", telemetry.KindBatch, "fleet/v1/car-1/up/batch", nil},
		{"A_z-09", telemetry.KindAck, "fleet/v1/A_z-09/down/ack", nil},
		{strings.Repeat("x", 64), telemetry.KindStatus, "fleet/v1/" + strings.Repeat("x", 64) + "/up/status", nil},
		{strings.Repeat("x", 65), telemetry.KindStatus, "", telemetry.ErrVehicleID},
		{"", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car/1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car+", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car#", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car 1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"voiture-é", telemetry.KindBatch, "", telemetry.ErrVehicleID},
		{"car.1", telemetry.KindBatch, "", telemetry.ErrVehicleID},
	}
	for _, tc := range tests {
		got, err := ns.Topic(tc.id, tc.kind)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Topic(%q, %q) = %q, %v; want %q, %v", tc.id, tc.kind, got, err, tc.want, tc.err)
		}
	}
}

func TestParseTopic(t *testing.T) {
	ns := telemetry.Namespace("t-42/fleet/v1")
	tests := []struct {
		topic string
		id    string
		kind  telemetry.Kind
		err   error
	}{
		{"t-42/fleet/v1/car-1/up/batch", "car-1", telemetry.KindBatch, nil},
		{"t-42/fleet/v1/car-1/up/cmd-result", "car-1", telemetry.KindCmdResult, nil},
		{"t-42/fleet/v1/car-1/down/cmd", "car-1", telemetry.KindCmd, nil},
		{"fleet/v1/car-1/up/batch", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1/up/other", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/car-1/up/batch/x", "", "", telemetry.ErrTopic},
		{"t-42/fleet/v1/c@r/up/batch", "", "", telemetry.ErrVehicleID},
	}
	for _, tc := range tests {
		id, kind, err := ns.Parse(tc.topic)
		if id != tc.id || kind != tc.kind || !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, %v", tc.topic, id, kind, err, tc.id, tc.kind, tc.err)
		}
	}
	if got, want := ns.SharedFilter("ingest", telemetry.KindBatch), "$share/ingest/t-42/fleet/v1/+/up/batch"; got != want {
		t.Errorf("SharedFilter = %q, want %q", got, want)
	}
	for _, bad := range []telemetry.Namespace{"", "/x", "x/", "a/+/b", "a/#", "$SYS"} {
		if bad.Valid() == nil {
			t.Errorf("Namespace(%q).Valid() = nil, want an error", bad)
		}
	}
	if err := telemetry.DefaultNamespace.Valid(); err != nil {
		t.Error(err)
	}
}

func TestRanges(t *testing.T) {
	got := telemetry.RangesOf([]uint64{5, 3, 4, 9, 1, 4, 10})
	want := []telemetry.SeqRange{{1, 1}, {3, 5}, {9, 10}}
	if !equalRanges(got, want) {
		t.Errorf("RangesOf = %v, want %v", got, want)
	}
	got = telemetry.MergeRanges([]telemetry.SeqRange{{9, 12}, {1, 3}, {4, 4}, {11, 20}, {30, 29}, {^uint64(0) - 1, ^uint64(0)}, {^uint64(0), ^uint64(0)}})
	want = []telemetry.SeqRange{{1, 4}, {9, 20}, {^uint64(0) - 1, ^uint64(0)}}
	if !equalRanges(got, want) {
		t.Errorf("MergeRanges = %v, want %v", got, want)
	}
}

func equalRanges(a, b []telemetry.SeqRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
