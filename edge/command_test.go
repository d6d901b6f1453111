package edge_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

type pidSetter struct{ got []byte }

func (p *pidSetter) SetPIDs(pids []byte) error {
	if len(pids) > 0 && pids[0] == 0xFF {
		return errors.New("PID FF is not in the decode table")
	}
	p.got = pids
	return nil
}

func TestCommander(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	later := now.Add(time.Minute).UnixMilli()
	var interval time.Duration
	pids := &pidSetter{}
	statuses := 0
	c := &edge.Commander{
		Log:               openOutbox(t),
		SetReportInterval: func(d time.Duration) error { interval = d; return nil },
		PIDs:              pids,
		ReportStatus:      func(context.Context) error { statuses++; return nil },
		Now:               func() time.Time { return now },
	}
	type typ = telemetrypb.CommandType
	tests := []struct {
		name    string
		cmd     *telemetrypb.Command
		ok      bool
		errPart string
	}{
		{"report interval", &telemetrypb.Command{Id: "a", Type: typ(1), ExpiresUnixMs: later, IntervalMs: 5000}, true, ""},
		{"same id again, another value: not run", &telemetrypb.Command{Id: "a", Type: typ(1), ExpiresUnixMs: later, IntervalMs: 9000}, true, ""},
		{"interval out of range", &telemetrypb.Command{Id: "b", Type: typ(1), ExpiresUnixMs: later, IntervalMs: 1}, false, "interval_ms"},
		{"expired", &telemetrypb.Command{Id: "c", Type: typ(4), ExpiresUnixMs: now.UnixMilli()}, false, "expired"},
		{"no expiry is expired", &telemetrypb.Command{Id: "d", Type: typ(4)}, false, "expired"},
		{"set PIDs, mode<<8|pid", &telemetrypb.Command{Id: "e", Type: typ(2), ExpiresUnixMs: later, Pids: []uint32{0x010C, 0x0D}}, true, ""},
		{"set PIDs refused by the source", &telemetrypb.Command{Id: "f", Type: typ(2), ExpiresUnixMs: later, Pids: []uint32{0xFF}}, false, "decode table"},
		{"set PIDs of another mode", &telemetrypb.Command{Id: "g", Type: typ(2), ExpiresUnixMs: later, Pids: []uint32{0x0902}}, false, "Mode 01"},
		{"trouble codes: no reader", &telemetrypb.Command{Id: "h", Type: typ(3), ExpiresUnixMs: later}, false, "not supported"},
		{"report status", &telemetrypb.Command{Id: "i", Type: typ(4), ExpiresUnixMs: later}, true, ""},
		{"unknown type", &telemetrypb.Command{Id: "j", Type: typ(99), ExpiresUnixMs: later}, false, "not supported"},
		{"no id", &telemetrypb.Command{Type: typ(4), ExpiresUnixMs: later}, false, "command id"},
	}
	for _, tt := range tests {
		res, err := c.Run(context.Background(), tt.cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.GetId() != tt.cmd.GetId() || res.GetOk() != tt.ok || !strings.Contains(res.GetError(), tt.errPart) {
			t.Errorf("%s: %v; want ok %v, error containing %q", tt.name, res, tt.ok, tt.errPart)
		}
	}
	if interval != 5*time.Second || statuses != 1 || len(pids.got) != 2 || pids.got[0] != 0x0C || pids.got[1] != 0x0D {
		t.Errorf("effects: interval %v, %d status reports, PIDs %x", interval, statuses, pids.got)
	}
}

// A commanded report interval is kept in the outbox file and applied again
// after a restart, unless the configuration changed since the command.
func TestReportIntervalSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.db")
	var applied []time.Duration
	commander := func(o *bolt.Outbox, configured time.Duration) *edge.Commander {
		return &edge.Commander{Log: o, Settings: o, ConfiguredReportInterval: configured,
			SetReportInterval: func(d time.Duration) error { applied = append(applied, d); return nil }}
	}
	o, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok, err := commander(o, 0).RestoreReportInterval(ctx); ok || err != nil {
		t.Errorf("with nothing stored: restored %v, %v, %v", d, ok, err)
	}
	res, err := commander(o, 0).Run(ctx, &telemetrypb.Command{Id: "r1", Type: telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL,
		ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli(), IntervalMs: 60000})
	if err != nil || !res.GetOk() {
		t.Fatalf("command: %v, %v", res, err)
	}
	o.Close()

	o, err = bolt.Open(path, nil) // the agent restarts
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if d, ok, err := commander(o, 0).RestoreReportInterval(ctx); d != time.Minute || !ok || err != nil {
		t.Errorf("after a restart: restored %v, %v, %v; want 1m", d, ok, err)
	}
	if d, ok, err := commander(o, 5*time.Second).RestoreReportInterval(ctx); ok || err != nil {
		t.Errorf("after the configuration changed: restored %v, %v, %v; want the configuration to win", d, ok, err)
	}
	if want := []time.Duration{time.Minute, time.Minute}; !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if err := o.SaveSetting(ctx, "report_interval", []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := commander(o, 0).RestoreReportInterval(ctx); ok || !errors.Is(err, edge.ErrCorrupt) {
		t.Errorf("a stored value of 2 bytes: %v, %v; want ErrCorrupt", ok, err)
	}
}
