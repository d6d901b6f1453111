package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
)

// agentState is what the HTTP endpoint reads of the running agent.
type agentState struct {
	outbox    edge.Outbox
	up        *mqtt.Uplink
	sender    *uplink.Sender
	counters  *edge.Counters
	clock     *edge.Clock          // nil: stamping from GNSS time is off
	collector *edge.Collector      // its Failing says appends fail
	adapter   edge.AdapterReporter // nil: no OBD
	now       func() time.Time
}

// Health statuses.
const (
	healthOK       = "ok"
	healthDegraded = "degraded" // the agent works, with less than it should: see the fields
	healthFailing  = "failing"  // records cannot be stored
)

// newHTTPHandler serves GET /health (JSON; 200 while the outbox answers and
// stores records, "degraded" when its filesystem holds less than its cap;
// 503 when it does not answer or appends fail), GET /outbox and GET
// /metrics (Prometheus).
func newHTTPHandler(a *agentState) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&agentCollector{a: a},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /outbox", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.outbox.Stats(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(newOutboxJSON(st, a.now()))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		body, code := a.health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	return mux
}

// health is GET /health's body and status code.
func (a *agentState) health(ctx context.Context) (map[string]any, int) {
	body := map[string]any{"status": healthOK, "mqtt_connected": a.up.Connected(),
		"min_batch_age_s": a.sender.MinBatchAge().Seconds(), "protocol_version": a.sender.Version()}
	st, err := a.outbox.Stats(ctx)
	if err != nil {
		body["status"], body["error"] = "outbox unavailable", err.Error()
		return body, http.StatusServiceUnavailable
	}
	body["outbox_depth"] = st.Depth
	body["oldest_unsent_age_s"] = st.OldestUnsentAge(a.now()).Seconds()
	body["stream_id"] = fmt.Sprintf("%016x", st.StreamID)
	body["next_seq"] = st.NextSeq
	body["outbox_cap_bytes"] = st.CapBytes
	code := http.StatusOK
	if st.Trouble != "" {
		body["status"], body["outbox_trouble"] = healthDegraded, st.Trouble
	}
	if err := a.collector.Failing(); err != nil {
		body["status"], body["outbox_append_error"] = healthFailing, err.Error()
		code = http.StatusServiceUnavailable
	}
	if a.clock != nil {
		cs := a.clock.State()
		c := map[string]any{"source": cs.Source.String(), "synced": cs.Synced}
		if cs.OffsetKnown {
			c["offset_s"] = cs.Offset.Seconds()
		}
		body["clock"] = c
	}
	if a.adapter != nil {
		body["obd"] = a.adapter.AdapterState().String()
	}
	return body, code
}

// outboxJSON is what `edge-agent outbox stats` prints and GET /outbox
// returns.
type outboxJSON struct {
	Depth            uint64            `json:"depth"`
	Bytes            uint64            `json:"bytes"`
	FileBytes        int64             `json:"file_bytes"`
	MaxBytes         int64             `json:"max_bytes"`
	CapBytes         int64             `json:"cap_bytes"`         // max_bytes, or less when the filesystem holds less
	Trouble          string            `json:"trouble,omitempty"` // what is wrong with its storage
	NoSpace          uint64            `json:"no_space"`          // commits that met a full disk since the agent started
	OldestUnsentAgeS float64           `json:"oldest_unsent_age_s"`
	Dropped          uint64            `json:"dropped"`
	DroppedBy        map[string]uint64 `json:"dropped_by"`
	StreamID         string            `json:"stream_id"`
	NextSeq          uint64            `json:"next_seq"`
}

func newOutboxJSON(st edge.OutboxStats, now time.Time) outboxJSON {
	return outboxJSON{
		Depth: st.Depth, Bytes: st.Bytes, FileBytes: st.FileBytes, MaxBytes: st.MaxBytes, CapBytes: st.CapBytes,
		Trouble: st.Trouble, NoSpace: st.NoSpace,
		OldestUnsentAgeS: st.OldestUnsentAge(now).Seconds(), Dropped: st.Dropped,
		DroppedBy: map[string]uint64{"thinned": st.DroppedThinned, "oldest": st.DroppedOldest, "expired": st.DroppedExpired},
		StreamID:  fmt.Sprintf("%016x", st.StreamID), NextSeq: st.NextSeq,
	}
}

// agentCollector exposes the edge.Counters, one counter each
// (gps.bad_checksum → fleetgate_edge_gps_bad_checksum_total; the families of
// labelledCounters with their label), and the outbox, uplink, clock and OBD
// adapter state as gauges. It is an unchecked collector: counter names
// appear as the agent meets them.
type agentCollector struct {
	a *agentState
}

var notMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// labelledCounters are the counter families whose last part is a label:
// gps.fixes_by_talker.IN → fleetgate_edge_gps_fixes_by_talker_total{talker="IN"}.
var labelledCounters = []struct{ prefix, label string }{
	{"gps.fixes_by_talker.", "talker"},
	{"gps.odd_fields.", "field"},
	{"gps.rejected_fixes.", "reason"},
}

