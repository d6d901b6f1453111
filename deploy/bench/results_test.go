package bench_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/deploy/bench"
)

func parseFixture(t *testing.T) *bench.Run {
	t.Helper()
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := bench.ParseRun(f, "github.com/fleetgate/fleetgate")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResultsFromBenchmarkOutput(t *testing.T) {
	r := parseFixture(t)
	if r.Machine != "linux/amd64, AMD EPYC 7B13" {
		t.Errorf("machine %q", r.Machine)
	}
	results, notRun, err := r.Results(bench.Figures)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bench.Result{}
	for _, res := range results {
		got[res.Name] = res
	}
	for name, want := range map[string]struct {
		value, baseline, ratio float64 // baseline 0: none
	}{
		"wire_bytes_per_fix":      {10.95, 22.77, 2.08}, // lower is better: baseline/value
		"wire_bytes_lone_fix":     {103, 131, 1.27},
		"backlog_24h_drain_s":     {12.5, 62.5, 5},
		"live_latency_p50_ms":     {180.5, 0, 0}, // the 10 Hz sub-benchmark's, not the other's
		"live_latency_p99_ms":     {390.1, 0, 0},
		"live_latency_1hz_p99_ms": {100.1, 0, 0},
	} {
		res, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if res.Value != want.value {
			t.Errorf("%s = %v, want %v", name, res.Value, want.value)
		}
		if want.baseline == 0 {
			if res.Baseline != nil || res.BaselineValue != nil || res.Ratio != nil {
				t.Errorf("%s has a baseline: %+v", name, res)
			}
			continue
		}
		if res.Baseline == nil || *res.BaselineValue != want.baseline || *res.Ratio != want.ratio {
			t.Errorf("%s: baseline %v, ratio %v; want %v, %v", name, res.BaselineValue, res.Ratio, want.baseline, want.ratio)
		}
	}
	if len(results) != 7 {
		t.Errorf("%d results, want 7", len(results))
	}
	if !strings.Contains(strings.Join(notRun, " "), "ingest_positions_per_s") || !strings.Contains(strings.Join(notRun, " "), "vehicle_day_bytes") {
		t.Errorf("not run: %v", notRun)
	}
	md := bench.Markdown(results)
	for _, want := range []string{"| `wire_bytes_per_fix` | 10.95 B | the same 60 fixes as JSON+zstd", "| 5× |", "| `live_latency_p99_ms` | 390.1 ms | — |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if got := bench.Markdown([]bench.Result{{Name: "n", Value: 76561.4, Unit: "positions/s", Target: "t"}}); !strings.Contains(got, "| 76,561 positions/s |") {
		t.Errorf("a large value: %s", got)
	}
}

func TestResultsFailOnAMissingMetric(t *testing.T) {
	r := parseFixture(t)
	figs := []bench.Figure{{Name: "x", Pkg: "deploy/bench", Bench: "BenchmarkBacklogDrain24h", Metric: "s-renamed", Unit: "s"}}
	if _, _, err := r.Results(figs); err == nil || !strings.Contains(err.Error(), "s-renamed") {
		t.Errorf("a renamed metric: err %v", err)
	}
	figs[0].Metric, figs[0].Baseline, figs[0].BaselineMetric = "s-to-drain", "gone", "s-gone"
	if _, _, err := r.Results(figs); err == nil || !strings.Contains(err.Error(), "s-gone") {
		t.Errorf("a missing baseline: err %v", err)
	}
}

// Every figure of the table names its metric and unit, and a baseline comes
// with the metric that measures it.
func TestFiguresAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range bench.Figures {
		if f.Name == "" || f.Pkg == "" || f.Bench == "" || f.Metric == "" || f.Unit == "" || f.Target == "" || seen[f.Name] {
			t.Errorf("incomplete or repeated figure %+v", f)
		}
		seen[f.Name] = true
		if (f.Baseline == "") != (f.BaselineMetric == "") {
			t.Errorf("%s: baseline %q measured by %q", f.Name, f.Baseline, f.BaselineMetric)
		}
	}
}
