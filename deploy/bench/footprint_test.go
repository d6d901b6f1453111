package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// BenchmarkAgentFootprint runs the real edge-agent binary, built as `make
// build-edge` builds it for the gateways (static, CGO_ENABLED=0, -trimpath),
// at 10 Hz GPS and 8 OBD PIDs a second, fed by the real firmware-sim (GPS at
// --rate 10 and its ELM327, through ptys), sending to the real cloud-server,
// and measures the
// agent's peak resident memory (VmHWM) and its CPU time over wall time
// (targets: RSS ≤ 20 MB, CPU ≤ 2 % of a core) over 30 s after a 10 s
// warm-up (FLEETGATE_FULL=1: 5 minutes). It also reports the rates the
// cloud stored, to show the load was what it says.
func BenchmarkAgentFootprint(b *testing.B) {
	bin := testenv.Binaries(b)
	dir := b.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", dir, "./edge/cmd/edge-agent")
	build.Dir, build.Env = testenv.ModuleRoot(b), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build edge-agent: %v\n%s", err, out)
	}
	s := startServer(b, bin, dir)
	window := 30 * time.Second
	if os.Getenv("FLEETGATE_FULL") == "1" {
		window = 5 * time.Minute
	}
	links := filepath.Join(dir, "dev")
	prefix := "fp" + testenv.ID() + "-"
	vehicle := prefix + "001"
	sim := testenv.StartProcess(b, dir, "firmware-sim", filepath.Join(bin, "firmware-sim"), nil, "run",
		"--vehicles", "1", "--id-prefix", prefix, "--rate", "10", "--baud", "115200", "--link-dir", links, "--seed", "3")
	for _, dev := range []string{"gps", "obd"} {
		link := filepath.Join(links, vehicle+"-"+dev)
		testenv.Eventually(b, time.Minute, link, func() error { _, err := os.Stat(link); return err }, sim)
	}
	pids := make([]string, len(bench.PIDs))
	for i, p := range bench.PIDs {
		pids[i] = fmt.Sprintf("%q", fmt.Sprintf("%02X", p&0xff))
	}
	agent := startAgent(b, dir, dir, s, vehicle, fmt.Sprintf(
		"gps:\n  port: %s\nobd:\n  port: %s\n  pids: [%s]\n  interval: 1s\nhttp:\n  listen: 127.0.0.1:%d\n",
		filepath.Join(links, vehicle+"-gps"), filepath.Join(links, vehicle+"-obd"), strings.Join(pids, ", "), testenv.FreePort(b)))
	pid := agent.Cmd.Process.Pid

	ctx := context.Background()
	stored := func() (fixes, samples int, err error) {
		from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		ps, err := s.api.Positions(ctx, vehicle, from, to)
		if err != nil {
			return 0, 0, err
		}
		obd, err := s.api.OBD(ctx, vehicle, from, to)
		return len(ps), len(obd), err
	}
	testenv.Eventually(b, time.Minute, "fixes and OBD samples in the cloud", func() error {
		if f, o, err := stored(); err != nil || f == 0 || o == 0 {
			return fmt.Errorf("%d fixes, %d OBD samples (%v)", f, o, err)
		}
		return nil
	}, agent, sim, s.proc)
	time.Sleep(10 * time.Second) // warm-up: the agent in its steady state

	var cpu, wall time.Duration
	var peak, rss int64
	var fixRate, obdRate float64
	for b.Loop() {
		f0, o0, err := stored()
		if err != nil {
			b.Fatal(err)
		}
		u0, err := bench.ReadUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		time.Sleep(window)
		u1, err := bench.ReadUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		wall, cpu, peak, rss = time.Since(t0), u1.CPU-u0.CPU, u1.PeakRSS, u1.RSS
		f1, o1, err := stored()
		if err != nil {
			b.Fatal(err)
		}
		fixRate, obdRate = float64(f1-f0)/wall.Seconds(), float64(o1-o0)/wall.Seconds()
	}
	b.ReportMetric(float64(peak)/(1<<20), "MiB-RSS-peak")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-RSS-end")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%CPU")
	b.ReportMetric(fixRate, "fixes/s")
	b.ReportMetric(obdRate, "pids/s")
}
