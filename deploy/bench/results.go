package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A Figure is one entry of bench-results.json: a metric that one benchmark
// reports with b.ReportMetric, and the baseline that the same benchmark
// measures in the same run. A benchmark adds its figure by reporting the
// metric and adding a row to Figures; nothing else changes.
type Figure struct {
	Name   string // the figure's stable name, e.g. "ingest_positions_per_s"
	Pkg    string // the benchmark's package, below the module: "deploy/bench"
	Bench  string // the benchmark, sub-benchmarks after a slash, without the -GOMAXPROCS suffix
	Metric string // the unit the benchmark reports the figure in
	Unit   string // the figure's unit in bench-results.json

	Baseline       string // what the baseline is; "" when the figure has none
	BaselineMetric string // the unit the benchmark reports the baseline in
	// LowerIsBetter says the ratio is baseline/value (bytes, seconds)
	// rather than value/baseline (rates): a ratio above 1 is always better
	// than the baseline.
	LowerIsBetter bool
	Target        string
}

// Figures maps benchmark metrics to the figures of bench-results.json: the
// one table to extend when a benchmark measures a new figure.
var Figures = []Figure{
	{Name: "ingest_positions_per_s", Pkg: "deploy/bench", Bench: "BenchmarkIngest", Metric: "positions/s", Unit: "positions/s",
		Baseline: "PostgreSQL's own COPY of the same rows into the same table, one connection, no MQTT", BaselineMetric: "copy-positions/s",
		Target: "≥ 0.8× COPY; ≥ 30× one INSERT per row (x-vs-row-insert)"},
	{Name: "outbox_append_records_per_s", Pkg: "edge/bolt", Bench: "BenchmarkOutboxAppend", Metric: "records/s", Unit: "records/s",
		Baseline: "bbolt, one commit (one fsync) per record", BaselineMetric: "per-record-commit-records/s",
		Target: "≥ 50× baseline"},
	{Name: "wire_bytes_per_fix", Pkg: "shared/telemetry", Bench: "BenchmarkBytesPerFix", Metric: "B/fix", Unit: "B",
		Baseline: "the same 60 fixes as JSON+zstd (JSON+gzip, raw JSON and protocol version 1 beside it in the benchmark)", BaselineMetric: "B/fix-json-zstd",
		LowerIsBetter: true, Target: "≤ 11 B (asserted by TestWireSizeTargets)"},
	{Name: "wire_bytes_lone_fix", Pkg: "shared/telemetry", Bench: "BenchmarkBytesPerFix", Metric: "B/lone-fix", Unit: "B",
		Baseline: "the same fix as JSON, in the same MQTT PUBLISH", BaselineMetric: "B/lone-fix-json",
		LowerIsBetter: true, Target: "≤ 64 B, the whole PUBLISH (asserted by TestWireSizeTargets)"},
	{Name: "vehicle_day_bytes", Pkg: "deploy/bench", Bench: "BenchmarkVehicleDay", Metric: "B/vehicle-day", Unit: "B",
		Baseline:       "the same day as Teltonika Codec 8 over TCP, a packet a minute (JSON+gzip and JSON+zstd beside it in the benchmark)",
		BaselineMetric: "B/vehicle-day-codec8", LowerIsBetter: true, Target: "≥ 3× smaller than Codec 8 (asserted by TestVehicleDay)"},
	{Name: "backlog_24h_drain_s", Pkg: "deploy/bench", Bench: "BenchmarkBacklogDrain24h", Metric: "s-to-drain", Unit: "s",
		Baseline: "the same 24 h backlog sent one message (60 records) at a time, measured", BaselineMetric: "s-one-at-a-time",
		LowerIsBetter: true, Target: "≤ 15 s on loopback"},
	{Name: "live_latency_p50_ms", Pkg: "deploy/bench", Bench: "BenchmarkLiveLatency/10Hz", Metric: "ms-p50", Unit: "ms",
		LowerIsBetter: true, Target: "— (10 Hz)"},
	{Name: "live_latency_p99_ms", Pkg: "deploy/bench", Bench: "BenchmarkLiveLatency/10Hz", Metric: "ms-p99", Unit: "ms",
		LowerIsBetter: true, Target: "≤ 250 ms at 10 Hz"},
	{Name: "live_latency_1hz_p50_ms", Pkg: "deploy/bench", Bench: "BenchmarkLiveLatency/1Hz", Metric: "ms-p50", Unit: "ms",
		LowerIsBetter: true, Target: "— (1 Hz)"},
	{Name: "live_latency_1hz_p99_ms", Pkg: "deploy/bench", Bench: "BenchmarkLiveLatency/1Hz", Metric: "ms-p99", Unit: "ms",
		LowerIsBetter: true, Target: "≤ 250 ms at 1 Hz"},
	{Name: "agent_rss_mb", Pkg: "deploy/bench", Bench: "BenchmarkAgentFootprint", Metric: "MiB-RSS-peak", Unit: "MiB",
		LowerIsBetter: true, Target: "≤ 20 MB at 10 Hz GPS + 8 PIDs/s"},
	{Name: "agent_cpu_pct", Pkg: "deploy/bench", Bench: "BenchmarkAgentFootprint", Metric: "%CPU", Unit: "% of a core",
		LowerIsBetter: true, Target: "≤ 2 % at 10 Hz GPS + 8 PIDs/s"},
	{Name: "api_latest_10k_ms", Pkg: "deploy/bench", Bench: "BenchmarkAPILatest10k", Metric: "ms-p99", Unit: "ms",
		Baseline: "the bare SQL query behind the same 10,000-vehicle page, on the same database", BaselineMetric: "ms-p99-sql-baseline",
		LowerIsBetter: true, Target: "p99 ≤ 50 ms"},
	{Name: "api_track_day_ms", Pkg: "deploy/bench", Bench: "BenchmarkAPITrackDay", Metric: "ms-p99", Unit: "ms",
		Baseline: "the same vehicle-day read as paged JSON (the client following next)", BaselineMetric: "ms-p99-json-pages-baseline",
		LowerIsBetter: true, Target: "p99 ≤ 500 ms, memory flat (MiB-heap-peak-growth)"},
	{Name: "live_fanout_p99_ms", Pkg: "deploy/bench", Bench: "BenchmarkLiveFanout", Metric: "ms-p99", Unit: "ms",
		LowerIsBetter: true, Target: "p99 ≤ 300 ms, 1,000 vehicles at 1 Hz to 200 stream clients"},
	{Name: "dashboard_first_render_ms", Pkg: "deploy/bench", Bench: "BenchmarkDashboard", Metric: "first-render-ms", Unit: "ms",
		LowerIsBetter: true, Target: "≤ 2,000 ms with 1,000 vehicles"},
	{Name: "dashboard_longest_task_ms", Pkg: "deploy/bench", Bench: "BenchmarkDashboard", Metric: "longest-task-ms", Unit: "ms",
		LowerIsBetter: true, Target: "no main-thread task over 50 ms (0 here) with 1,000 vehicles at 1 Hz"},
	{Name: "sim_load_cpu_pct", Pkg: "firmware-sim/load", Bench: "BenchmarkLoad", Metric: "%CPU", Unit: "% of a core",
		LowerIsBetter: true, Target: "< 100 % for 1,000 virtual agents at 1 Hz"},
}

