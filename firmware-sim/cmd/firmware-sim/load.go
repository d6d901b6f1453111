package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/firmware-sim/load"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func loadCmd(args []string, stdout, stderr io.Writer) int {
	var (
		cfg       = load.Config{Vehicles: 100, Rate: 1, Duration: time.Minute, MQTT: "tcp://127.0.0.1:1883", IDPrefix: "load-", Seed: 1}
		namespace = string(telemetry.DefaultNamespace)
		route     = "monaco-loop"
		pids      string
	)
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Vehicles, "vehicles", cfg.Vehicles, "virtual agents, each with its own MQTT connection; ids <id-prefix>0001, ...")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "positions per second per vehicle")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish (wall time)")
	fs.StringVar(&cfg.MQTT, "mqtt", cfg.MQTT, "broker URL")
	fs.StringVar(&namespace, "namespace", namespace, "topic root")
	fs.StringVar(&cfg.IDPrefix, "id-prefix", cfg.IDPrefix, "vehicle id prefix")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the drives")
	fs.StringVar(&route, "route", route, "built-in route, or a .gpx or .geojson file")
	fs.StringVar(&pids, "obd-pids", pids, "Mode 01 PIDs sampled with every position, e.g. 0C,0D (of 0C, 0D, 05, 2F, 42)")
	fs.DurationVar(&cfg.MinBatchAge, "min-batch-age", uplink.DefaultMinBatchAge, "how long a partial batch waits at least (the agent's uplink.min_batch_age)")
	fs.IntVar(&cfg.Inflight, "inflight", uplink.DefaultInflight, "batches in flight per agent before it waits for the cloud's ack")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", uplink.DefaultAckTimeout, "send unacknowledged records again after this")
	fs.BoolVar(&cfg.NoDelay, "no-delay", false, "send each batch without waiting for the ack of the previous one (for a broker alone)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: firmware-sim load [flags]

Publishes telemetry straight to MQTT as many virtual agents, with the agent's
own uplink (edge/uplink, edge/mqtt) and encoding (shared/telemetry): each
vehicle drives its route in real time, its positions (and OBD samples) go
into an in-memory outbox, and its uplink publishes batches (on
<namespace>/<id>/up/batch, or <namespace>/<id> once the cloud says it reads
protocol version 2) and deletes them on the cloud's acks. At the end it
prints the rate achieved and the CPU used.

Against a cloud, keep --inflight, --ack-timeout and --min-batch-age as the
agent has them. Against a broker alone nobody acknowledges: an agent sends
its first record and then waits for an ack; add --no-delay and raise the
window and the timeout (--no-delay --inflight 1000000 --ack-timeout 24h).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args, stdout, 0); done {
		return code
	}
	cfg.Namespace = telemetry.Namespace(namespace)
	r, err := scenario.LoadRoute(route, "")
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim load: --route: %v\n", err)
		return 2
	}
	cfg.Route = r
	for _, p := range strings.FieldsFunc(pids, func(c rune) bool { return c == ',' || c == ' ' }) {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			fmt.Fprintf(stderr, "firmware-sim load: --obd-pids %q: want hex PIDs such as 0C,0D\n", pids)
			return 2
		}
		cfg.OBDPIDs = append(cfg.OBDPIDs, byte(v))
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "firmware-sim load: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "firmware-sim load: %d virtual agents at %g Hz for %v to %s (%s)\n", cfg.Vehicles, cfg.Rate, cfg.Duration, cfg.MQTT, cfg.Namespace)
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim load: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, res)
	fmt.Fprintf(stdout, "rate achieved: %.1f sample instants/s of %.1f asked, %.1f records/s published (no position without a fix); CPU: %.3f s per second\n",
		res.TickRate(), float64(cfg.Vehicles)*cfg.Rate, res.Rate(), res.CPUPerSecond())
	return 0
}
