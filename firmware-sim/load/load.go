// Package load runs many virtual agents in one process: each drives a
// vehicle model, turns its state into position (and OBD) records at a set
// rate, keeps them in an in-memory edge.Outbox (edge/memory) and publishes
// them with the agent's own sending policy (edge/uplink), connection
// (edge/mqtt) and encoding (shared/telemetry), one MQTT connection per
// vehicle. It measures the rate it achieved and the CPU it
// took, for load tests of the broker and the cloud.
package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Config says how many virtual agents publish what, where, for how long.
type Config struct {
	Vehicles  int
	Rate      float64       // positions per second per vehicle
	Duration  time.Duration // wall time; the vehicles drive in real time
	MQTT      string        // broker URL, tcp://host:port
	Namespace telemetry.Namespace
	IDPrefix  string // vehicle ids are IDPrefix + 0001, 0002, ...
	Seed      uint64
	Route     *firmwaresim.Route
	// OBDPIDs are Mode 01 PIDs sampled with every position (0x0C rpm, 0x0D
	// speed, 0x05 coolant, 0x2F fuel, 0x42 voltage); none by default.
	OBDPIDs []byte
	// MinBatchAge, Inflight and AckTimeout are the uplink's (defaults 0, 8
	// and 30s, as the agent's).
	MinBatchAge time.Duration
	Inflight    int
	AckTimeout  time.Duration
	// NoDelay sends each batch without waiting for an ack of the previous
	// one. Without a cloud acknowledging, an agent otherwise publishes its
	// first record and then gathers the rest until an ack that never comes;
	// to load the broker alone, set it and raise Inflight and AckTimeout
	// above what the run needs.
	NoDelay bool
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result is what a load run achieved.
type Result struct {
	Vehicles  int
	Elapsed   time.Duration // wall time from the first record to the end
	Ticks     uint64        // sample instants, all agents: each makes a position (with a fix) and the OBD samples
	Generated uint64        // records made
	Sent      uint64        // records published, resends included
	Batches   uint64        // batches published
	PubAcks   uint64        // batches the broker acknowledged (PUBACK)
	Acked     uint64        // records the cloud acknowledged (down/ack)
	Dropped   uint64        // records dropped by a full in-memory outbox
	Connected int           // agents connected to the broker at the end
	CPU       time.Duration // user + system CPU time of the process during the run
}

// Rate returns the records published per second of wall time, resends
// included.
func (r Result) Rate() float64 { return perSecond(r.Sent, r.Elapsed) }

// TickRate returns the sample instants per second of wall time: the rate the
// vehicles were driven at, whether or not each instant had a fix.
func (r Result) TickRate() float64 { return perSecond(r.Ticks, r.Elapsed) }

// CPUPerSecond returns the CPU seconds used per wall second (1 = one core).
func (r Result) CPUPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Elapsed.Seconds()
}

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%d virtual agents, %v: %d sample instants, %d records made, %d published (%.0f/s, resends included) in %d batches (%d PUBACKed), %d acked by the cloud, %d dropped, %d connected at the end; CPU %.2f s per second",
		r.Vehicles, r.Elapsed.Round(time.Millisecond), r.Ticks, r.Generated, r.Sent, r.Rate(), r.Batches, r.PubAcks, r.Acked, r.Dropped, r.Connected, r.CPUPerSecond())
}

// Validate checks cfg and names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Vehicles < 1 || c.Vehicles > 100000:
		return fmt.Errorf("vehicles %d: want 1 to 100000", c.Vehicles)
	case !(c.Rate > 0 && c.Rate <= 25):
		return fmt.Errorf("rate %v: want more than 0 and at most 25 Hz", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v: want more than 0", c.Duration)
	case c.Route == nil:
		return errors.New("no route")
	}
	if err := c.Namespace.Valid(); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if err := telemetry.ValidVehicleID(c.id(c.Vehicles - 1)); err != nil {
		return fmt.Errorf("id prefix %q: %w", c.IDPrefix, err)
	}
	for _, p := range c.OBDPIDs {
		if _, ok := obdValues[p]; !ok {
			return fmt.Errorf("obd pid %02X: load mode samples 0C, 0D, 05, 2F and 42", p)
		}
	}
	return nil
}

func (c Config) id(i int) string { return fmt.Sprintf("%s%04d", c.IDPrefix, i+1) }

// outboxCapacity bounds each virtual agent's outbox: past it the oldest
// records are dropped (and counted), so that a run without a cloud to
// acknowledge does not grow without bound.
const outboxCapacity = 100000

// agent is one virtual agent.
type agent struct {
	id       string
	vehicle  *firmwaresim.Vehicle
	outbox   *memory.Outbox
	sender   *uplink.Sender
	uplink   *mqtt.Uplink
	counters *edge.Counters
	ticks    uint64 // sample instants; written by generate alone, read after it returns
}