// Result is one entry of bench-results.json. Baseline, BaselineValue and
// Ratio are null for a figure without a baseline.
type Result struct {
	Name          string   `json:"name"`
	Value         float64  `json:"value"`
	Unit          string   `json:"unit"`
	Baseline      *string  `json:"baseline"`
	BaselineValue *float64 `json:"baseline_value"`
	Ratio         *float64 `json:"ratio"`
	Target        string   `json:"target"`
}

// Run is what `go test -bench` printed: every metric of every benchmark, and
// the machine it ran on.
type Run struct {
	Machine string                        // "linux/amd64, <cpu>"
	metrics map[string]map[string]float64 // "pkg Bench" → unit → value
	benches map[string]bool
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// ParseRun reads the text output of `go test -bench` (for one module, whose
// path it strips from package names). A benchmark that ran more than once
// keeps its last values.
func ParseRun(r io.Reader, module string) (*Run, error) {
	run := &Run{metrics: map[string]map[string]float64{}, benches: map[string]bool{}}
	var goos, goarch, cpu, pkg string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "goos: "):
			goos = strings.TrimPrefix(line, "goos: ")
		case strings.HasPrefix(line, "goarch: "):
			goarch = strings.TrimPrefix(line, "goarch: ")
		case strings.HasPrefix(line, "cpu: "):
			cpu = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(strings.TrimPrefix(line, "pkg: "+module), "/")
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("benchmark line %q: values and units do not pair up", line)
		}
		key := pkg + " " + m[1]
		run.benches[key] = true
		if run.metrics[key] == nil {
			run.metrics[key] = map[string]float64{}
		}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", line, err)
			}
			run.metrics[key][fields[i+1]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	run.Machine = strings.Trim(goos+"/"+goarch+", "+cpu, "/, ")
	return run, nil
}

