package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// vehicle is one simulated vehicle and its two ports.
type vehicle struct {
	id       string
	gpsPort  *transport.PTY
	obdPort  *transport.PTY
	receiver *gps.Receiver
	adapter  *elm327.Adapter
	ended    atomic.Bool // the drive reached --duration and its end line is written
	close    func()
}

// ecu is the engine computer behind a vehicle's ELM327: its own copy of the
// vehicle model, advanced to the simulated time of each request.
type ecu struct {
	v     *firmwaresim.Vehicle
	clock firmwaresim.Clock
}

func (e ecu) State() firmwaresim.State { return e.v.AdvanceTo(e.clock.Now()) }

// run opens the ports, prints them and "ready", drives until ctx is done and
// closes everything. It returns nil when interrupted, an error when a port
// or the truth file fails.
func run(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) (err error) {
	route, err := firmwaresim.RouteByName(cfg.Route)
	if err != nil {
		return err
	}
	start, err := cfg.startTime(time.Now())
	if err != nil {
		return err
	}
	var until time.Time
	if cfg.Duration > 0 {
		until = start.Add(cfg.Duration)
	}

	var tw *truth.Writer
	if cfg.Truth != "" {
		f, err := os.Create(cfg.Truth)
		if err != nil {
			return fmt.Errorf("truth file: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("truth file: %w", cerr)
			}
		}()
		tw = truth.NewWriter(f)
	}
	if cfg.LinkDir != "" {
		if err := os.MkdirAll(cfg.LinkDir, 0o755); err != nil {
			return fmt.Errorf("link dir: %w", err)
		}
	}

	var vs []*vehicle
	defer func() {
		for _, v := range vs {
			v.close()
		}
	}()
	for i := range cfg.Vehicles {
		v, err := openVehicle(cfg.vehicleID(i), cfg.LinkDir)
		if err != nil {
			return err
		}
		vs = append(vs, v)
		printPort(stdout, v.id, "gps", v.gpsPort)
		printPort(stdout, v.id, "obd", v.obdPort)
	}

	clock := newScaledClock(start, cfg.Speed)
	for i, v := range vs {
		vc := firmwaresim.Config{Route: route, Seed: firmwaresim.VehicleSeed(cfg.Seed, i), Start: start, Stop: until}
		gpsModel, err := firmwaresim.NewVehicle(vc)
		if err != nil {
			return err
		}
		obdModel, err := firmwaresim.NewVehicle(vc)
		if err != nil {
			return err
		}
		v.receiver = &gps.Receiver{Vehicle: gpsModel, Clock: clock, Rate: cfg.Rate, Until: until}
		v.adapter = elm327.NewAdapter(ecu{v: obdModel, clock: clock})
	}
	fmt.Fprintln(stdout, "ready")
	log.Info("simulation started", "vehicles", len(vs), "route", route.Name, "seed", cfg.Seed,
		"start", start.Format(time.RFC3339Nano), "speed", cfg.Speed, "duration", cfg.Duration)

	g, gctx := errgroup.WithContext(ctx)
	for _, v := range vs {
		g.Go(func() error { return v.driveGPS(gctx, tw, until, log) })
		g.Go(func() error { return discardInput(gctx, v.gpsPort) })
		g.Go(func() error { return v.serveOBD(gctx, tw) })
	}
	if tw != nil {
		g.Go(func() error { return tw.Run(gctx, time.Second) })
	}
	g.Go(func() error {
		<-gctx.Done() // interrupted, or something failed: unblock every port
		for _, v := range vs {
			v.close()
		}
		return nil
	})
	err = g.Wait()

	if tw != nil {
		// Drives cut short end where simulated time stood.
		for _, v := range vs {
			if v.ended.Load() {
				continue
			}
			end := clock.Now()
			if !until.IsZero() && end.After(until) {
				end = until
			}
			err = errors.Join(err, tw.End(v.id, end))
		}
		err = errors.Join(err, tw.Flush())
	}
	log.Info("simulation stopped")
	return err
}

func openVehicle(id, linkDir string) (*vehicle, error) {
	link := func(kind string) string {
		if linkDir == "" {
			return ""
		}
		return filepath.Join(linkDir, id+"-"+kind)
	}
	gpsPort, err := transport.OpenPTY(link("gps"), 0)
	if err != nil {
		return nil, fmt.Errorf("vehicle %s gps port: %w", id, err)
	}
	obdPort, err := transport.OpenPTY(link("obd"), 0)
	if err != nil {
		gpsPort.Close()
		return nil, fmt.Errorf("vehicle %s obd port: %w", id, err)
	}
	v := &vehicle{id: id, gpsPort: gpsPort, obdPort: obdPort}
	v.close = sync.OnceFunc(func() {
		gpsPort.Close()
		obdPort.Close()
	})
	return v, nil
}

func printPort(w io.Writer, id, kind string, p *transport.PTY) {
	if p.Link() != "" {
		fmt.Fprintf(w, "%s %s %s -> %s\n", id, kind, p.Addr(), p.Link())
		return
	}
	fmt.Fprintf(w, "%s %s %s\n", id, kind, p.Addr())
}

// driveGPS runs the receiver to the end of the drive and writes the end line.
func (v *vehicle) driveGPS(ctx context.Context, tw *truth.Writer, until time.Time, log *slog.Logger) error {
	fixes := 0
	var werr error
	err := v.receiver.Run(ctx, v.gpsPort, func(f gps.Fix) {
		fixes++
		if tw != nil && werr == nil {
			werr = tw.Fix(truth.Fix{Vehicle: v.id, Time: f.Time, Lat: f.Lat, Lon: f.Lon, AltM: f.AltM, SpeedMps: f.SpeedMps,
				CourseDeg: f.CourseDeg, Quality: f.Quality, Sats: f.Sats, HDOP: f.HDOP})
		}
	})
	switch {
	case werr != nil:
		return werr
	case err != nil && ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("vehicle %s: %w", v.id, err)
	}
	log.Info("drive ended", "vehicle", v.id, "fixes", fixes, "time", until.Format(time.RFC3339Nano))
	if tw != nil {
		if err := tw.End(v.id, until); err != nil {
			return err
		}
	}
	v.ended.Store(true)
	return nil
}

// serveOBD answers the ELM327 port until it is closed.
func (v *vehicle) serveOBD(ctx context.Context, tw *truth.Writer) error {
	var werr error
	err := v.adapter.Serve(ctx, v.obdPort, func(s elm327.Sample) {
		if tw != nil && werr == nil {
			// A failed write sticks in tw; its Run loop stops the simulation.
			werr = tw.OBD(truth.OBD{Vehicle: v.id, Time: s.Time, Mode: s.Mode, PID: s.PID, Value: s.Value, Unit: s.Unit, Reply: s.Reply})
		}
	})
	switch {
	case werr != nil:
		return werr
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("vehicle %s: %w", v.id, err)
	}
	return nil
}

// discardInput reads and drops what clients write to a GPS port (a receiver
// ignores commands it does not know), so that their writes never block.
func discardInput(ctx context.Context, p *transport.PTY) error {
	if _, err := io.Copy(io.Discard, p); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read %s: %w", p.Addr(), err)
	}
	return nil
}
