package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/ingest"
)

// metrics are the server's Prometheus metrics: the Go runtime, the process,
// ingest (counters and gauges read from the pipeline's Stats at scrape time,
// histograms fed per transaction through its OnCommit, which newMetrics
// sets) and the HTTP API's requests (fed by Observe). The names are listed
// in cloud/README.md, section Metrics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// subscriber says whether the broker session is subscribed.
type subscriber interface{ Subscribed() bool }

func newMetrics(pl *ingest.Pipeline, sess subscriber, hub *httpapi.Hub) *metrics {
	c := &ingestCollector{pl: pl, sess: sess,
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
	pl.OnCommit = func(ci ingest.CommitInfo) {
		c.batchMessages.Observe(float64(ci.Messages))
		c.batchRecords.Observe(float64(ci.Records))
		c.commitSeconds.Observe(ci.Duration.Seconds())
	}
	m := &metrics{reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetgate_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetgate_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}, []string{"route"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		c, m.requests, m.latency,
	)
	if hub != nil {
		m.reg.MustRegister(liveCollector{hub})
	}
	return m
}

// liveCollector exposes the live stream hub's figures.
type liveCollector struct{ hub *httpapi.Hub }

var (
	descLiveStreams = prometheus.NewDesc("fleetgate_live_streams", "Live streams (SSE) this replica serves now.", nil, nil)
	descLiveSent    = prometheus.NewDesc("fleetgate_live_updates_sent_total", "Live updates handed to streams (one per stream and update).", nil, nil)
	descLiveDropped = prometheus.NewDesc("fleetgate_live_streams_dropped_total", "Live streams ended because their client did not keep up (it resumes from its last event id).", nil, nil)
	descLiveReady   = prometheus.NewDesc("fleetgate_live_subscribed", "1 while this replica is subscribed to the live feed (Redis pub/sub).", nil, nil)
)

// Describe sends every descriptor.
func (l liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLiveStreams, descLiveSent, descLiveDropped, descLiveReady} {
		ch <- d
	}
}

// Collect reads the hub's figures at scrape time.
func (l liveCollector) Collect(ch chan<- prometheus.Metric) {
	s := l.hub.Stats()
	ch <- prometheus.MustNewConstMetric(descLiveStreams, prometheus.GaugeValue, float64(s.Clients))
	ch <- prometheus.MustNewConstMetric(descLiveSent, prometheus.CounterValue, float64(s.Sent))
	ch <- prometheus.MustNewConstMetric(descLiveDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descLiveReady, prometheus.GaugeValue, b2f(l.hub.Ready()))
}

// Handler serves GET /metrics.
func (m *metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Observe counts one HTTP request; it is the API's httpapi.Observer.
func (m *metrics) Observe(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}

var _ httpapi.Observer = (*metrics)(nil).Observe

// ingestCollector exposes the pipeline's Stats and histograms.
type ingestCollector struct {
	pl                                         *ingest.Pipeline
	sess                                       subscriber
	batchMessages, batchRecords, commitSeconds prometheus.Histogram
}

// ingestMetric is one value of ingest.Stats as a metric.
type ingestMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(*ingest.Stats) float64
}

func counter(name, help string, get func(*ingest.Stats) int64) ingestMetric {
	return ingestMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, func(s *ingest.Stats) float64 { return float64(get(s)) }}
}

func gauge(name, help string, get func(*ingest.Stats) float64) ingestMetric {
	return ingestMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, get}
}

