package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestStatusOrdering: the newest report wins whatever the arrival order; an
// agent's last will (made when it connected, so older than its later
// reports) marks it offline when it belongs to the current connection, and a
// stale will of an earlier connection changes nothing.
func TestStatusOrdering(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	st := func(online bool, s int, depth uint64) *cloud.DeviceStatus {
		return &cloud.DeviceStatus{VehicleID: "veh-1", Online: online, Time: at(s), OutboxDepth: depth,
			Counters: map[string]uint64{"gps.bad_checksum": depth}, ReceivedAt: now}
	}
	steps := []struct {
		name   string
		in     *cloud.DeviceStatus
		online bool
		depth  uint64
		since  time.Time
	}{
		{"first report (connected at 0)", st(true, 0, 5), true, 5, at(0)},
		{"a later report", st(true, 60, 7), true, 7, at(0)},
		{"an older report arriving late", st(true, 30, 6), true, 7, at(0)},
		{"the will of this connection", st(false, 0, 5), false, 7, time.Time{}},
		{"reconnected at 100", st(true, 100, 2), true, 2, at(100)},
		{"a stale will of the first connection", st(false, 0, 5), true, 2, at(100)},
		{"a later report", st(true, 160, 1), true, 1, at(100)},
		{"a clean goodbye", st(false, 170, 0), false, 0, time.Time{}},
	}
	for _, s := range steps {
		if err := db.SaveStatus(ctx, s.in); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := db.FindStatus(ctx, "veh-1")
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Online != s.online || got.OutboxDepth != s.depth || !got.OnlineSince.Equal(s.since) || got.Counters["gps.bad_checksum"] != s.depth {
			t.Errorf("after %s: online %v depth %d since %v counters %v; want %v %d %v", s.name, got.Online, got.OutboxDepth, got.OnlineSince, got.Counters, s.online, s.depth, s.since)
		}
	}
	if _, err := db.FindStatus(ctx, "veh-2"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("unknown vehicle: %v", err)
	}
	// Each report is in the history once, in agent time order: the will of
	// the first connection came twice, and is there once.
	hist, _, err := db.FindStatusHistory(ctx, cloud.StatusFilter{VehicleID: "veh-1", From: now.Add(-24 * time.Hour), To: now.Add(time.Hour), Limit: 100})
	if err != nil || len(hist) != len(steps)-1 || !slices.IsSortedFunc(hist, func(a, b *cloud.DeviceStatus) int { return a.Time.Compare(b.Time) }) {
		t.Errorf("history = %d statuses, %v; want %d in time order", len(hist), err, len(steps)-1)
	}
}

