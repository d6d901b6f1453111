package obd_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
)

// faultCounters are the agent counters that show it saw each fault (any of
// them: a <DATA ERROR on the last frame of a multi-frame reply leaves the
// first frame alone, which is a cut-short message, not a data error).
var faultCounters = map[string][]string{
	"NO DATA":             {"obd.errors.no_data"},
	"?":                   {"obd.errors.unknown_command"},
	"CAN ERROR":           {"obd.errors.can_error"},
	"BUS INIT: ...ERROR":  {"obd.errors.bus_init"},
	"BUS BUSY":            {"obd.errors.bus_busy"},
	"BUS ERROR":           {"obd.errors.bus_error"},
	"FB ERROR":            {"obd.errors.fb_error"},
	"DATA ERROR":          {"obd.errors.data_error"},
	elm327.FaultDataError: {"obd.errors.data_error", "obd.errors.frame"},
	"<RX ERROR":           {"obd.errors.rx_error"},
	"UNABLE TO CONNECT":   {"obd.errors.unable_to_connect"},
	"STOPPED":             {"obd.errors.stopped"},
	elm327.FaultBuffer:    {"obd.errors.buffer_full"},
	"LV RESET":            {"obd.errors.lv_reset"},
	"ERR94":               {"obd.errors.err94"},
	"ACT ALERT":           {"obd.errors.act_alert"},
	"LP ALERT":            {"obd.errors.lp_alert"},
	elm327.FaultSearching: {"obd.searching"},
	elm327.FaultGarbage:   {"obd.garbage_bytes", "obd.dropped_lines"},
	elm327.FaultSilence:   {"obd.errors.timeout"},
	elm327.FaultNoPrompt:  {"obd.errors.timeout"},
	elm327.FaultECUs:      {"obd.samples"},
}

// inject makes the adapter give fault to the next n requests, waits until it
// has, then until the agent has recorded three more values, and returns by
// how much each counter grew.
func inject(t *testing.T, sim *simAdapter, run *agentRun, fault string, n int) map[string]uint64 {
	t.Helper()
	before := run.Counters.Snapshot()
	served := sim.FaultsServed()
	sim.SetFault(fault, n)
	run.until(t, 30*time.Second, fault+" served", func() bool { return sim.FaultsServed() >= served+uint64(n) })
	k := run.count()
	run.until(t, 30*time.Second, "polling after "+fault, func() bool { return run.count() >= k+3 })
	after := run.Counters.Snapshot()
	diff := map[string]uint64{}
	for name, v := range after {
		if v > before[name] {
			diff[name] = v - before[name]
		}
	}
	return diff
}

// Every error reply of edge/README.md's list ("Adapter replies"), injected
// through the simulator's ELM327 over a pty, with a genuine adapter (headers, multi-PID requests) and with the
// v2.1 clone (no headers, echo, one PID per request): each is counted as
// what it is, the agent goes back to polling, and no value it recorded is
// one the adapter did not send.
func TestOBDEveryReply(t *testing.T) {
	t.Parallel()
	if missing := slices.DeleteFunc(elm327.Faults(), func(f string) bool { _, ok := faultCounters[f]; return ok }); len(missing) > 0 {
		t.Fatalf("no expectation for faults %q", missing)
	}
	for _, p := range []elm327.Profile{elm327.Genuine, elm327.CloneV21} {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			sim := startAdapter(t, elm327.WithProfile(p))
			run := runSource(t, sim.Path, nil)
			run.until(t, 30*time.Second, "first values", func() bool { return run.count() >= 3 })
			for _, fault := range elm327.Faults() {
				diff := inject(t, sim, run, fault, 1)
				if !slices.ContainsFunc(faultCounters[fault], func(c string) bool { return diff[c] > 0 }) {
					t.Errorf("%s: none of %q grew: %v", fault, faultCounters[fault], diff)
				}
				switch obd.ActionFor(&obd.AdapterError{Code: codeOf(faultCounters[fault][0])}) {
				case obd.Reinit:
					if diff["obd.reinits"] == 0 {
						t.Errorf("%s: no re-initialisation: %v", fault, diff)
					}
				case obd.Resync:
					if diff["obd.resyncs"] == 0 {
						t.Errorf("%s: no resync: %v", fault, diff)
					}
				}
			}
			got := run.got()
			inOrder(t, got, sim.caughtUp(got), false)
		})
	}
}

// codeOf turns "obd.errors.lv_reset" into "lv_reset".
func codeOf(counter string) string {
	const p = "obd.errors."
	if len(counter) > len(p) && counter[:len(p)] == p {
		return counter[len(p):]
	}
	return ""
}

// An hour of injected faults leaves the session polling. The CI form runs
// every fault three requests in a row, round after round, until the adapter
// has given 2,000 of them (three timeouts in a row make the agent reopen the
// port: that is in it too); FLEETGATE_FULL=1 runs them for an hour, with
// the default timeouts.
func TestOBDFaultSoak(t *testing.T) {
	t.Parallel()
	full := os.Getenv("FLEETGATE_FULL") == "1"
	sim := startAdapter(t)
	run := runSource(t, sim.Path, func(s *obd.Source) {
		if full {
			s.Timeout, s.OffInterval = 0, 0
			s.Interval = 100 * time.Millisecond
		} else {
			s.Timeout = 50 * time.Millisecond
		}
	})
	run.until(t, 30*time.Second, "first values", func() bool { return run.count() >= 3 })
	start := time.Now()
	rounds := 0
	for {
		for _, fault := range elm327.Faults() {
			inject(t, sim, run, fault, 3)
		}
		rounds++
		if full && time.Since(start) < time.Hour || !full && sim.FaultsServed() < 2000 {
			continue
		}
		break
	}
	k := run.count()
	run.until(t, 30*time.Second, "polling after the faults", func() bool { return run.count() >= k+30 })
	got := run.got()
	inOrder(t, got, sim.caughtUp(got), false)
	c := run.Counters.Snapshot()
	t.Logf("%d faults in %d rounds over %v: %d values; %d resyncs, %d re-inits, %d device reopens, %d retries, %d back-offs",
		sim.FaultsServed(), rounds, time.Since(start).Round(time.Second), c["obd.samples"], c["obd.resyncs"], c["obd.reinits"],
		c["obd.disconnects"], c["obd.retries"], c["obd.backoffs"])
	if c["obd.disconnects"] == 0 {
		t.Errorf("three silent requests in a row never made the agent reopen the port")
	}
}