var ingestMetrics = []ingestMetric{
	counter("fleetgate_ingest_messages_acked_total", "MQTT messages acknowledged to the broker (after their commit and Ack).", func(s *ingest.Stats) int64 { return s.Acked }),
	counter("fleetgate_ingest_records_committed_total", "Records committed, newly written or already stored (replays).", func(s *ingest.Stats) int64 { return s.Records }),
	counter("fleetgate_ingest_records_inserted_total", "Records newly written to PostgreSQL.", func(s *ingest.Stats) int64 { return s.Inserted }),
	counter("fleetgate_ingest_records_rejected_total", "Records refused by validation or by the database (dead-lettered, acked as rejected).", func(s *ingest.Stats) int64 { return s.Rejected }),
	counter("fleetgate_ingest_commits_total", "Ingest transactions committed.", func(s *ingest.Stats) int64 { return s.Commits }),
	counter("fleetgate_ingest_commit_retries_total", "Ingest commits that failed (PostgreSQL unavailable) and were retried.", func(s *ingest.Stats) int64 { return s.StoreRetries }),
	counter("fleetgate_ingest_acks_published_total", "Protocol Acks the broker confirmed on down/ack.", func(s *ingest.Stats) int64 { return s.AcksPublished }),
	counter("fleetgate_ingest_ack_retries_total", "Ack publishes that failed and were retried.", func(s *ingest.Stats) int64 { return s.AckRetries }),
	counter("fleetgate_ingest_live_update_failures_total", "Live-state updates to Redis that failed (retried; PostgreSQL has the data).", func(s *ingest.Stats) int64 { return s.LiveFailures }),
	counter("fleetgate_ingest_dropped_total", "Messages acknowledged although not even their dead letter could be stored.", func(s *ingest.Stats) int64 { return s.Dropped }),
	counter("fleetgate_ingest_step_backs_total", "Times ingest stepped back because its commits kept failing.", func(s *ingest.Stats) int64 { return s.StepBacks }),
	gauge("fleetgate_ingest_stepped_back", "1 while ingest has stepped back (unsubscribed, /ready 503) because its commits keep failing.", func(s *ingest.Stats) float64 { return b2f(s.SteppedBack) }),
	gauge("fleetgate_ingest_lag_seconds", "Age of the oldest message received and not yet acknowledged; 0 when none is held.", func(s *ingest.Stats) float64 { return s.Lag.Seconds() }),
	gauge("fleetgate_ingest_queue_depth", "Messages queued for the batcher.", func(s *ingest.Stats) float64 { return float64(s.QueueDepth) }),
	gauge("fleetgate_ingest_queue_max", "The most messages ever queued for the batcher (at most the queue's capacity).", func(s *ingest.Stats) float64 { return float64(s.QueueMax) }),
	gauge("fleetgate_ingest_messages_held", "Messages received and not yet acknowledged.", func(s *ingest.Stats) float64 { return float64(s.Held) }),
}

var (
	descQueueCap   = prometheus.NewDesc("fleetgate_ingest_queue_capacity", "Places in the ingest queue.", nil, nil)
	descSubscribed = prometheus.NewDesc("fleetgate_ingest_subscribed", "1 while ingest is connected to the broker and subscribed.", nil, nil)
	descReceived   = prometheus.NewDesc("fleetgate_ingest_messages_received_total", "MQTT messages taken from the broker, by the protocol version of their topic (1: up/batch, statuses, command results; 2: batches on the vehicle's own topic; none: a topic outside the protocol).", []string{"version"}, nil)
	descRows       = prometheus.NewDesc("fleetgate_ingest_rows_committed_total", "Rows committed by ingest, by kind (position, obd, event, status, command_result, dead_letter).", []string{"kind"}, nil)
	descDead       = prometheus.NewDesc("fleetgate_ingest_dead_letters_total", "Dead letters committed, by reason (topic, decode, invalid, clock_ahead, refused, unknown_command).", []string{"reason"}, nil)
	descAhead      = prometheus.NewDesc("fleetgate_ingest_clock_ahead_total", "Records and statuses received stamped beyond INGEST_MAX_CLOCK_AHEAD, by kind: records are stored but never become the latest state; statuses are dead letters.", []string{"kind"}, nil)
)

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Describe sends every descriptor.
func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range ingestMetrics {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{descQueueCap, descSubscribed, descReceived, descRows, descDead, descAhead} {
		ch <- d
	}
	c.batchMessages.Describe(ch)
	c.batchRecords.Describe(ch)
	c.commitSeconds.Describe(ch)
}

// Collect reads the pipeline's Stats at scrape time.
func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pl.Stats()
	for _, m := range ingestMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.get(&s))
	}
	ch <- prometheus.MustNewConstMetric(descQueueCap, prometheus.GaugeValue, float64(c.pl.QueueLen))
	ch <- prometheus.MustNewConstMetric(descSubscribed, prometheus.GaugeValue, b2f(c.sess.Subscribed()))
	for _, v := range ingest.Versions {
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(s.ReceivedByVersion[v]), v)
	}
	for _, k := range ingest.Kinds {
		ch <- prometheus.MustNewConstMetric(descRows, prometheus.CounterValue, float64(s.Rows[k]), k)
	}
	for _, r := range ingest.Reasons {
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.DeadLetters[r]), r)
	}
	for _, k := range []string{ingest.KindPosition, ingest.KindOBD, ingest.KindEvent, ingest.KindStatus} {
		ch <- prometheus.MustNewConstMetric(descAhead, prometheus.CounterValue, float64(s.ClockAhead[k]), k)
	}
	c.batchMessages.Collect(ch)
	c.batchRecords.Collect(ch)
	c.commitSeconds.Collect(ch)
}
