package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/proxy"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
	"github.com/fleetgate/fleetgate/firmware-sim/transport"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// port is a device's end of its link: a transport.PTY or a transport.TCP.
type port interface {
	io.ReadWriter
	Addr() string
	Link() string
	Baud() (int, bool)
	Unplug() error
	Replug() error
	Close() error
}

// faultSetter is the ELM327 emulator's fault hook: the next n
// OBD requests (n ≤ 0: until SetFault("", 0)) get reply instead of data.
type faultSetter interface {
	SetFault(reply string, n int)
}

// counters are what the progress line shows.
type counters struct {
	fixes, samples, faults atomic.Int64
}

// vehicle is one simulated vehicle, its ports and its proxy.
type vehicle struct {
	index    int
	seed     uint64
	spec     scenario.Vehicle
	id       string
	faults   []firmwaresim.Fault
	gpsPort  port
	obdPort  port
	obdW     *lockedWriter // the adapter's replies and injected garbage, one at a time
	proxy    *proxy.Proxy
	receiver *gps.Receiver
	ecu      *ecu
	ended    atomic.Bool // the drive reached its end and its end line is written
	// boundaries are the trip boundaries not yet in the truth; model is
	// the copy of the vehicle model that says where each one happens.
	boundaries []firmwaresim.Boundary
	model      *firmwaresim.Vehicle
	close      func()

	mu       sync.Mutex
	adapter  *elm327.Adapter
	obdFault string // reply in force for a duration, re-applied to a replugged adapter
}

// ecu is the engine computer behind a vehicle's ELM327: its own copy of the
// vehicle model, advanced to the simulated time of each request.
type ecu struct {
	v     *firmwaresim.Vehicle
	clock firmwaresim.Clock
}

// State returns the vehicle's state now.
func (e *ecu) State() firmwaresim.State { return e.v.AdvanceTo(e.clock.Now()) }

// ClearDTCs clears the stored trouble codes (Mode 04).
func (e *ecu) ClearDTCs() { e.v.ClearDTCs() }

// run opens the ports, prints them and "ready", drives until ctx is done and
// closes everything. It returns nil when interrupted, an error when a port
// or the truth fails.
func run(ctx context.Context, cfg Config, sc *scenario.Scenario, stdout io.Writer, stderr *progress, log *slog.Logger) (err error) {
	start, err := resolveStart(sc.Start, time.Now(), "start")
	if err != nil {
		return err
	}
	var until time.Time
	if sc.Duration > 0 {
		until = start.Add(sc.Duration)
	}
	sink, err := openTruth(cfg.Truth, cfg.TruthDir, sc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sink.close()) }()
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
	for i, spec := range sc.Vehicles {
		v, err := openVehicle(i, spec, cfg.LinkDir, sc.Uplink)
		if err != nil {
			return err
		}
		v.faults = sc.VehicleFaults(spec.ID)
		vs = append(vs, v)
		printPort(stdout, v.id, "gps", v.gpsPort)
		printPort(stdout, v.id, "obd", v.obdPort)
		if v.proxy != nil {
			fmt.Fprintf(stdout, "%s uplink %s -> %s\n", v.id, v.proxy.Addr(), v.proxy.Upstream())
		}
	}

	clock := newScaledClock(start, sc.Speed)
	var count counters
	for _, v := range vs {
		if err := v.build(sc, start, until, clock, sink, &count); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "ready")
	log.Info("simulation started", "scenario", sc.Name, "vehicles", len(vs), "seed", sc.Seed,
		"start", start.Format(time.RFC3339Nano), "speed", sc.Speed, "duration", sc.Duration, "faults", len(sc.Faults))

	g, gctx := errgroup.WithContext(ctx)
	for _, v := range vs {
		g.Go(func() error { return v.driveGPS(gctx, sink, until, &count, log) })
		g.Go(func() error { return discardInput(gctx, v.gpsPort) })
		g.Go(func() error { return v.serveOBD(gctx, sink, &count) })
		g.Go(func() error { return v.injectFaults(gctx, start, clock, log) })
	}
	for _, w := range sink.writers() {
		g.Go(func() error { return w.Run(gctx, time.Second) })
	}
	if stderr != nil {
		marks := 0
		for _, v := range vs {
			marks += len(firmwaresim.Timeline(v.faults))
		}
		g.Go(func() error {
			stderr.run(gctx, func() string { return progressLine(len(vs), &count, marks, start, clock, sc) })
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done() // interrupted, or something failed: unblock every port
		for _, v := range vs {
			v.close()
		}
		return nil
	})
	err = g.Wait()

	// Drives cut short end where simulated time stood.
	for _, v := range vs {
		if v.ended.Load() {
			continue
		}
		end := clock.Now()
		if !until.IsZero() && end.After(until) {
			end = until
		}
		err = errors.Join(err, sink.end(v.id, end))
	}
	log.Info("simulation stopped", "fixes", count.fixes.Load(), "obd_samples", count.samples.Load())
	return err
}