// Results returns the figures the run measured, in the order of figs, and
// the names of those whose benchmark did not run. A benchmark that ran
// without reporting its figure's metric or baseline is an error: the
// benchmark and the table have drifted apart.
func (r *Run) Results(figs []Figure) (results []Result, notRun []string, err error) {
	for _, f := range figs {
		key := f.Pkg + " " + f.Bench
		if !r.benches[key] {
			notRun = append(notRun, f.Name)
			continue
		}
		m := r.metrics[key]
		v, ok := m[f.Metric]
		if !ok {
			return nil, nil, fmt.Errorf("%s: %s in %s reported no %q (it reported %v)", f.Name, f.Bench, f.Pkg, f.Metric, units(m))
		}
		res := Result{Name: f.Name, Value: v, Unit: f.Unit, Target: f.Target}
		if f.Baseline != "" {
			bv, ok := m[f.BaselineMetric]
			if !ok {
				return nil, nil, fmt.Errorf("%s: %s in %s reported no baseline %q (it reported %v)", f.Name, f.Bench, f.Pkg, f.BaselineMetric, units(m))
			}
			ratio := v / bv
			if f.LowerIsBetter {
				ratio = bv / v
			}
			ratio = math.Round(ratio*100) / 100
			res.Baseline, res.BaselineValue, res.Ratio = &f.Baseline, &bv, &ratio
		}
		results = append(results, res)
	}
	return results, notRun, nil
}

func units(m map[string]float64) []string {
	var u []string
	for k := range m {
		u = append(u, k)
	}
	slices.Sort(u)
	return u
}

// Markdown renders results as the table of docs/BENCHMARKS.md.
func Markdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| figure | value | baseline | baseline value | ratio (> 1: better) | target |\n|---|---|---|---|---|---|\n")
	num := func(v float64) string {
		if math.Abs(v) >= 1000 { // 76,561: whole, with thousands separators
			digits := strconv.FormatFloat(math.Round(math.Abs(v)), 'f', 0, 64)
			for i := len(digits) - 3; i > 0; i -= 3 {
				digits = digits[:i] + "," + digits[i:]
			}
			if v < 0 {
				digits = "-" + digits
			}
			return digits
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	for _, r := range results {
		base, bv, ratio := "—", "—", "—"
		if r.Baseline != nil {
			base, bv, ratio = *r.Baseline, num(*r.BaselineValue)+" "+r.Unit, num(*r.Ratio)+"×"
		}
		fmt.Fprintf(&b, "| `%s` | %s %s | %s | %s | %s | %s |\n", r.Name, num(r.Value), r.Unit, base, bv, ratio, r.Target)
	}
	return b.String()
}
