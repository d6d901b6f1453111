package obd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// The behaviours of real adapters that the data sheet does not show, each
// served by the simulator's ELM327 on a pty: a slow link (a Bluetooth clone
// taking seconds per command), a protocol search that lasts longer than the
// search timeout, a faulty bus, an adapter not powered from the vehicle.
// The probe binary and the agent's own OBD source (its connect loop) both
// run against them.

// probeCmd runs the obd-probe binary with args after --port path and
// returns its report, exit status and stderr. A run that prints anything
// but one JSON document fails the test.
func probeCmd(t *testing.T, path string, args ...string) (*obd.Report, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.Binaries(t), "edge-agent"),
		append([]string{"obd-probe", "--port", path}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("obd-probe: %v", err)
		}
		code = ee.ExitCode()
	}
	var r obd.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || bytes.Count(stdout.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("obd-probe printed %q (exit %d, stderr %s): %v", stdout.String(), code, stderr.String(), err)
	}
	return &r, code, stderr.String()
}

// Item 8: an adapter that takes 1.5 s, then 2.5 s per command. The probe
// measures the latency during the reset, scales its timeouts, and reads the
// protocol and the values; before, it called the first "no vehicle" and
// stopped at ATE0 with no document on the second.
func TestOBDProbeSlowAdapter(t *testing.T) {
	t.Parallel()
	for _, latency := range []time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			t.Parallel()
			sim := startAdapter(t, elm327.WithLatency(latency))
			r, code, stderr := probeCmd(t, sim.Path, "--pids", "0C,0D", "--samples", "1")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if r.Protocol != "ISO 15765-4 (CAN 11/500)" || r.Vehicle != obd.VehicleAnswered || r.VIN != elm327.DefaultVIN ||
				r.LatencyMs < latency.Milliseconds() || len(r.Errors) != 0 {
				b, _ := json.Marshal(r)
				t.Errorf("report %s", b)
			}
			got := primaries(t, r)
			if len(got[0x0C]) != 1 || len(got[0x0D]) != 1 || len(r.Samples) != 2 {
				t.Errorf("samples %+v, want one of 0C and of 0D", r.Samples)
			}
			inOrder(t, got, sim.caughtUp(got), false)
		})
	}
}

// Item 8: a protocol search that prints SEARCHING... and answers 20 s later,
// past the 15 s search timeout: the probe waits while the adapter searches.
func TestOBDProbeLongSearch(t *testing.T) {
	t.Parallel()
	sim := startAdapter(t, elm327.WithSearchTime(20*time.Second))
	r, code, stderr := probeCmd(t, sim.Path, "--pids", "0D")
	if code != 0 || r.Vehicle != obd.VehicleAnswered || r.Protocol == "" || len(r.Samples) != 1 || r.Samples[0].Value == nil {
		b, _ := json.Marshal(r)
		t.Errorf("exit %d, report %s, stderr %s", code, b, stderr)
	}
}

// Item 9: CAN ERROR, BUS ERROR and BUS BUSY in reply to 0100 say the bus or
// its wiring is wrong, not that the vehicle is absent.
func TestOBDProbeBusFault(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{"CAN ERROR", "BUS ERROR", "BUS BUSY"} {
		t.Run(reply, func(t *testing.T) {
			t.Parallel()
			sim := startAdapter(t)
			sim.SetFault(reply, 0)
			r, code, stderr := probeCmd(t, sim.Path)
			if code != 1 || r.Vehicle != obd.VehicleBusFault || len(r.Errors) != 1 || r.Errors[0].Step != "search" ||
				r.Errors[0].Error != reply || r.Adapter != "ELM327 v1.5" || r.VoltageV == nil {
				b, _ := json.Marshal(r)
				t.Errorf("exit %d, report %s", code, b)
			}
			if !strings.Contains(stderr, "bus fault") || strings.Contains(stderr, "no vehicle") {
				t.Errorf("stderr %q, want a bus fault and no absent vehicle", stderr)
			}
		})
	}
}

