package obd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// probe runs `edge-agent obd-probe --port path --samples n` and returns its
// report and exit status.
func probe(t *testing.T, path string, n int) (*obd.Report, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.Binaries(t), "edge-agent"), "obd-probe",
		"--port", path, "--samples", strconv.Itoa(n))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("obd-probe: %v", err)
		}
		code = ee.ExitCode()
	}
	var r obd.Report
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || bytes.Count(stdout.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("obd-probe printed %q: %v", stdout.String(), err)
		}
	}
	return &r, code, stderr.String()
}

// primaries returns the probe's values of each PID's primary value, in order.
func primaries(t *testing.T, r *obd.Report) map[byte][]float64 {
	t.Helper()
	out := map[byte][]float64{}
	for _, s := range r.Samples {
		v, err := strconv.ParseUint(s.PID, 16, 8)
		if err != nil || len(s.PID) != 2 {
			t.Errorf("sample PID %q", s.PID)
			continue
		}
		p, ok := obd.Lookup(byte(v))
		switch {
		case !ok:
			t.Errorf("a sample of PID %s, which the agent does not decode", s.PID)
		case s.Error != "" && (s.Value != nil || s.Name != ""):
			t.Errorf("sample %+v has an error and a value", s)
		case s.Error == "" && s.Value == nil:
			t.Errorf("sample %+v has neither an error nor a value", s)
		case s.Value != nil && s.Name == p.Name():
			out[byte(v)] = append(out[byte(v)], *s.Value)
		}
	}
	return out
}

// The installer's tool against the simulator as testers run it: the
// firmware-sim binary with its pty links and ground truth, and the
// edge-agent binary. What the probe prints is what the simulator says it
// sent.
func TestOBDProbeAgainstSimulator(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	links := filepath.Join(dir, "dev")
	truthPath := filepath.Join(dir, "truth.jsonl")
	sim := testenv.StartProcess(t, dir, "firmware-sim", filepath.Join(testenv.Binaries(t), "firmware-sim"), nil, "run",
		"--id-prefix", "probe"+testenv.ID()+"-", "--speed", "5", "--seed", "3", "--truth", truthPath, "--link-dir", links)
	var port string
	testenv.Eventually(t, 20*time.Second, "the obd link", func() error {
		m, err := filepath.Glob(filepath.Join(links, "*-obd"))
		if err != nil || len(m) == 0 {
			return fmt.Errorf("no link yet (%v)", err)
		}
		port = m[0]
		return nil
	}, sim)

	r, code, stderr := probe(t, port, 2)
	if code != 0 {
		t.Fatalf("obd-probe exit %d: %s", code, stderr)
	}
	// The simulator's engine computer (firmware-sim/README.md, "Mode 01").
	want := []string{"01", "04", "05", "06", "07", "0B", "0C", "0D", "0E", "0F", "10", "11", "1F", "21", "2F",
		"31", "33", "42", "46", "5C", "5E", "A6"}
	if r.Adapter != "ELM327 v1.5" || r.Protocol != "ISO 15765-4 (CAN 11/500)" || r.VIN != elm327.DefaultVIN ||
		!slices.Equal(want, r.SupportedPIDs) || len(r.DTCs) != 0 || r.VoltageV == nil || *r.VoltageV < 9 || *r.VoltageV > 16 {
		b, _ := json.Marshal(r)
		t.Errorf("report %s", b)
	}
	got := primaries(t, r)
	if len(got) != len(want) {
		t.Errorf("values for %d PIDs, want %d: %+v", len(got), len(want), r.Samples)
	}
	testenv.Eventually(t, 10*time.Second, "the probe's values in the ground truth", func() error {
		lines, err := truth.ReadFile(truthPath)
		if err != nil {
			return err
		}
		sent := map[byte][]float64{}
		for _, o := range lines {
			if o.Type != "obd" {
				continue
			}
			v, _ := strconv.ParseUint(o.PID, 16, 8)
			sent[byte(v)] = append(sent[byte(v)], o.Value)
		}
		for pid, vs := range got {
			if !slices.Equal(vs, sent[pid]) {
				return fmt.Errorf("PID %02X: probe %v, truth %v", pid, vs, sent[pid])
			}
		}
		return nil
	}, sim)
}

// Each adapter profile on each kind of bus, served in this process on a pty:
// the probe names the adapter, the protocol, the VIN and the codes, reports
// the PIDs a clone claims but never answers as errors, and prints only
// values the adapter sent.
func TestOBDProbeProfiles(t *testing.T) {
	t.Parallel()
	names := map[byte]string{6: "ISO 15765-4 (CAN 11/500)", 7: "ISO 15765-4 (CAN 29/500)", 3: "ISO 9141-2", 5: "ISO 14230-4 (KWP FAST)"}
	for _, p := range elm327.Profiles() {
		for proto, name := range names {
			t.Run(fmt.Sprintf("%s/protocol %d", p.Name, proto), func(t *testing.T) {
				t.Parallel()
				sim := startAdapter(t, elm327.WithProfile(p), elm327.WithProtocol(proto),
					elm327.WithVIN("1D4GP00R55B123456"), elm327.WithDTCs([]string{"P0301", "C1234", "B0001", "U0158"}, nil, nil))
				r, code, stderr := probe(t, sim.Path, 1)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				if r.Adapter != p.Version || r.Protocol != name || r.VIN != "1D4GP00R55B123456" ||
					!slices.Equal([]string{"B0001", "C1234", "P0301", "U0158"}, r.DTCs) {
					b, _ := json.Marshal(r)
					t.Errorf("report %s", b)
				}
				for _, u := range p.Unanswered {
					pid := fmt.Sprintf("%02X", u)
					if !slices.Contains(r.SupportedPIDs, pid) ||
						!slices.ContainsFunc(r.Samples, func(s obd.ProbeSample) bool { return s.PID == pid && s.Error == "NO DATA" }) {
						t.Errorf("PID %s, claimed and not answered: %+v", pid, r.Samples)
					}
				}
				got := primaries(t, r)
				if mil := got[0x01]; len(mil) != 1 || mil[0] != 1 { // stored codes light the MIL
					t.Errorf("MIL %v", mil)
				}
				inOrder(t, got, sim.caughtUp(got), true)
			})
		}
	}
}
