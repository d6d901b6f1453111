package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
)

const obdProbeUsage = `usage: edge-agent obd-probe --port URL [--samples N] [--timeout D]

Runs an ELM327 session on the adapter at URL (a device path, serial:///dev/x?baud=38400
or tcp://host:port) and prints one JSON document: the adapter, the protocol, the
voltage, the VIN, the supported PIDs, the stored trouble codes and N rounds of samples
of the supported PIDs, each a value or the error the adapter gave instead.
Exit status: 0 when a vehicle answered, 1 when the adapter or the vehicle did not
(the document is still printed if the adapter answered), 2 for a usage error.

`

// obdProbe is the installer's tool: `edge-agent obd-probe --port URL
// [--samples N]`. It returns the exit status.
func obdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("obd-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, obdProbeUsage); fs.PrintDefaults() }
	port := fs.String("port", "", "the adapter's device path or URL")
	samples := fs.Int("samples", 1, "rounds over the supported PIDs")
	timeout := fs.Duration("timeout", obd.DefaultTimeout, "per adapter command")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *port == "" || fs.NArg() != 0 || *samples < 1 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	dev, err := serial.Parse(*port)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent obd-probe: --port: %v\n", err)
		return 2
	}
	rwc, err := dev.Open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent obd-probe: %v\n", err)
		return 1
	}
	defer rwc.Close()
	stop := context.AfterFunc(ctx, func() { rwc.Close() }) // unblock a read on SIGINT
	defer stop()
	report, err := obd.Probe(ctx, rwc, obd.ProbeOptions{Rounds: *samples, Timeout: *timeout})
	if report.Adapter != "" {
		if err := json.NewEncoder(stdout).Encode(report); err != nil {
			fmt.Fprintf(stderr, "edge-agent obd-probe: %v\n", err)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent obd-probe: %s: %v\n", *port, err)
		return 1
	}
	return 0
}