// openVehicle opens the vehicle's two ports and, with an upstream broker,
// its uplink proxy.
func openVehicle(i int, spec scenario.Vehicle, linkDir, uplink string) (*vehicle, error) {
	v := &vehicle{index: i, spec: spec, id: spec.ID}
	var closers []func() error
	v.close = sync.OnceFunc(func() {
		for _, c := range closers {
			_ = c() // closing on the way out; nothing left to report to
		}
	})
	open := func(kind string, p scenario.Port, baud int) (port, error) {
		if p.Transport == "tcp" {
			addr := p.Listen
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			return transport.ListenTCP(addr)
		}
		link := ""
		if linkDir != "" {
			link = filepath.Join(linkDir, spec.ID+"-"+kind)
		}
		return transport.OpenPTY(link, baud)
	}
	var err error
	if v.gpsPort, err = open("gps", spec.GPS.Port, spec.GPS.Baud); err != nil {
		return nil, fmt.Errorf("vehicle %s gps port: %w", spec.ID, err)
	}
	closers = append(closers, v.gpsPort.Close)
	if v.obdPort, err = open("obd", spec.OBD, 0); err != nil {
		v.close()
		return nil, fmt.Errorf("vehicle %s obd port: %w", spec.ID, err)
	}
	closers = append(closers, v.obdPort.Close)
	v.obdW = &lockedWriter{w: v.obdPort}
	if uplink != "" {
		if v.proxy, err = proxy.Listen("127.0.0.1:0", uplink); err != nil {
			v.close()
			return nil, fmt.Errorf("vehicle %s: %w", spec.ID, err)
		}
		closers = append(closers, v.proxy.Close)
	}
	return v, nil
}

// build makes the vehicle's two copies of the model, its receiver and its
// engine computer.
func (v *vehicle) build(sc *scenario.Scenario, start, until time.Time, clock firmwaresim.Clock, sink *truthSink, count *counters) error {
	seed := firmwaresim.VehicleSeed(sc.Seed, v.index)
	v.seed = seed
	halts, dtcs := firmwaresim.VehicleEvents(v.faults, start)
	for _, s := range v.spec.Stops {
		halts = append(halts, firmwaresim.Halt{At: start.Add(s.At), For: s.For, EngineOff: s.EngineOff})
	}
	slices.SortStableFunc(halts, func(a, b firmwaresim.Halt) int { return a.At.Compare(b.At) })
	vc := firmwaresim.Config{Route: v.spec.Route, Seed: seed, Start: start, Stop: until, Halts: halts, DTCs: dtcs, VIN: v.spec.VIN}
	gpsModel, err := firmwaresim.NewVehicle(vc)
	if err != nil {
		return fmt.Errorf("vehicle %s: %w", v.id, err)
	}
	obdModel, err := firmwaresim.NewVehicle(vc)
	if err != nil {
		return fmt.Errorf("vehicle %s: %w", v.id, err)
	}
	v.ecu = &ecu{v: obdModel, clock: clock}
	if v.model, err = firmwaresim.NewVehicle(vc); err != nil {
		return fmt.Errorf("vehicle %s: %w", v.id, err)
	}
	v.boundaries = vc.Boundaries()
	g := v.spec.GPS
	strict := g.StrictBaud || slices.ContainsFunc(v.faults, func(f firmwaresim.Fault) bool { return f.Kind == firmwaresim.FaultBaudChange })
	v.receiver = &gps.Receiver{Vehicle: gpsModel, Clock: clock, Rate: g.Rate, Format: g.Format, Baud: g.Baud, StrictBaud: strict, Noise: g.Noise,
		ColdStart: g.ColdStart, Seed: seed, Faults: v.faults, Until: until,
		OnFault: func(m firmwaresim.Mark) {
			count.faults.Add(1)
			sink.fault(faultLine(v.id, start, m))
		},
		OnEpoch: func(rep gps.Report) { v.writeBoundaries(sink, rep.Time) }}
	return nil
}