func TestCommands(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	c := &cloud.Command{ID: "c1", VehicleID: "veh-1", Type: cloud.CommandSetPIDs, PIDs: []uint16{0x010C, 0x010D},
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if _, _, err := db.CreateCommand(ctx, c); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Fatalf("command for an unknown vehicle: %v", err)
	}
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{sampleBatch("veh-1", 1)}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateCommand(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindCommand(ctx, "veh-1", "c1")
	if err != nil || got.Status(now) != "pending" || len(got.PIDs) != 2 || got.PIDs[1] != 0x010D {
		t.Fatalf("new command %+v, %v", got, err)
	}
	if err := db.MarkSent(ctx, "veh-1", "c1", now); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindCommand(ctx, "veh-1", "c1"); got.Status(now) != "sent" || got.Status(now.Add(time.Hour)) != "expired" {
		t.Errorf("sent command: %+v", got)
	}
	first := &cloud.CommandResult{Error: "set PIDs: not supported", Time: now, ReceivedAt: now}
	if err := db.SaveCommandResult(ctx, "veh-1", "c1", first); err != nil {
		t.Fatal(err)
	}
	// A repeated answer changes nothing.
	if err := db.SaveCommandResult(ctx, "veh-1", "c1", &cloud.CommandResult{OK: true, ReceivedAt: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.FindCommand(ctx, "veh-1", "c1")
	if got.Status(now) != "failed" || got.Result.Error != first.Error || !got.Result.ReceivedAt.Equal(now) {
		t.Errorf("answered command %+v %+v", got, got.Result)
	}
	if err := db.SaveCommandResult(ctx, "veh-1", "nope", first); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("result for an unknown command: %v", err)
	}
	if _, err := db.FindCommand(ctx, "veh-2", "c1"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("another vehicle's command: %v", err)
	}
}

// TestStatusHealthFields: the clock, outbox and OBD adapter state an agent
// reports (Status fields 16 to 19) are stored in the latest status, the
// vehicle's device and the history, through SaveStatus and through the
// ingest commit; unknown ones (0) come back unknown, text that PostgreSQL
// cannot hold comes back with the bad bytes replaced.
func TestStatusHealthFields(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	tests := []struct {
		name string
		in   cloud.DeviceStatus
		want cloud.DeviceStatus // the fields compared
	}{
		{"GNSS time, clock behind, disk full, bus fault",
			cloud.DeviceStatus{ClockSource: cloud.ClockGNSS, ClockOffset: -1500 * time.Millisecond, OutboxTrouble: "filesystem_full", OBDState: "bus_fault: CAN ERROR"},
			cloud.DeviceStatus{ClockSource: cloud.ClockGNSS, ClockOffset: -1500 * time.Millisecond, OutboxTrouble: "filesystem_full", OBDState: "bus_fault: CAN ERROR"}},
		{"system clock, all fine",
			cloud.DeviceStatus{ClockSource: cloud.ClockSystem, ClockOffset: 42 * time.Millisecond, OBDState: "ok"},
			cloud.DeviceStatus{ClockSource: cloud.ClockSystem, ClockOffset: 42 * time.Millisecond, OBDState: "ok"}},
		{"an agent that reports none of them", cloud.DeviceStatus{}, cloud.DeviceStatus{}},
		{"unsynced clock, a source this server does not know later",
			cloud.DeviceStatus{ClockSource: 9, OutboxTrouble: "cap_lowered"},
			cloud.DeviceStatus{ClockSource: 9, OutboxTrouble: "cap_lowered"}},
		{"text PostgreSQL cannot hold",
			cloud.DeviceStatus{ClockSource: cloud.ClockUnsynced, OutboxTrouble: "disk\x00full", OBDState: "no_vehicle \xff"},
			cloud.DeviceStatus{ClockSource: cloud.ClockUnsynced, OutboxTrouble: "disk\uFFFDfull", OBDState: "no_vehicle \uFFFD"}},
	}
	same := func(a, b *cloud.DeviceStatus) bool {
		return a.ClockSource == b.ClockSource && a.ClockOffset == b.ClockOffset && a.OutboxTrouble == b.OutboxTrouble && a.OBDState == b.OBDState
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for j, via := range []string{"SaveStatus", "Commit"} {
				s := tt.in
				s.VehicleID, s.Online, s.Time, s.ReceivedAt = fmt.Sprintf("veh-h%d", j), true, now.Add(time.Duration(i)*time.Minute), now
				var err error
				if via == "SaveStatus" {
					err = db.SaveStatus(ctx, &s)
				} else {
					_, err = db.Commit(ctx, &cloud.Commit{Statuses: []cloud.DeviceStatus{s}, ReceivedAt: now})
				}
				if err != nil {
					t.Fatalf("%s: %v", via, err)
				}
				got, err := db.FindStatus(ctx, s.VehicleID)
				if err != nil || !same(got, &tt.want) {
					t.Errorf("%s, then FindStatus: %+v, %v; want %+v", via, got, err, tt.want)
				}
				v, err := db.FindVehicleByID(ctx, s.VehicleID)
				if err != nil || v.Device == nil || !same(v.Device, &tt.want) {
					t.Errorf("%s, then FindVehicleByID: %+v, %v; want %+v", via, v, err, tt.want)
				}
				hist, _, err := db.FindStatusHistory(ctx, cloud.StatusFilter{VehicleID: s.VehicleID, From: s.Time, To: s.Time.Add(time.Second), Limit: 10})
				if err != nil || len(hist) != 1 || !same(hist[0], &tt.want) {
					t.Errorf("%s, then FindStatusHistory: %+v, %v; want one %+v", via, hist, err, tt.want)
				}
			}
		})
	}
}
