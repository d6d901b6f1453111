// Command firmware-sim stands in for a vehicle's GPS receiver and ELM327 OBD-II
// adapter: it drives simulated vehicles along a built-in route, emits NMEA and
// answers ELM327 commands on pseudo-terminals, and writes the ground truth of
// everything it emitted. See firmware-sim/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

const usage = `firmware-sim: GPS receiver and ELM327 adapter emulation for Fleetgate

Usage:
  firmware-sim run [flags]     drive vehicles, serve their ports until interrupted
  firmware-sim routes          list the built-in routes
  firmware-sim help            this text; "firmware-sim <command> --help" for a command's flags
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
	}
	fmt.Fprintf(stderr, "firmware-sim: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func routesCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: firmware-sim routes\n\nLists the built-in routes: name, length of the loop, description.\n")
	}
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, r := range firmwaresim.Routes() {
		fmt.Fprintf(tw, "%s\t%.2f km\t%s\n", r.Name, r.Length()/1000, r.Description)
	}
	tw.Flush()
	return 0
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: firmware-sim run [flags]

Drives the vehicles along the route in simulated time and serves, per vehicle,
a GPS receiver (NMEA RMC, GGA, GSA) and an ELM327 adapter on two pseudo-
terminals. Prints "<vehicle> gps|obd <device> [-> <link>]" per port, then
"ready". After --duration the GPS output stops, the engine is off (ELM327
answers NO DATA) and the truth file gets an "end" line per vehicle; the ports
stay open until SIGINT or SIGTERM.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "firmware-sim run: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, stdout, log); err != nil {
		fmt.Fprintf(stderr, "firmware-sim run: %v\n", err)
		return 1
	}
	return 0
}

// parse parses flags; done reports that the command is over (help asked, or
// bad flags) with the exit code to use. Help goes to stdout, errors and the
// usage that follows them to the flag set's output (stderr).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
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
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return 2, true
	}
	return 0, false
}