// Run runs the agents for cfg.Duration (or until ctx is done) and returns
// what they achieved. It returns an error only for a bad configuration or a
// failing outbox; broker trouble shows in the result (few records published,
// agents not connected) and in the log.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("load: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := now().UTC().Truncate(10 * time.Millisecond)
	agents := make([]*agent, cfg.Vehicles)
	for i := range agents {
		a := &agent{id: cfg.id(i), counters: new(edge.Counters)}
		seed := firmwaresim.VehicleSeed(cfg.Seed, i)
		v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: cfg.Route, Seed: seed, Start: start})
		if err != nil {
			return Result{}, fmt.Errorf("load: %w", err)
		}
		a.vehicle = v
		a.outbox = memory.NewOutbox(seed, outboxCapacity)
		a.sender, err = uplink.New(uplink.Config{VehicleID: a.id, MinBatchAge: cfg.MinBatchAge, Inflight: cfg.Inflight,
			AckTimeout: cfg.AckTimeout, NoDelay: cfg.NoDelay}, a.outbox, log.With("vehicle", a.id), a.counters)
		if err != nil {
			return Result{}, fmt.Errorf("load: %w", err)
		}
		a.uplink, err = mqtt.New(mqtt.Config{URL: cfg.MQTT, Namespace: cfg.Namespace, ClientID: "fleetgate-load-" + a.id,
			Status: uplink.StatusInfo{AgentVersion: "firmware-sim load"}}, a.id, a.sender, log.With("vehicle", a.id), a.counters)
		if err != nil {
			return Result{}, fmt.Errorf("load: %w", err)
		}
		agents[i] = a
	}

	cpu0 := cpuTime()
	wall0 := now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	upCtx, stopUplinks := context.WithCancel(context.Background())
	var ups sync.WaitGroup
	for _, a := range agents {
		ups.Add(1)
		go func() {
			defer ups.Done()
			if err := a.uplink.Run(upCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("uplink stopped", "vehicle", a.id, "err", err)
			}
		}()
	}
	g, gctx := errgroup.WithContext(runCtx)
	period := time.Duration(float64(time.Second) / cfg.Rate)
	for i, a := range agents {
		// Spread the agents over the period, as real vehicles are.
		offset := time.Duration(int64(period) * int64(i) / int64(len(agents)))
		g.Go(func() error { return a.generate(gctx, start, period, offset, cfg.OBDPIDs, now) })
	}
	err := g.Wait()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil
	}
	res := Result{Vehicles: len(agents), Elapsed: now().Sub(wall0)}
	for _, a := range agents {
		if a.uplink.Connected() {
			res.Connected++
		}
	}
	stopUplinks()
	ups.Wait()
	res.CPU = cpuTime() - cpu0
	for _, a := range agents {
		st, err := a.outbox.Stats(context.Background())
		if err != nil {
			return res, err
		}
		res.Ticks += a.ticks
		res.Generated += a.outbox.Appended()
		res.Dropped += st.Dropped
		c := a.counters.Snapshot()
		res.Sent += c["uplink.records_sent"]
		res.Batches += c["uplink.batches"]
		res.PubAcks += c["uplink.pubacks"]
		res.Acked += c["uplink.records_acked"]
	}
	return res, err
}

// generate appends a record set every period, from offset on, until ctx is
// done.
func (a *agent) generate(ctx context.Context, start time.Time, period, offset time.Duration, pids []byte, now func() time.Time) error {
	t := time.NewTimer(offset)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		at := now().UTC()
		s := a.vehicle.AdvanceTo(at)
		a.ticks++
		var recs []edge.Record
		if s.FixValid { // no fix in a tunnel: no position, as the agent
			recs = append(recs, edge.PositionRecord(Position(s)))
		}
		for _, p := range pids {
			recs = append(recs, edge.OBDRecord(telemetry.OBDSample{UnixMs: s.Time.UnixMilli(), PID: 0x0100 | uint16(p), Value: obdValues[p](s)}))
		}
		if len(recs) > 0 {
			if err := a.outbox.Append(ctx, recs); err != nil {
				return fmt.Errorf("vehicle %s: %w", a.id, err)
			}
			a.sender.Notify()
		}
		next := start.Add(offset).Add(period * time.Duration(at.Sub(start.Add(offset))/period+1))
		t.Reset(max(0, next.Sub(now())))
	}
}

// Position turns a model state into the position record an agent would
// make of the receiver's fix: the units and rounding of the wire.
func Position(s firmwaresim.State) telemetry.Position {
	p := telemetry.Position{
		UnixMs: s.Time.UnixMilli(), LatE7: telemetry.E7(s.Lat), LonE7: telemetry.E7(s.Lon),
		Has:   telemetry.HasAlt | telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasMode | telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP | telemetry.HasVDOP | telemetry.HasPDOP,
		AltCm: telemetry.Scaled(s.AltM, 100), SpeedMmps: telemetry.Scaled(s.SpeedMps, 1000), CourseCdeg: telemetry.Scaled(s.CourseDeg, 100) % 36000,
		Mode: telemetry.Mode3D, Quality: 1, SatsUsed: int32(s.Sats),
		HDOPc: telemetry.Scaled(s.HDOP, 100), VDOPc: telemetry.Scaled(s.VDOP, 100), PDOPc: telemetry.Scaled(s.PDOP, 100),
	}
	return p
}

// obdValues are the Mode 01 values load mode samples, rounded as SAE J1979
// encodes them.
var obdValues = map[byte]func(firmwaresim.State) float64{
	0x0C: func(s firmwaresim.State) float64 { return math.Round(s.RPM*4) / 4 },
	0x0D: func(s firmwaresim.State) float64 { return math.Round(s.SpeedMps * 3.6) },
	0x05: func(s firmwaresim.State) float64 { return math.Round(s.CoolantC) },
	0x2F: func(s firmwaresim.State) float64 { return math.Round(s.FuelPct*2.55) / 2.55 },
	0x42: func(s firmwaresim.State) float64 { return math.Round(s.BatteryV*1000) / 1000 },
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