var (
	descDepth   = prometheus.NewDesc("fleetgate_edge_outbox_depth", "Records stored and not yet acknowledged by the cloud.", nil, nil)
	descBytes   = prometheus.NewDesc("fleetgate_edge_outbox_bytes", "Encoded size of the records in the outbox.", nil, nil)
	descFile    = prometheus.NewDesc("fleetgate_edge_outbox_file_bytes", "Bytes the outbox file takes on disk.", nil, nil)
	descCap     = prometheus.NewDesc("fleetgate_edge_outbox_cap_bytes", "The outbox's cap in force: outbox.max_bytes, or less when the filesystem holds less.", nil, nil)
	descTrouble = prometheus.NewDesc("fleetgate_edge_outbox_trouble", "1 while the outbox's filesystem holds less than its cap.", nil, nil)
	descNoSpace = prometheus.NewDesc("fleetgate_edge_outbox_no_space_total", "Outbox commits that met a full disk and were retried after dropping records, since the agent started.", nil, nil)
	descAge     = prometheus.NewDesc("fleetgate_edge_outbox_oldest_unsent_age_seconds", "How long the oldest stored record has waited.", nil, nil)
	descDrop    = prometheus.NewDesc("fleetgate_edge_outbox_dropped_total", "Records dropped by the outbox's overflow policy, by reason.", []string{"reason"}, nil)
	descSeq     = prometheus.NewDesc("fleetgate_edge_outbox_next_seq", "The sequence number the next record gets.", nil, nil)
	descConn    = prometheus.NewDesc("fleetgate_edge_mqtt_connected", "1 while the uplink has a broker connection.", nil, nil)
	descAppend  = prometheus.NewDesc("fleetgate_edge_outbox_append_failing", "1 while appends to the outbox fail.", nil, nil)
	descClock   = prometheus.NewDesc("fleetgate_edge_clock_source", "1 for where the records the agent stamps itself get their time now: system, gnss or unsynced.", []string{"source"}, nil)
	descSynced  = prometheus.NewDesc("fleetgate_edge_clock_synced", "1 while the kernel says the system clock is synchronised.", nil, nil)
	descOffset  = prometheus.NewDesc("fleetgate_edge_clock_offset_seconds", "GNSS time minus the system clock, once fixes gave it.", nil, nil)
	descVehicle = prometheus.NewDesc("fleetgate_edge_obd_vehicle", "1 for what the OBD adapter's last protocol search found: answered, none or bus_fault.", []string{"state"}, nil)
	descSupply  = prometheus.NewDesc("fleetgate_edge_obd_supply_missing", "1 while the OBD adapter reads no supply voltage (0.0V).", nil, nil)
	descAgeMin  = prometheus.NewDesc("fleetgate_edge_uplink_min_batch_age_seconds",
		"How long a partial batch waits at least: uplink.min_batch_age, or the report interval the cloud commanded.", nil, nil)
	descProto = prometheus.NewDesc("fleetgate_edge_uplink_protocol_version", "The wire protocol version of the batches sent now.", nil, nil)
)

// Describe sends nothing: the collector is unchecked.
func (c *agentCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the counters and the state at scrape time.
func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	for name, v := range a.counters.Snapshot() {
		ch <- counterMetric(name, v)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	one := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(descConn, one(a.up.Connected()))
	gauge(descAgeMin, a.sender.MinBatchAge().Seconds())
	gauge(descProto, float64(a.sender.Version()))
	gauge(descAppend, one(a.collector.Failing() != nil))
	if a.clock != nil {
		cs := a.clock.State()
		for _, src := range []edge.TimeSource{edge.TimeSystem, edge.TimeGNSS, edge.TimeUnsynced} {
			gauge(descClock, one(cs.Source == src), src.String())
		}
		gauge(descSynced, one(cs.Synced))
		if cs.OffsetKnown {
			gauge(descOffset, cs.Offset.Seconds())
		}
	}
	if a.adapter != nil {
		as := a.adapter.AdapterState()
		for _, state := range []string{edge.VehicleAnswered, edge.VehicleNone, edge.VehicleBusFault} {
			gauge(descVehicle, one(as.Vehicle == state), state)
		}
		gauge(descSupply, one(as.SupplyMissing))
	}
	st, err := a.outbox.Stats(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDepth, err)
		return
	}
	gauge(descDepth, float64(st.Depth))
	gauge(descBytes, float64(st.Bytes))
	gauge(descFile, float64(st.FileBytes))
	gauge(descCap, float64(st.CapBytes))
	gauge(descTrouble, one(st.Trouble != ""))
	ch <- prometheus.MustNewConstMetric(descNoSpace, prometheus.CounterValue, float64(st.NoSpace))
	gauge(descAge, st.OldestUnsentAge(a.now()).Seconds())
	for reason, n := range map[string]uint64{"thinned": st.DroppedThinned, "oldest": st.DroppedOldest, "expired": st.DroppedExpired} {
		ch <- prometheus.MustNewConstMetric(descDrop, prometheus.CounterValue, float64(n), reason)
	}
	gauge(descSeq, float64(st.NextSeq))
}

// counterMetric is one agent counter as a Prometheus counter.
func counterMetric(name string, v uint64) prometheus.Metric {
	for _, l := range labelledCounters {
		if value, ok := strings.CutPrefix(name, l.prefix); ok && value != "" {
			d := prometheus.NewDesc("fleetgate_edge_"+notMetricChars.ReplaceAllString(strings.TrimSuffix(l.prefix, "."), "_")+"_total",
				"Agent counters "+l.prefix+"<"+l.label+">.", []string{l.label}, nil)
			return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), value)
		}
	}
	d := prometheus.NewDesc("fleetgate_edge_"+notMetricChars.ReplaceAllString(name, "_")+"_total", "Agent counter "+name+".", nil, nil)
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
}
