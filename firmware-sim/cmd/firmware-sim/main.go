// Command firmware-sim stands in for a vehicle's GPS receiver and ELM327 OBD-II
// adapter: it drives simulated vehicles along a route, emits NMEA and answers
// ELM327 commands on pseudo-terminals or TCP ports, injects the faults of a
// scenario, writes the ground truth of everything it emitted, diffs what a
// cloud stored with that truth, and in load mode publishes telemetry straight
// to MQTT as many virtual agents. See firmware-sim/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
)

const usage = `firmware-sim: GPS receiver and ELM327 adapter emulation for Fleetgate

Usage:
  firmware-sim run [flags]         drive vehicles, serve their ports until interrupted
  firmware-sim run --scenario X    the same, as scenario X (a file or a built-in) says
  firmware-sim scenarios [NAME]    list the built-in scenarios, or print one
  firmware-sim validate FILE       check a scenario file; errors name line and column
  firmware-sim routes              list the built-in routes
  firmware-sim faults              list the fault kinds a scenario may inject
  firmware-sim load [flags]        publish telemetry to MQTT as many virtual agents
  firmware-sim diff [flags]        diff what a cloud stored with a run's ground truth
  firmware-sim help                this text; "firmware-sim <command> --help" for a command's flags
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs a command and returns the exit status: 0 done, 1 failed,
// 2 bad usage.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "routes":
		return routesCmd(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "scenarios":
		return scenariosCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "faults":
		return faultsCmd(args[1:], stdout, stderr)
	case "load":
		return loadCmd(args[1:], stdout, stderr)
	case "diff":
		return diffCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "firmware-sim: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func routesCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("routes", stderr, "Usage: firmware-sim routes\n\nLists the built-in routes: name, length of the loop, description.\n")
	if code, done := parse(fs, args, stdout, 0); done {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, r := range firmwaresim.Routes() {
		fmt.Fprintf(tw, "%s\t%.2f km\t%s\n", r.Name, r.Length()/1000, r.Description)
	}
	tw.Flush()
	return 0
}

func faultsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("faults", stderr, "Usage: firmware-sim faults\n\nLists the fault kinds of a scenario's timeline: the devices each hits (the first is\nthe default), the parameters it takes and what it does.\n")
	if code, done := parse(fs, args, stdout, 0); done {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "KIND\tDEVICE\tPARAMETERS\tWHAT IT DOES\n")
	for _, s := range firmwaresim.Faults {
		var devs, params []string
		for _, d := range s.Devices {
			devs = append(devs, string(d))
		}
		for _, p := range s.Params {
			if contains(s.Required, p) {
				p += " (required)"
			}
			params = append(params, p)
		}
		if len(params) == 0 {
			params = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, strings.Join(devs, ","), strings.Join(params, ", "), s.Doc)
	}
	tw.Flush()
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func scenariosCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scenarios", stderr, "Usage: firmware-sim scenarios [NAME]\n\nLists the built-in scenarios; with NAME, prints that scenario's YAML (a good start for your own).\nRun one with: firmware-sim run --scenario NAME\n")
	if code, done := parse(fs, args, stdout, 1); done {
		return code
	}
	if fs.NArg() == 1 {
		src, err := scenario.BuiltinSource(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "firmware-sim scenarios: %v\n", err)
			return 1
		}
		stdout.Write(src)
		return 0
	}
	list, err := scenario.Builtins()
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim scenarios: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\n", s[0], s[1])
	}
	tw.Flush()
	return 0
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr, "Usage: firmware-sim validate FILE\n\nChecks a scenario file (or a built-in scenario's name) without running it. Every\nerror is printed as FILE:LINE:COLUMN: message; the exit status is 1 if there is any.\n")
	if code, done := parse(fs, args, stdout, 1); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "firmware-sim validate: want one scenario FILE\n")
		return 2
	}
	sc, err := scenario.Load(fs.Arg(0))
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintln(stderr, e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: scenario %q, %d vehicles, %d faults, %v of driving\n", fs.Arg(0), sc.Name, len(sc.Vehicles), len(sc.Faults), sc.Duration)
	return 0
}

// unjoin returns the errors joined in err, one by one.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: firmware-sim run [flags]

Drives the vehicles along their routes in simulated time and serves, per
vehicle, a GPS receiver (NMEA) and an ELM327 adapter, each on a pseudo-terminal
(or a TCP port). Prints "<vehicle> gps|obd <device> [-> <link>]" per port (and
"<vehicle> uplink <proxy> -> <broker>" with an uplink proxy), then "ready".
With --scenario the vehicles, routes, receivers and the fault timeline come
from a scenario; flags given explicitly override it. After the duration the
GPS output stops, the engine is off (ELM327 answers NO DATA) and the truth
gets an "end" line per vehicle; the ports stay open until SIGINT or SIGTERM.
On a terminal, stderr shows a live progress line.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args, stdout, 0); done {
		return code
	}
	cfg.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.set[f.Name] = true })
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "firmware-sim run: %v\n", err)
		return 2
	}
	sc, err := cfg.Resolve()
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim run: bad scenario:\n")
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return 2
	}
	var prog *progress
	logOut := stderr
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		prog = &progress{w: stderr}
		logOut = prog
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, sc, stdout, prog, log); err != nil {
		fmt.Fprintf(stderr, "firmware-sim run: %v\n", err)
		return 1
	}
	return 0
}

func newFlagSet(name string, stderr io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; done reports that the command is over (help asked, or
// bad flags or arguments) with the exit code to use. maxArgs is how many
// arguments may follow the flags. Help goes to stdout, errors and the usage
// that follows them to the flag set's output (stderr).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer, maxArgs int) (code int, done bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0, true
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > maxArgs {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args()[maxArgs:])
		return 2, true
	}
	return 0, false
}
