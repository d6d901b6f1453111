package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
)

// newHTTPHandler serves GET /health (JSON, 200 while the process runs and the
// outbox answers, 503 when it does not) and GET /metrics (Prometheus).
func newHTTPHandler(outbox edge.Outbox, up *mqtt.Uplink, sender *uplink.Sender, counters *edge.Counters) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&agentCollector{outbox: outbox, up: up, sender: sender, counters: counters},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /outbox", func(w http.ResponseWriter, r *http.Request) {
		st, err := outbox.Stats(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(newOutboxJSON(st, time.Now()))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"status": "ok", "mqtt_connected": up.Connected(),
			"min_batch_age_s": sender.MinBatchAge().Seconds(), "protocol_version": sender.Version()}
		code := http.StatusOK
		if st, err := outbox.Stats(r.Context()); err != nil {
			body["status"], body["error"] = "outbox unavailable", err.Error()
			code = http.StatusServiceUnavailable
		} else {
			body["outbox_depth"] = st.Depth
			body["oldest_unsent_age_s"] = st.OldestUnsentAge(time.Now()).Seconds()
			body["stream_id"] = fmt.Sprintf("%016x", st.StreamID)
			body["next_seq"] = st.NextSeq
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	return mux
}

// outboxJSON is what `edge-agent outbox stats` prints and GET /outbox
// returns.
type outboxJSON struct {
	Depth            uint64            `json:"depth"`
	Bytes            uint64            `json:"bytes"`
	FileBytes        int64             `json:"file_bytes"`
	MaxBytes         int64             `json:"max_bytes"`
	OldestUnsentAgeS float64           `json:"oldest_unsent_age_s"`
	Dropped          uint64            `json:"dropped"`
	DroppedBy        map[string]uint64 `json:"dropped_by"`
	StreamID         string            `json:"stream_id"`
	NextSeq          uint64            `json:"next_seq"`
}

func newOutboxJSON(st edge.OutboxStats, now time.Time) outboxJSON {
	return outboxJSON{
		Depth: st.Depth, Bytes: st.Bytes, FileBytes: st.FileBytes, MaxBytes: st.MaxBytes,
		OldestUnsentAgeS: st.OldestUnsentAge(now).Seconds(), Dropped: st.Dropped,
		DroppedBy: map[string]uint64{"thinned": st.DroppedThinned, "oldest": st.DroppedOldest, "expired": st.DroppedExpired},
		StreamID:  fmt.Sprintf("%016x", st.StreamID), NextSeq: st.NextSeq,
	}
}

// agentCollector exposes the edge.Counters, one counter each
// (gps.bad_checksum → fleetgate_edge_gps_bad_checksum_total), and the outbox
// and uplink state as gauges. It is an unchecked collector: counter names
// appear as the agent meets them.
type agentCollector struct {
	outbox   edge.Outbox
	up       *mqtt.Uplink
	sender   *uplink.Sender
	counters *edge.Counters
}

var notMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

var (
	descDepth  = prometheus.NewDesc("fleetgate_edge_outbox_depth", "Records stored and not yet acknowledged by the cloud.", nil, nil)
	descBytes  = prometheus.NewDesc("fleetgate_edge_outbox_bytes", "Encoded size of the records in the outbox.", nil, nil)
	descFile   = prometheus.NewDesc("fleetgate_edge_outbox_file_bytes", "Size of the outbox file.", nil, nil)
	descAge    = prometheus.NewDesc("fleetgate_edge_outbox_oldest_unsent_age_seconds", "How long the oldest stored record has waited.", nil, nil)
	descDrop   = prometheus.NewDesc("fleetgate_edge_outbox_dropped_total", "Records dropped by the outbox's overflow policy, by reason.", []string{"reason"}, nil)
	descSeq    = prometheus.NewDesc("fleetgate_edge_outbox_next_seq", "The sequence number the next record gets.", nil, nil)
	descConn   = prometheus.NewDesc("fleetgate_edge_mqtt_connected", "1 while the uplink has a broker connection.", nil, nil)
	descAgeMin = prometheus.NewDesc("fleetgate_edge_uplink_min_batch_age_seconds",
		"How long a partial batch waits at least: uplink.min_batch_age, or the report interval the cloud commanded.", nil, nil)
	descProto = prometheus.NewDesc("fleetgate_edge_uplink_protocol_version", "The wire protocol version of the batches sent now.", nil, nil)
)

// Describe sends nothing: the collector is unchecked.
func (c *agentCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the counters and the outbox at scrape time.
func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	for name, v := range c.counters.Snapshot() {
		d := prometheus.NewDesc("fleetgate_edge_"+notMetricChars.ReplaceAllString(name, "_")+"_total",
			"Agent counter "+name+".", nil, nil)
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	conn := 0.0
	if c.up.Connected() {
		conn = 1
	}
	ch <- prometheus.MustNewConstMetric(descConn, prometheus.GaugeValue, conn)
	ch <- prometheus.MustNewConstMetric(descAgeMin, prometheus.GaugeValue, c.sender.MinBatchAge().Seconds())
	ch <- prometheus.MustNewConstMetric(descProto, prometheus.GaugeValue, float64(c.sender.Version()))
	st, err := c.outbox.Stats(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDepth, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(st.Depth))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descFile, prometheus.GaugeValue, float64(st.FileBytes))
	ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, st.OldestUnsentAge(time.Now()).Seconds())
	for reason, n := range map[string]uint64{"thinned": st.DroppedThinned, "oldest": st.DroppedOldest, "expired": st.DroppedExpired} {
		ch <- prometheus.MustNewConstMetric(descDrop, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descSeq, prometheus.GaugeValue, float64(st.NextSeq))
}
