// Command bench-results reads the output of `go test -bench` on its standard
// input and writes the figures of deploy/bench.Figures as bench-results.json
// (a list of {"name", "value", "unit", "baseline", "baseline_value",
// "ratio", "target"}), and optionally the same table, with the machine, into
// a Markdown file between the lines "<!-- bench-results -->" and
// "<!-- /bench-results -->". `make bench` and `make bench-quick` run it.
//
//	go test -run '^$' -bench . ./... | bench-results -json bench-results.json [-md docs/BENCHMARKS.md] [-all]
//
// With -all, a figure whose benchmark did not run is an error; without it,
// such figures are left out and named on standard error.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/deploy/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench-results:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-results", flag.ContinueOnError)
	jsonPath := fs.String("json", "bench-results.json", "where to write the figures")
	mdPath := fs.String("md", "", "a Markdown file whose bench-results section gets the table")
	all := fs.Bool("all", false, "fail when a figure's benchmark did not run")
	module := fs.String("module", "github.com/fleetgate/fleetgate", "the module whose path is stripped from package names")
	commit := fs.String("commit", "", "the commit measured, for the Markdown (default: git describe --always --dirty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := bench.ParseRun(stdin, *module)
	if err != nil {
		return err
	}
	results, notRun, err := r.Results(bench.Figures)
	if err != nil {
		return err
	}
	if len(notRun) > 0 {
		if *all {
			return fmt.Errorf("not measured (their benchmarks did not run): %s", strings.Join(notRun, ", "))
		}
		fmt.Fprintf(stderr, "bench-results: not measured in this run: %s\n", strings.Join(notRun, ", "))
	}
	out, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*jsonPath, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *jsonPath, err)
	}
	fmt.Fprintf(stderr, "bench-results: %d figures in %s\n", len(results), *jsonPath)
	if *mdPath == "" {
		return nil
	}
	if *commit == "" {
		*commit = "unknown commit"
		if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
			*commit = strings.TrimSpace(string(out))
		}
	}
	return updateMarkdown(*mdPath, machine(r.Machine), *commit, results)
}

// machine adds this machine's cores and memory to what go test printed.
func machine(goMachine string) string {
	m := fmt.Sprintf("%s, %d cores", goMachine, runtime.NumCPU())
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m += fmt.Sprintf(", %d GiB", (kb+1<<19)>>20)
		}
	}
	return m
}

const (
	begin = "<!-- bench-results -->"
	end   = "<!-- /bench-results -->"
)

// updateMarkdown replaces the section between begin and end of path.
func updateMarkdown(path, machine, commit string, results []bench.Result) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(b)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", path, begin, end)
	}
	section := fmt.Sprintf("%s\nMeasured %s at %s on %s (`make bench`).\n\n%s", begin,
		time.Now().UTC().Format("2006-01-02"), commit, machine, bench.Markdown(results))
	return os.WriteFile(path, []byte(text[:i]+section+text[j:]), 0o644)
}
