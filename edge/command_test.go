package edge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
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
