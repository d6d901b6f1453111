package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
)

const obdProbeUsage = `usage: edge-agent obd-probe --port URL [--samples N] [--timeout D] [--pids 0C,0D]

Runs an ELM327 session on the adapter at URL (a device path, serial:///dev/x?baud=38400
or tcp://host:port) and prints one JSON document: the adapter and its measured latency
(the timeouts are scaled to it), the protocol, the voltage (or "supply": "missing" when
the adapter reads 0.0V), whether a vehicle answered ("vehicle": answered, none,
bus_fault), the VIN, the supported PIDs, the stored trouble codes, N rounds of samples
of the supported PIDs (or of --pids), each a value or the error the adapter gave
instead, and "errors": each step that failed. The document is always printed.
Exit status: 0 when a vehicle answered, 1 when the port, the adapter or the vehicle
did not (stderr says which: a bus fault is not an absent vehicle), 2 for a usage error.

`

// obdProbe is the installer's tool: `edge-agent obd-probe --port URL
// [--samples N]`. It returns the exit status.
func obdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("obd-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, obdProbeUsage); fs.PrintDefaults() }
	port := fs.String("port", "", "the adapter's device path or URL")
	samples := fs.Int("samples", 1, "rounds over the supported PIDs")
	timeout := fs.Duration("timeout", obd.DefaultTimeout, "per adapter command, before the adapter's latency is added")
	pidList := fs.String("pids", "", "comma-separated PIDs to sample (default: every supported one)")
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
	var pids []byte
	for p := range strings.SplitSeq(*pidList, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := obd.ParsePID(p)
		if err != nil {
			fmt.Fprintf(stderr, "edge-agent obd-probe: --pids: %v\n", err)
			return 2
		}
		pids = append(pids, pid)
	}
	dev, err := serial.Parse(*port)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent obd-probe: --port: %v\n", err)
		return 2
	}
	report, err := probe(ctx, dev, obd.ProbeOptions{Rounds: *samples, Timeout: *timeout, PIDs: pids})
	if jerr := json.NewEncoder(stdout).Encode(report); jerr != nil {
		fmt.Fprintf(stderr, "edge-agent obd-probe: %v\n", jerr)
		return 1
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, obd.ErrBusFault):
		fmt.Fprintf(stderr, "edge-agent obd-probe: %s: bus fault, not an absent vehicle: check the wiring and the bus (%v)\n", *port, err)
	default:
		fmt.Fprintf(stderr, "edge-agent obd-probe: %s: %v\n", *port, err)
	}
	return 1
}

// probe opens the device and runs the probe on it; a device that cannot be
// opened gives a report that says so.
func probe(ctx context.Context, dev edge.Device, o obd.ProbeOptions) (*obd.Report, error) {
	rwc, err := dev.Open(ctx)
	if err != nil {
		r := obd.NewReport()
		r.Fail("open", err)
		return r, err
	}
	defer rwc.Close()
	stop := context.AfterFunc(ctx, func() { rwc.Close() }) // unblock a read on SIGINT
	defer stop()
	return obd.Probe(ctx, rwc, o)
}
