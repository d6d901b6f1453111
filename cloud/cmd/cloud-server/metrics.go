package main

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
)

// newMetrics returns the Prometheus handler for GET /metrics (the Go runtime,
// the process, and ingest: counters and gauges read from in.Stats at scrape
// time, histograms fed per transaction through in.OnCommit, which it sets).
// The names are listed in cloud/README.md, section Metrics. Extra
// collectors (the background jobs') are served too.
func newMetrics(in *mqtt.Ingester, extra ...prometheus.Collector) http.Handler {
	c := &ingestCollector{in: in,
		batchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fleetgate_ingest_batch_messages",
			Help:    "Messages per committed ingest transaction (micro-batch).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fleetgate_ingest_batch_records",
			Help:    "Records per committed ingest transaction (micro-batch).",
			Buckets: []float64{1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fleetgate_ingest_commit_duration_seconds",
			Help:    "Duration of the ingest transactions that committed (COPY, INSERT … SELECT, COMMIT).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 13), // 1 ms to 4 s
		}),
	}
	in.OnCommit = func(ci mqtt.CommitInfo) {
		c.batchMessages.Observe(float64(ci.Messages))
		c.batchRecords.Observe(float64(ci.Records))
		c.commitSeconds.Observe(ci.Duration.Seconds())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		c,
	)
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ingestCollector exposes the Ingester's Stats and histograms.
type ingestCollector struct {
	in                                         *mqtt.Ingester
	batchMessages, batchRecords, commitSeconds prometheus.Histogram
}

// ingestMetric is one value of mqtt.Stats as a metric.
type ingestMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(*mqtt.Stats) int64
}

func counter(name, help string, get func(*mqtt.Stats) int64) ingestMetric {
	return ingestMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, get}
}

func gauge(name, help string, get func(*mqtt.Stats) int64) ingestMetric {
	return ingestMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, get}
}

var ingestMetrics = []ingestMetric{
	counter("fleetgate_ingest_messages_received_total", "MQTT messages taken from the broker.", func(s *mqtt.Stats) int64 { return s.Received }),
	counter("fleetgate_ingest_messages_acked_total", "MQTT messages acknowledged to the broker (after their commit and Ack).", func(s *mqtt.Stats) int64 { return s.Acked }),
	counter("fleetgate_ingest_records_committed_total", "Records committed, newly written or already stored (replays).", func(s *mqtt.Stats) int64 { return s.Records }),
	counter("fleetgate_ingest_records_inserted_total", "Records newly written to PostgreSQL.", func(s *mqtt.Stats) int64 { return s.Inserted }),
	counter("fleetgate_ingest_records_rejected_total", "Records refused by validation or by the database (dead-lettered, acked as rejected).", func(s *mqtt.Stats) int64 { return s.Rejected }),
	counter("fleetgate_ingest_dead_letters_total", "Dead letters written.", func(s *mqtt.Stats) int64 { return s.DeadLetters }),
	counter("fleetgate_ingest_undecodable_total", "Payloads that did not decode.", func(s *mqtt.Stats) int64 { return s.Undecodable }),
	counter("fleetgate_ingest_commits_total", "Ingest transactions committed.", func(s *mqtt.Stats) int64 { return s.Commits }),
	counter("fleetgate_ingest_commit_retries_total", "Ingest commits that failed (PostgreSQL unavailable) and were retried.", func(s *mqtt.Stats) int64 { return s.StoreRetries }),
	counter("fleetgate_ingest_acks_published_total", "Protocol Acks the broker confirmed on down/ack.", func(s *mqtt.Stats) int64 { return s.AcksPublished }),
	counter("fleetgate_ingest_ack_retries_total", "Ack publishes that failed and were retried.", func(s *mqtt.Stats) int64 { return s.AckRetries }),
	counter("fleetgate_ingest_live_update_failures_total", "Live-state updates to Redis that failed (not retried; PostgreSQL has the data).", func(s *mqtt.Stats) int64 { return s.LiveFailures }),
	gauge("fleetgate_ingest_queue_depth", "Messages queued for the batcher (or being decoded for it).", func(s *mqtt.Stats) int64 { return s.QueueDepth }),
	gauge("fleetgate_ingest_queue_max", "The most messages ever queued for the batcher (at most the queue's capacity).", func(s *mqtt.Stats) int64 { return s.QueueMax }),
	gauge("fleetgate_ingest_messages_held", "Messages received and not yet acknowledged.", func(s *mqtt.Stats) int64 { return s.Held }),
}

var (
	descQueueCap   = prometheus.NewDesc("fleetgate_ingest_queue_capacity", "Places in the ingest queue (QueueLen).", nil, nil)
	descSubscribed = prometheus.NewDesc("fleetgate_ingest_subscribed", "1 while ingest is connected to the broker and subscribed.", nil, nil)
)

// Describe sends every descriptor.
func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range ingestMetrics {
		ch <- m.desc
	}
	ch <- descQueueCap
	ch <- descSubscribed
	c.batchMessages.Describe(ch)
	c.batchRecords.Describe(ch)
	c.commitSeconds.Describe(ch)
}

// Collect reads the Ingester's Stats at scrape time.
func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.in.Stats()
	for _, m := range ingestMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, float64(m.get(&s)))
	}
	ch <- prometheus.MustNewConstMetric(descQueueCap, prometheus.GaugeValue, float64(c.in.QueueLen))
	up := 0.0
	if c.in.Ping(context.Background()) == nil {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descSubscribed, prometheus.GaugeValue, up)
	c.batchMessages.Collect(ch)
	c.batchRecords.Collect(ch)
	c.commitSeconds.Collect(ch)
}