// Item 10: ATRV reads 0.0V: the adapter's supply is missing, and the probe
// says so instead of a voltage.
func TestOBDProbeNoSupply(t *testing.T) {
	t.Parallel()
	sim := startAdapter(t, elm327.WithoutSupply())
	r, code, stderr := probeCmd(t, sim.Path, "--pids", "0C")
	if code != 0 || r.Supply != "missing" || r.VoltageV != nil || r.Vehicle != obd.VehicleAnswered ||
		len(r.Errors) != 1 || r.Errors[0].Step != "voltage" {
		b, _ := json.Marshal(r)
		t.Errorf("exit %d, report %s, stderr %s", code, b, stderr)
	}
}

// Items 8-10 in the agent's own connect loop (obd.Source, with its default
// timeouts): it connects to the slow adapter and polls it, reports a bus
// fault as one (state, counter, event) without inferring the ignition from
// it, and takes no ignition evidence from a 0.0V supply.
func TestOBDSourceHardware(t *testing.T) {
	t.Parallel()
	defaults := func(s *obd.Source) { s.Timeout, s.OffInterval = 0, 2*time.Second }
	t.Run("slow adapter", func(t *testing.T) {
		t.Parallel()
		sim := startAdapter(t, elm327.WithLatency(2500*time.Millisecond))
		run := runSource(t, sim.Path, func(s *obd.Source) { defaults(s); s.PIDs = []byte{0x0D} })
		run.until(t, 3*time.Minute, "3 samples", func() bool { return run.count() >= 3 })
		got := run.got()
		inOrder(t, got, sim.caughtUp(got), false)
		if c := run.Counters.Snapshot(); c["obd.unknown_protocol"] != 0 || c["obd.errors.timeout"] != 0 {
			t.Errorf("counters %v", c)
		}
	})
	t.Run("bus fault", func(t *testing.T) {
		t.Parallel()
		sim := startAdapter(t)
		sim.SetFault("CAN ERROR", 0)
		var src *obd.Source
		run := runSource(t, sim.Path, func(s *obd.Source) { defaults(s); src = s })
		run.until(t, time.Minute, "the bus fault", func() bool {
			return slices.Contains(run.eventList(), "OBD_ADAPTER bus_fault CAN ERROR")
		})
		st := src.AdapterState()
		if st.Vehicle != edge.VehicleBusFault || st.String() != "bus_fault: CAN ERROR" {
			t.Errorf("adapter state %+v", st)
		}
		c := run.Counters.Snapshot()
		if c["obd.bus_faults"] == 0 || c["obd.errors.can_error"] == 0 {
			t.Errorf("counters %v", c)
		}
		// A bus that cannot carry an answer is not an engine that stopped.
		for _, e := range run.eventList() {
			if strings.HasPrefix(e, "IGNITION_OFF") {
				t.Errorf("event %q from a faulty bus", e)
			}
		}
		// The bus comes back: the search finds the vehicle and says so.
		sim.SetFault("", 0)
		run.until(t, time.Minute, "the vehicle again", func() bool {
			return slices.Contains(run.eventList(), "OBD_ADAPTER answered ") && run.count() > 0
		})
	})
	t.Run("no supply", func(t *testing.T) {
		t.Parallel()
		sim := startAdapter(t, elm327.WithoutSupply())
		var src *obd.Source
		run := runSource(t, sim.Path, func(s *obd.Source) { defaults(s); src = s; s.PIDs = []byte{0x0D} })
		run.until(t, time.Minute, "samples", func() bool { return run.count() >= 2 })
		st := src.AdapterState()
		if !st.SupplyMissing || st.Vehicle != edge.VehicleAnswered || st.String() != "answered; supply missing" {
			t.Errorf("adapter state %+v", st)
		}
		if !slices.Contains(run.eventList(), "OBD_ADAPTER supply_missing ATRV 0.0V") || run.Counters.Snapshot()["obd.no_supply"] != 1 {
			t.Errorf("events %q, counters %v", run.eventList(), run.Counters.Snapshot())
		}
		for _, e := range run.eventList() {
			if strings.HasPrefix(e, "IGNITION_") && strings.Contains(e, " V") {
				t.Errorf("event %q takes a 0.0V reading for evidence", e)
			}
		}
	})
}
