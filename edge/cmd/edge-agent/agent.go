package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// OutboxFile is the outbox's name inside data_dir.
const OutboxFile = "outbox.db"

// HTTPAddrFile, inside data_dir, holds the address of the running agent's
// HTTP endpoint.
const HTTPAddrFile = "agent.http"

// system is what the agent asks of the machine it runs on; tests inject
// their own.
type system struct {
	Now    func() time.Time     // the system clock
	Synced func() (bool, error) // the kernel's say on whether it is synchronised
}

// realSystem is the machine's clock and kernel.
var realSystem = system{Now: time.Now, Synced: kernelSynced}

// runAgent wires the agent from cfg and runs it until ctx is done: sources →
// collector (group commit) → bbolt outbox → MQTT uplink, plus the HTTP
// endpoint. A failing source is logged by its loop and retried; the agent
// stops only when ctx is done or a part cannot go on (the outbox fails, a
// listener cannot bind).
func runAgent(ctx context.Context, cfg Config, log *slog.Logger) error {
	return runAgentOn(ctx, cfg, log, realSystem)
}

// runAgentOn is runAgent on sys.
func runAgentOn(ctx context.Context, cfg Config, log *slog.Logger, sys system) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	outbox, err := bolt.Open(filepath.Join(cfg.DataDir, OutboxFile), &bolt.Options{
		MaxBytes: int64(cfg.Outbox.MaxBytes), MaxAge: cfg.Outbox.MaxAge,
	})
	if err != nil {
		return err
	}
	defer outbox.Close()
	if q := outbox.Quarantined(); q != "" {
		log.Warn("outbox file was corrupt; moved aside and started a new one", "moved_to", q)
	}
	counters := new(edge.Counters)
	var clock *edge.Clock
	if cfg.Clock.FromGNSS() {
		clock = &edge.Clock{Now: sys.Now, Synced: sys.Synced, MaxSkew: cfg.Clock.MaxSkew, Counters: counters}
	}
	tlsConf, err := cfg.TLS()
	if err != nil {
		return err
	}
	sources, err := buildSources(cfg, log, counters, clock)
	if err != nil {
		return err
	}
	adapter, _ := sources["obd"].(edge.AdapterReporter)
	minAge := cfg.Uplink.EffectiveMinBatchAge()
	sender, err := uplink.New(cfg.SenderConfig(), outbox, log.With("part", "uplink"), counters)
	if err != nil {
		return err
	}
	commander := &edge.Commander{Log: outbox, Logger: log.With("part", "commands"),
		SetReportInterval: sender.SetMinBatchAge, Settings: outbox, ConfiguredReportInterval: minAge}
	if s, ok := sources["obd"].(edge.PIDSetter); ok {
		commander.PIDs = s
	}
	if s, ok := sources["obd"].(edge.DTCReader); ok {
		commander.DTCs = s
	}
	if cfg.Uplink.BatchMaxAge != 0 {
		log.Warn("uplink.batch_max_age is the old name of uplink.min_batch_age; rename it", "value", cfg.Uplink.BatchMaxAge)
	}
	if d, ok, err := commander.RestoreReportInterval(ctx); err != nil {
		log.Warn("the commanded report interval could not be restored; using the configured one", "err", err)
	} else if ok {
		log.Info("report interval commanded by the cloud restored", "min_batch_age", d, "configured", minAge)
	}
	fix, _ := sources["gps"].(edge.FixReporter)
	mc := cfg.ConnConfig(tlsConf)
	mc.Status = uplink.StatusInfo{AgentVersion: version, Started: time.Now(), Fix: fix,
		Report: func(s *telemetrypb.Status) { report(s, clock, outbox, adapter) }}
	mc.Commands = commander.Run
	up, err := mqtt.New(mc, cfg.VehicleID, sender, log.With("part", "uplink"), counters)
	if err != nil {
		return err
	}
	commander.ReportStatus = up.ReportStatus
	st, err := outbox.Stats(ctx)
	if err != nil {
		return err
	}
	log.Info("agent starting", "version", version, "vehicle_id", cfg.VehicleID,
		"stream_id", fmt.Sprintf("%016x", st.StreamID), "next_seq", st.NextSeq, "outbox_depth", st.Depth)

	records := make(chan edge.Record, 1024)
	records <- edge.EventRecord(telemetry.Event{Type: telemetry.EventAgentStarted, Detail: version}).Stamped(clock.Stamp(sys.Now()))
	collector := &edge.Collector{
		Outbox:        outbox,
		FlushInterval: cfg.Outbox.FlushInterval,
		MaxRecords:    cfg.Uplink.BatchMaxRecords,
		Logger:        log.With("part", "collector"),
		Counters:      counters,
		Clock:         clock,
		OnCommit:      func([]edge.Record) { sender.Notify() },
	}

	g, gctx := errgroup.WithContext(ctx)
	// The collector outlives the sources so that their last records are
	// stored: it stops once they all have.
	collCtx, stopCollector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCollector()
	srcs, sctx := errgroup.WithContext(gctx)
	for name, s := range sources {
		srcs.Go(func() error {
			if err := s.Run(sctx, records); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s source: %w", name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		err := srcs.Wait()
		stopCollector()
		return err
	})
	g.Go(func() error {
		err := collector.Run(collCtx, records)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	g.Go(func() error { return up.Run(gctx) })
	if cfg.HTTP.Listen != "" {
		l, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		log.Info("http listening", "addr", l.Addr().String())
		// `edge-agent outbox stats` finds the running agent here: the
		// outbox file is locked while the agent has it open.
		addrFile := filepath.Join(cfg.DataDir, HTTPAddrFile)
		if err := os.WriteFile(addrFile, []byte(l.Addr().String()+"\n"), 0o600); err != nil {
			l.Close()
			return fmt.Errorf("http address file: %w", err)
		}
		defer os.Remove(addrFile)
		h := &agentState{outbox: outbox, up: up, sender: sender, counters: counters, clock: clock, collector: collector, adapter: adapter, now: sys.Now}
		srv := &http.Server{Handler: newHTTPHandler(h), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	err = g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// buildSources makes the GPS source and, with obd.port set, the OBD one.
func buildSources(cfg Config, log *slog.Logger, counters *edge.Counters, clock *edge.Clock) (map[string]edge.Source, error) {
	backoff := edge.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}
	dev, err := serial.Parse(cfg.GPS.Port)
	if err != nil {
		return nil, fmt.Errorf("gps.port: %w", err)
	}
	out := map[string]edge.Source{
		"gps": &gps.Source{Device: dev, Bauds: cfg.GPS.Bauds, Talkers: cfg.GPS.Talkers, Clock: clock, Backoff: backoff,
			Logger: log.With("part", "gps"), Counters: counters},
	}
	if cfg.OBD.Port != "" {
		dev, err := serial.Parse(cfg.OBD.Port)
		if err != nil {
			return nil, fmt.Errorf("obd.port: %w", err)
		}
		src := &obd.Source{Device: dev, Backoff: backoff, Logger: log.With("part", "obd"), Counters: counters, Clock: clock}
		if err := cfg.OBD.Apply(src); err != nil {
			return nil, err
		}
		out["obd"] = src
	}
	return out, nil
}

// report adds the clock's state, the outbox's trouble and the OBD adapter's
// state to a status report.
func report(s *telemetrypb.Status, clock *edge.Clock, outbox edge.Outbox, adapter edge.AdapterReporter) {
	if clock != nil {
		cs := clock.State()
		s.ClockSource = uint32(cs.Source) + 1
		if cs.OffsetKnown {
			s.ClockOffsetMs = cs.Offset.Milliseconds()
		}
	}
	if st, err := outbox.Stats(context.Background()); err == nil {
		s.OutboxTrouble = st.Trouble
	}
	if adapter != nil {
		s.ObdState = adapter.AdapterState().String()
	}
}
