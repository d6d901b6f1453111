package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fleetgate/fleetgate/edge/bolt"

	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

func TestCommandLogSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := openAt(t, path)
	if _, ok, err := o.CommandResult(ctx, "c1"); ok || err != nil {
		t.Fatalf("unknown command: %v, %v", ok, err)
	}
	res := &telemetrypb.CommandResult{Id: "c1", Ok: true, UnixMs: 42, Dtcs: []string{"P0301"}}
	if err := o.SaveCommandResult(ctx, "c1", clock.Add(time.Hour), res); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o = openAt(t, path)
	got, ok, err := o.CommandResult(ctx, "c1")
	if err != nil || !ok || !proto.Equal(got, res) {
		t.Errorf("after reopen: %v, %v, %v", got, ok, err)
	}
}

func TestCommandLogForgetsExpired(t *testing.T) {
	now := clock
	o, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), &bolt.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.SaveCommandResult(ctx, "old", now.Add(time.Minute), &telemetrypb.CommandResult{Id: "old"})
	now = now.Add(48 * time.Hour)
	o.SaveCommandResult(ctx, "new", now.Add(time.Minute), &telemetrypb.CommandResult{Id: "new"})
	if _, ok, _ := o.CommandResult(ctx, "old"); ok {
		t.Error("a command expired two days ago is still remembered")
	}
	if _, ok, _ := o.CommandResult(ctx, "new"); !ok {
		t.Error("the new command is not remembered")
	}
}
