package bench_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/internal/browser"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// dashVehicles is the fleet the dashboard is measured with.
const dashVehicles = 1000

// BenchmarkDashboard measures the dashboard in Debian's headless Chromium
// against the real cloud-server, fed by firmware-sim's load mode: 1,000
// virtual agents publishing a fix a second each through Mosquitto.
//
//   - first-render-ms: from navigation start to the first frame painted
//     with every vehicle on the map and in the list (the page, its bundle,
//     the session check, GET /api/v1/vehicles, drawing), the median of five
//     loads (max-first-render-ms: the slowest);
//   - longest-task-ms: the longest main-thread task (the Long Tasks API,
//     which reports tasks over 50 ms) over 30 s of live updates, 1,000 a
//     second from the SSE stream; 0 when no task took over 50 ms;
//     long-tasks counts them; max-frame-gap-ms is the longest time between
//     two animation frames, max-apply-ms the longest a frame's batch of
//     updates took to apply, max-frame-script-ms the most script time in
//     one frame of those the Long Animation Frames API reports (over 50 ms
//     long): the dashboard's own share of its longest frames.
//
// The baseline-* figures are the same measures over 30 s of the sign-in
// page (nothing live) in the same browser while the same load runs: on a
// machine of two cores shared by the load generator, the broker, the
// cloud, PostgreSQL and the browser, that is the part that is not the
// dashboard's.
func BenchmarkDashboard(b *testing.B) {
	bin := testenv.Binaries(b)
	dir := b.TempDir()
	s := startServer(b, bin, dir)
	prefix := "dash" + testenv.ID() + "-"
	load := testenv.StartProcess(b, dir, "firmware-sim-load", filepath.Join(bin, "firmware-sim"), nil, "load",
		"--vehicles", strconv.Itoa(dashVehicles), "--rate", "1", "--duration", "30m",
		"--mqtt", s.mqttURL, "--namespace", string(s.ns), "--id-prefix", prefix)
	ctx := context.Background()
	testenv.Eventually(b, 5*time.Minute, "every vehicle with a position", func() error {
		var list struct {
			Vehicles []struct {
				Position *struct{} `json:"position"`
			} `json:"vehicles"`
		}
		if err := s.api.Get(ctx, "/api/v1/vehicles?limit=5000", &list); err != nil {
			return err
		}
		n := 0
		for _, v := range list.Vehicles {
			if v.Position != nil {
				n++
			}
		}
		if n < dashVehicles {
			return fmt.Errorf("%d of %d vehicles have a position", n, dashVehicles)
		}
		return nil
	}, load, s.proc)

	br := browser.Start(b, browser.Options{})
	// The baseline: the same browser showing the dashboard's sign-in page
	// (no data, nothing live) for as long, while the same load runs. What
	// it sees is the machine's share of long tasks and frame gaps.
	br.Run("open the sign-in page", chromedp.Navigate(s.api.Base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	idle := watchMainThread(b, br)

	e2e.SignIn(b, br, s.api.Base, s.api.Token, dashVehicles)

	var renders []float64
	for i := 0; i < 5; i++ {
		br.Run("load the dashboard", chromedp.Navigate(s.api.Base+"/"))
		var ms float64
		br.Until(time.Minute, "the first render", func() error {
			var v *float64
			if err := br.Eval(`performance.getEntriesByName("fleetgate:first-render")[0]?.startTime ?? null`, &v); err != nil {
				return err
			}
			if v == nil {
				return testenv.ErrNotYet
			}
			var markers int
			if err := br.Eval("Object.keys(window.fleetgate.markers()).length", &markers); err != nil {
				return err
			}
			if markers != dashVehicles {
				return fmt.Errorf("first render with %d markers, want %d", markers, dashVehicles)
			}
			ms = *v
			return nil
		})
		renders = append(renders, ms)
	}
	slices.Sort(renders)

	var before map[string][2]float64
	if err := br.Eval("window.fleetgate.markers()", &before); err != nil {
		b.Fatal(err)
	}
	live := watchMainThread(b, br) // live updates, a thousand a second
	var apply float64
	if err := br.Eval("window.fleetgate.maxApplyMs()", &apply); err != nil {
		b.Fatal(err)
	}
	var after map[string][2]float64
	if err := br.Eval("window.fleetgate.markers()", &after); err != nil {
		b.Fatal(err)
	}
	moved := 0
	for id, p := range after {
		if before[id] != p {
			moved++
		}
	}
	if moved < dashVehicles*9/10 {
		b.Fatalf("only %d of %d markers moved in 30 s of live updates", moved, dashVehicles)
	}
	br.Screenshot("fleet-1000")
	b.ReportMetric(renders[len(renders)/2], "first-render-ms")
	b.ReportMetric(renders[len(renders)-1], "max-first-render-ms")
	b.ReportMetric(live.Longest, "longest-task-ms")
	b.ReportMetric(float64(live.Tasks), "long-tasks")
	b.ReportMetric(live.Gap, "max-frame-gap-ms")
	b.ReportMetric(live.Script, "max-frame-script-ms")
	b.ReportMetric(apply, "max-apply-ms")
	b.ReportMetric(float64(moved), "markers-moved")
	b.ReportMetric(idle.Longest, "baseline-longest-task-ms")
	b.ReportMetric(float64(idle.Tasks), "baseline-long-tasks")
	b.ReportMetric(idle.Gap, "baseline-max-frame-gap-ms")
}

// mainThread is what watchMainThread saw.
type mainThread struct {
	Longest float64 `json:"longest"` // ms, the longest task over 50 ms (0: none)
	Tasks   int     `json:"tasks"`   // tasks over 50 ms
	Gap     float64 `json:"gap"`     // ms, the longest time between two animation frames
	Script  float64 `json:"script"`  // ms, the most script time in one long animation frame
	Frames  []any   `json:"frames"`  // the long animation frames, with their scripts
}

// watchMainThread watches the page's main thread for 30 s with the Long
// Tasks API and an animation-frame loop.
func watchMainThread(b *testing.B, br *browser.Browser) mainThread {
	b.Helper()
	if err := br.Eval(`(() => {
  const m = window.fleetgateBench = {longest: 0, tasks: 0, gap: 0};
  new PerformanceObserver((l) => { for (const e of l.getEntries()) { m.longest = Math.max(m.longest, e.duration); m.tasks++; } }).observe({type: "longtask"});
  m.frames = []; m.script = 0;
  new PerformanceObserver((l) => { for (const e of l.getEntries()) { m.script = Math.max(m.script, e.scripts.reduce((a, s) => a + s.duration, 0)); if (e.duration > 50) m.frames.push({d: Math.round(e.duration), block: Math.round(e.blockingDuration), render: Math.round(e.renderStart ? e.startTime + e.duration - e.renderStart : 0), style: Math.round(e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0), scripts: e.scripts.map(s => s.invoker + " " + s.sourceFunctionName + " " + Math.round(s.duration))}); } }).observe({type: "long-animation-frame"});
  let last = 0;
  const frame = (t) => { if (last) m.gap = Math.max(m.gap, t - last); last = t; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  return true;
})()`, nil); err != nil {
		b.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	var m mainThread
	if err := br.Eval("window.fleetgateBench", &m); err != nil {
		b.Fatal(err)
	}
	for i, f := range m.Frames {
		if i < 5 {
			b.Logf("a long animation frame (ms; the scripts in it): %v", f)
		}
	}
	return m
}
