package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/osrm"
	"github.com/fleetgate/fleetgate/cloud/postgres"
)

// maxVehiclesPerRound bounds one round of the trip job, so that a backlog
// of many vehicles does not starve the job's other work.
const maxVehiclesPerRound = 1000

// jobs are the background jobs over PostgreSQL that every replica runs:
// trip detection (under per-vehicle locks), map matching (under leases)
// and the data's life cycle (partitions, and retention under a lock, one
// replica at a time).
type jobs struct {
	cfg     JobsConfig
	db      *postgres.DB
	matcher *osrm.Client
	match   *cloud.MatchJob
	log     *slog.Logger
	metrics *jobMetrics
	// OnTripChanges, when set, is given what each trip round changed: the
	// hook for announcing trip starts and ends on a live stream.
	OnTripChanges func([]cloud.TripChange)
}

// newJobs builds the jobs from the configuration.
func newJobs(cfg *Config, db *postgres.DB, logger *slog.Logger) *jobs {
	m := osrm.NewClient(cfg.OSRMURL)
	m.Profile, m.MaxCoordinates, m.Timeout, m.UERE = cfg.Jobs.OSRMProfile, cfg.Jobs.OSRMMaxCoordinates, cfg.Jobs.OSRMTimeout, cfg.Jobs.OSRMUERE
	j := &jobs{cfg: cfg.Jobs, db: db, matcher: m, log: logger.With("component", "jobs"), metrics: newJobMetrics()}
	j.match = &cloud.MatchJob{Store: db, Matcher: m}
	j.metrics.circuitOpen = m.Open
	return j
}

// start runs the jobs in g until ctx is done.
func (j *jobs) start(g *errgroup.Group, ctx context.Context) {
	g.Go(func() error { return every(ctx, j.cfg.TripInterval, j.trips) })
	g.Go(func() error { return every(ctx, j.cfg.MatchInterval, j.matchTrips) })
	g.Go(func() error { return every(ctx, j.cfg.RetentionInterval, j.lifecycle) })
}

// every runs f at once and then every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, f func(context.Context)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// trips recomputes the trips of the vehicles whose records changed, round
// after round until none is left.
func (j *jobs) trips(ctx context.Context) {
	for ctx.Err() == nil {
		res, err := j.db.RecomputeTrips(ctx, j.cfg.Trip, maxVehiclesPerRound)
		j.metrics.vehicles.Add(float64(res.Vehicles))
		for _, c := range res.Changes {
			j.metrics.changes.WithLabelValues(string(c.Kind)).Inc()
			j.log.Debug("trip "+string(c.Kind), "vehicle", c.Trip.VehicleID, "trip", c.Trip.ID, "start", c.Trip.Start, "end", c.Trip.End, "open", c.Trip.Open)
		}
		if len(res.Changes) > 0 && j.OnTripChanges != nil {
			j.OnTripChanges(res.Changes)
		}
		if err != nil {
			j.fail("trips", err)
			return
		}
		if res.Vehicles < maxVehiclesPerRound {
			return
		}
	}
}

// matchTrips matches ended trips until none is due.
func (j *jobs) matchTrips(ctx context.Context) {
	for ctx.Err() == nil {
		st, err := j.match.RunOnce(ctx)
		j.metrics.matches.WithLabelValues(string(cloud.MatchMatched)).Add(float64(st.Matched))
		j.metrics.matches.WithLabelValues(string(cloud.MatchUnmatched)).Add(float64(st.Unmatched))
		j.metrics.matches.WithLabelValues(string(cloud.MatchFailed)).Add(float64(st.Failed))
		if err != nil {
			j.fail("match", err)
			return
		}
		if st.Unmatched > 0 {
			j.log.Warn("map matching unavailable; trips keep their raw track and are tried again later", "unmatched", st.Unmatched, "osrm", redact(j.matcher.URL))
		}
		if st.Matched+st.Unmatched+st.Failed == 0 || st.Unmatched > 0 {
			return
		}
	}
}

// lifecycle makes the partitions ahead (and for late data) and applies
// retention.
func (j *jobs) lifecycle(ctx context.Context) {
	if err := j.db.EnsurePartitions(ctx); err != nil {
		j.fail("partitions", err)
	}
	res, err := j.db.ApplyRetention(ctx, j.cfg.Retention)
	j.metrics.dropped.Add(float64(len(res.Dropped)))
	for table, n := range res.Deleted {
		j.metrics.deleted.WithLabelValues(table).Add(float64(n))
	}
	if err != nil {
		j.fail("retention", err)
	}
}

func (j *jobs) fail(job string, err error) {
	j.metrics.errors.WithLabelValues(job).Inc()
	if cloud.ErrorCode(err) == cloud.EUNAVAILABLE {
		j.log.Warn(job+" job failed; trying again next round", "err", err)
		return
	}
	j.log.Error(job+" job failed", "err", err)
}

// jobMetrics are the jobs' Prometheus metrics (cloud/README.md, Metrics).
type jobMetrics struct {
	vehicles    prometheus.Counter
	changes     *prometheus.CounterVec
	matches     *prometheus.CounterVec
	dropped     prometheus.Counter
	deleted     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	circuitOpen func() bool
	circuit     *prometheus.Desc
}

func newJobMetrics() *jobMetrics {
	m := &jobMetrics{
		vehicles: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetgate_trips_vehicles_recomputed_total",
			Help: "Vehicles whose trips the trip job recomputed (once per round with new records)."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetgate_trips_changes_total",
			Help: "Trips the trip job created, updated or deleted."}, []string{"kind"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetgate_trips_match_attempts_total",
			Help: "Map matching attempts by outcome: matched, unmatched (OSRM unavailable: retried later), failed (no road)."}, []string{"status"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetgate_retention_partitions_dropped_total",
			Help: "Partitions of positions and OBD samples dropped by retention."}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetgate_retention_rows_deleted_total",
			Help: "Rows deleted by retention, per table."}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetgate_jobs_errors_total",
			Help: "Background job rounds that failed, per job."}, []string{"job"}),
		circuit: prometheus.NewDesc("fleetgate_osrm_circuit_open", "1 while the OSRM circuit breaker is open (OSRM failed repeatedly; not called for now).", nil, nil),
	}
	// Every label value exported from the start, at 0.
	for _, k := range []cloud.TripChangeKind{cloud.TripCreated, cloud.TripUpdated, cloud.TripDeleted} {
		m.changes.WithLabelValues(string(k))
	}
	for _, s := range []cloud.MatchStatus{cloud.MatchMatched, cloud.MatchUnmatched, cloud.MatchFailed} {
		m.matches.WithLabelValues(string(s))
	}
	for _, t := range []string{"events", "dead_letters", "commands", "device_status", "trips"} {
		m.deleted.WithLabelValues(t)
	}
	for _, j := range []string{"trips", "match", "partitions", "retention"} {
		m.errors.WithLabelValues(j)
	}
	return m
}

// Describe sends every descriptor.
func (m *jobMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.circuit
}

// Collect sends the values, the breaker's state read now.
func (m *jobMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	open := 0.0
	if m.circuitOpen != nil && m.circuitOpen() {
		open = 1
	}
	ch <- prometheus.MustNewConstMetric(m.circuit, prometheus.GaugeValue, open)
}

func (m *jobMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.vehicles, m.changes, m.matches, m.dropped, m.deleted, m.errors}
}
