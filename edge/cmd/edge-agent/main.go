// Command edge-agent is Fleetgate's in-vehicle daemon: it reads the GNSS
// receiver and the ELM327 adapter, keeps every record in a bbolt outbox and
// sends it to the cloud over MQTT, deleting it only when the cloud's ack
// says it is stored.
//
//	edge-agent run --config FILE                       run the daemon
//	edge-agent nmea-decode [FILE|-|PORT-URL]           decode NMEA, one JSON fix per line
//	edge-agent healthcheck (--config FILE | --url URL) ask the running agent's /health
//	edge-agent outbox stats --data DIR                 the outbox's state as JSON
//	edge-agent version                                 print the version
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
	"runtime"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `usage:
  edge-agent run --config FILE                       run the agent
  edge-agent nmea-decode [FILE|-|PORT-URL]           decode NMEA to one JSON fix per line (like gpsdecode)
  edge-agent healthcheck (--config FILE | --url URL) exit 0 if the running agent's /health answers
  edge-agent outbox stats --data DIR                 print the outbox's state as JSON (works while the agent runs)
  edge-agent obd-probe --port URL [--samples N]      run an ELM327 session and print what the adapter and vehicle report (JSON)
  edge-agent version                                 print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// oneProc runs the daemon's Go code on one processor unless GOMAXPROCS
// says otherwise. The agent moves tens of records a second and spends its
// life waiting on serial ports, the outbox's fsync and the network; with one
// P per core the runtime wakes idle threads to spin for every goroutine made
// runnable, which on a 2-core box doubled the agent's CPU (make bench,
// BenchmarkAgentFootprint: about 2.0 % of a core against 0.9 % with one).
// Blocking system calls still run beside it: the runtime hands the P on.
func oneProc(lookup func(string) (string, bool)) {
	if _, set := lookup("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
}

// run is the command line; it returns the exit status: 0 after a clean
// shutdown, 1 when the agent failed, 2 for a usage or configuration error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "edge-agent %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "the configuration file (YAML)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *path == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, "edge-agent run: --config FILE is required\n", usage)
			return 2
		}
		cfg, err := LoadConfig(*path, os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "edge-agent: %v\n", err)
			return 2
		}
		log := newLogger(cfg.Log, stderr)
		oneProc(os.LookupEnv)
		if err := runAgent(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("agent stopped", "err", err)
			return 1
		}
		log.Info("agent stopped")
		return 0
	case "nmea-decode":
		return nmeaDecode(ctx, args[1:], os.Stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stdout, stderr)
	case "outbox":
		return outboxCmd(ctx, args[1:], stdout, stderr)
	case "obd-probe":
		return obdProbe(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "edge-agent: unknown command %q\n%s", args[0], usage)
	return 2
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo // Validate has checked it
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