// writeBoundaries writes the ignition and stop lines of the boundaries up
// to upTo, with the model's position and distance at each (from the
// receiver's goroutine, in order with its lines). A failed write sticks in
// the sink and stops the simulation through run.
func (v *vehicle) writeBoundaries(sink *truthSink, upTo time.Time) {
	for len(v.boundaries) > 0 && !v.boundaries[0].At.After(upTo) {
		b := v.boundaries[0]
		v.boundaries = v.boundaries[1:]
		st := v.model.AdvanceTo(b.At)
		l := truth.Boundary{Vehicle: v.id, Time: b.At, Lat: st.Lat, Lon: st.Lon, DistanceM: st.DistanceM, EngineOff: b.EngineOff}
		switch b.Kind {
		case firmwaresim.IgnitionOn, firmwaresim.IgnitionOff:
			l.Kind, l.State = "ignition", map[firmwaresim.BoundaryKind]string{firmwaresim.IgnitionOn: "on", firmwaresim.IgnitionOff: "off"}[b.Kind]
		default:
			l.Kind, l.Phase = "stop", map[firmwaresim.BoundaryKind]string{firmwaresim.StopBegin: "begin", firmwaresim.StopEnd: "end"}[b.Kind]
		}
		sink.boundary(l)
	}
}

// faultLine is the truth line of a timeline mark.
func faultLine(id string, start time.Time, m firmwaresim.Mark) truth.Fault {
	f := m.Fault
	l := truth.Fault{Vehicle: id, Time: start.Add(m.At), Fault: string(f.Kind), Device: string(f.Device), Phase: string(m.Phase)}
	if m.Phase == firmwaresim.PhaseEnd {
		return l
	}
	l.Bytes, l.Baud, l.Count, l.Offset, l.Reply, l.Code = f.Bytes, f.Baud, f.Count, f.Offset, replyOf(f), f.Code
	if end, ok := f.End(); ok {
		l.Until = start.Add(end)
	}
	return l
}

// replyOf returns the reply an OBD reply fault makes the adapter give.
func replyOf(f firmwaresim.Fault) string {
	switch f.Kind {
	case firmwaresim.FaultCANError:
		return "CAN ERROR"
	case firmwaresim.FaultBufferFull:
		return "BUFFER FULL"
	}
	return f.Reply
}

// garbageRNG is the random source of the OBD garbage injected at m: the same
// seed and timeline give the same bytes.
func garbageRNG(v *vehicle, m firmwaresim.Mark) *rand.Rand {
	return rand.New(rand.NewPCG(v.seed, uint64(m.At)))
}

func printPort(w io.Writer, id, kind string, p port) {
	if p.Link() != "" {
		fmt.Fprintf(w, "%s %s %s -> %s\n", id, kind, p.Addr(), p.Link())
		return
	}
	fmt.Fprintf(w, "%s %s %s\n", id, kind, p.Addr())
}

// driveGPS runs the receiver to the end of the drive and writes the end line.
func (v *vehicle) driveGPS(ctx context.Context, sink *truthSink, until time.Time, count *counters, log *slog.Logger) error {
	fixes := 0
	var werr error
	err := v.receiver.Run(ctx, v.gpsPort, func(f gps.Fix) {
		fixes++
		count.fixes.Add(1)
		if werr == nil {
			werr = sink.fix(truth.Fix{Vehicle: v.id, Time: f.Time, Lat: f.Lat, Lon: f.Lon, AltM: f.AltM, SpeedMps: f.SpeedMps,
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
	v.writeBoundaries(sink, until) // the engine stops as the drive ends
	if err := sink.end(v.id, until); err != nil {
		return err
	}
	v.ended.Store(true)
	return nil
}

// newAdapter powers up an ELM327 in front of the vehicle's engine computer,
// with the reply fault in force, if any.
func (v *vehicle) newAdapter() *elm327.Adapter {
	a := elm327.NewAdapter(v.ecu)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.adapter = a
	if fs, ok := any(a).(faultSetter); ok && v.obdFault != "" {
		fs.SetFault(v.obdFault, 0)
	}
	return a
}

// serveOBD answers the ELM327 port until it is closed. An unplugged adapter
// loses power: a new one answers once it is plugged back in.
func (v *vehicle) serveOBD(ctx context.Context, sink *truthSink, count *counters) error {
	for {
		var werr error
		err := v.newAdapter().Serve(ctx, readWriter{v.obdPort, v.obdW}, func(s elm327.Sample) {
			count.samples.Add(1)
			if werr == nil {
				// A failed write sticks in the sink; its run loop stops the simulation.
				werr = sink.obd(truth.OBD{Vehicle: v.id, Time: s.Time, Mode: s.Mode, PID: s.PID, Value: s.Value, Unit: s.Unit, Reply: s.Reply})
			}
		})
		switch {
		case werr != nil:
			return werr
		case errors.Is(err, transport.ErrUnplugged) && ctx.Err() == nil:
			continue
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("vehicle %s: %w", v.id, err)
		}
		return nil
	}
}

// injectFaults carries out, each at its time, the faults of the vehicle's
// timeline that act on the OBD port, the adapter and the uplink. (The GPS
// receiver carries out its own, the model its own; the truth lines of all
// of them come from the receiver, in order with the fixes.)
func (v *vehicle) injectFaults(ctx context.Context, start time.Time, clock firmwaresim.Clock, log *slog.Logger) error {
	warned := false
	for _, m := range firmwaresim.Timeline(v.faults) {
		f := m.Fault
		if f.Device != firmwaresim.DeviceOBD && f.Device != firmwaresim.DeviceUplink {
			continue
		}
		if err := clock.SleepUntil(ctx, start.Add(m.At)); err != nil {
			return nil // interrupted
		}
		begin := m.Phase != firmwaresim.PhaseEnd
		var err error
		switch f.Kind {
		case firmwaresim.FaultUnplug:
			if begin {
				// Between the replies: none is written after the port was
				// drained and before it is gone, so every reply in the truth
				// could be read.
				v.obdW.mu.Lock()
				err = v.obdPort.Unplug()
				v.obdW.mu.Unlock()
			} else {
				err = v.obdPort.Replug()
			}
		case firmwaresim.FaultGarbage:
			n := f.Bytes
			if n <= 0 {
				n = 64
			}
			if _, werr := v.obdW.Write(gps.Garbage(garbageRNG(v, m), n)); werr != nil && !errors.Is(werr, firmwaresim.ErrLinkDown) {
				err = werr
			}
		case firmwaresim.FaultCANError, firmwaresim.FaultBufferFull, firmwaresim.FaultOBDReply:
			if !v.setFault(replyOf(f), f.Count, begin) && !warned {
				log.Warn("this build's ELM327 emulator cannot inject replies (no SetFault); the fault is in the truth only", "vehicle", v.id, "fault", f.Kind)
				warned = true
			}
		case firmwaresim.FaultUplinkDown:
			if v.proxy != nil {
				v.proxy.SetDown(begin)
			}
		}
		if err != nil {
			return fmt.Errorf("vehicle %s: %s: %w", v.id, f, err)
		}
		log.Debug("fault", "vehicle", v.id, "fault", f.Kind, "device", f.Device, "phase", m.Phase)
	}
	return nil
}

// setFault sets or ends a reply fault on the current adapter (and, for one
// that lasts, on any adapter powered up while it does). It reports false when
// the adapter has no fault hook.
func (v *vehicle) setFault(reply string, n int, begin bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case !begin:
		v.obdFault, reply, n = "", "", 0
	case n == 0:
		v.obdFault = reply
	}
	fs, ok := any(v.adapter).(faultSetter)
	if ok {
		fs.SetFault(reply, n)
	}
	return ok
}

// discardInput reads and drops what clients write to a GPS port (a receiver
// ignores commands it does not know), so that their writes never block.
func discardInput(ctx context.Context, p port) error {
	buf := make([]byte, 512)
	for {
		_, err := p.Read(buf)
		switch {
		case ctx.Err() != nil || errors.Is(err, os.ErrClosed):
			return nil
		case errors.Is(err, transport.ErrUnplugged):
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", p.Addr(), err)
		}
	}
}

// lockedWriter lets the adapter's replies and injected garbage take turns.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// readWriter joins a reader and a writer.
type readWriter struct {
	io.Reader
	io.Writer
}
