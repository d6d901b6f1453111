package bench_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// A vehicle-day on a metered link: 24 hours of 1 Hz GPS and the 8 OBD PIDs
// of bench.PIDs every second, through the agent's real sending policy
// (edge/uplink), group commit (edge.Collector) and encoding, on a simulated
// MQTT link whose every packet is counted with the sizes TestWireModel
// checks against a real broker: batches and their PUBACKs, the cloud's Acks
// and the agent's PUBACKs of them, statuses, keepalive PINGREQs and
// PINGRESPs (paho's rule: a ping when nothing was sent or received for a
// keepalive interval, checked every 5 s), the CONNECT with its will and the
// SUBSCRIBE. The cloud answers each batch 200 ms after it was sent, as a
// cellular round trip and a commit take. Time is testing/synctest's, so the
// day takes seconds.
//
// Bytes are those of the MQTT packets, both ways (a metered plan bills
// both); TCP/IP headers (40 bytes a segment and more) and TLS records are
// counted for no protocol, Codec 8 included, and the packet counts are
// reported so that they can be added.

// dayProfile is how the agent is configured for the day.
type dayProfile struct {
	Name           string
	MinBatchAge    time.Duration // uplink.min_batch_age
	StatusInterval time.Duration // uplink.status_interval
	Codec8Records  int           // records per Codec 8 packet at the same cadence
}

var (
	// liveDay is the agent with its defaults: every record goes at once.
	liveDay = dayProfile{"defaults", uplink.DefaultMinBatchAge, uplink.DefaultStatusInterval, 1}
	// meteredDay is the agent as documented for a metered plan: batches of
	// a minute, a status every 5 minutes.
	meteredDay = dayProfile{"metered", time.Minute, 5 * time.Minute, 60}
)

const (
	dayVehicle = "veh-0001"
	dayRTT     = 200 * time.Millisecond
	keepAlive  = uplink.DefaultKeepAlive
)

// dayTraffic is what a simulated day cost, in bytes and packets.
type dayTraffic struct {
	Profile                dayProfile
	Up, Down               int // MQTT bytes agent → broker and broker → agent
	PacketsUp, PacketsDown int
	Batches, Statuses      int
	Pings                  int
	Fixes, Samples         int
	// The same day with each batch's payload as JSON compressed by gzip or
	// zstd instead (the MQTT traffic around it unchanged), and as Codec 8
	// over TCP at the same cadence (Profile.Codec8Records a packet).
	JSONGzip, JSONZstd, Codec8 int
	Codec8Packets              int
	// FixDelayP50, FixDelayP99: from a fix's making to the cloud's Ack of
	// it, in ms: what the sending policy costs the live map.
	FixDelayP50, FixDelayP99 float64
}

// Total returns the bytes of the day, both ways.
func (d dayTraffic) Total() int { return d.Up + d.Down }

// link is the simulated MQTT connection: it implements uplink.Conn, plays
// the broker and the cloud, and counts.
type link struct {
	ctx    context.Context
	sender *uplink.Sender
	ctr    *edge.Counters
	wg     sync.WaitGroup

	mu             sync.Mutex
	tr             *dayTraffic
	lastSent, last time.Time            // lastSent, lastReceived as paho keeps them
	fixAt          map[uint64]time.Time // seq → when the fix was made
	delays         []time.Duration      // fix to its Ack
}

func topicOf(k telemetry.Kind) string {
	t, err := telemetry.DefaultNamespace.Topic(dayVehicle, k)
	if err != nil {
		panic(err)
	}
	return t
}

func (l *link) send(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tr.Up += n
	l.tr.PacketsUp++
	l.lastSent = time.Now()
	l.ctr.Add("uplink.wire_bytes_sent", uint64(n))
}

func (l *link) receive(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tr.Down += n
	l.tr.PacketsDown++
	l.last = time.Now()
	l.ctr.Add("uplink.wire_bytes_received", uint64(n))
}

// later runs f after d, on its own goroutine, unless the day ends first.
func (l *link) later(d time.Duration, f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-time.After(d):
			f()
		case <-l.ctx.Done():
		}
	}()
}

// Publish sends a batch: the broker's PUBACK comes half a round trip later,
// the cloud's Ack a round trip later (answered by the agent's PUBACK).
func (l *link) Publish(_ context.Context, kind telemetry.Kind, payload []byte) error {
	l.send(bench.PublishBytes(topicOf(kind), len(payload), 1))
	b, err := telemetry.DecodeBatchOn(dayVehicle, payload)
	if err != nil {
		return err
	}
	gz, zs := jsonBatch(b)
	l.mu.Lock()
	l.tr.Batches++
	l.tr.JSONGzip += bench.PublishBytes(topicOf(telemetry.KindBatch), gz, 1) - bench.PublishBytes(topicOf(kind), len(payload), 1)
	l.tr.JSONZstd += bench.PublishBytes(topicOf(telemetry.KindBatch), zs, 1) - bench.PublishBytes(topicOf(kind), len(payload), 1)
	l.mu.Unlock()
	l.later(dayRTT/2, func() { l.receive(bench.PubackBytes) })
	l.later(dayRTT, func() {
		a := telemetry.NewAck(dayVehicle, b.StreamID, b.SeqRanges(), nil, "")
		a.Version = telemetry.Version // the cloud reads version 2
		p, err := telemetry.Encode(a, false)
		if err != nil {
			panic(err)
		}
		l.receive(bench.PublishBytes(topicOf(telemetry.KindAck), len(p), 1))
		l.send(bench.PubackBytes)
		l.mu.Lock()
		for _, fix := range b.Positions {
			if at, ok := l.fixAt[fix.Seq]; ok {
				l.delays = append(l.delays, time.Since(at))
				delete(l.fixAt, fix.Seq)
			}
		}
		l.mu.Unlock()
		l.sender.Ack(l.ctx, a)
	})
	return nil
}

// status publishes a retained status as the agent does.
func (l *link) status(online bool, info uplink.StatusInfo) int {
	s, err := l.sender.Status(l.ctx, online, time.Now(), info)
	if err != nil {
		panic(err)
	}
	p, err := telemetry.Encode(s, true)
	if err != nil {
		panic(err)
	}
	return len(p)
}

// keepalive pings as paho does.
func (l *link) keepalive() {
	defer l.wg.Done()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		l.mu.Lock()
		idle := time.Since(l.lastSent) >= keepAlive || time.Since(l.last) >= keepAlive
		l.mu.Unlock()
		if idle {
			l.send(bench.PingreqBytes)
			l.mu.Lock()
			l.tr.Pings++
			l.mu.Unlock()
			l.later(dayRTT/2, func() { l.receive(bench.PingrespBytes) })
		}
	}
}

// The counters a real agent reports with GPS and OBD (as its status showed
// after a run against the simulator), and how much each grows a second.
var agentCounters = map[string]uint64{
	"gps.bytes": 198, "gps.sentences": 3, "gps.fixes": 1, "obd.commands": 3, "obd.samples": 8,
	"collector.commits": 5, "collector.records": 9,
	"gps.baud_locks": 0, "gps.opens": 0, "obd.opens": 0, "obd.searching": 0, "obd.vin_reads": 0, "obd.dtc_reads": 0,
}

// simulateDay runs span of the day with profile p and returns its traffic.
func simulateDay(t *testing.T, p dayProfile, span time.Duration) dayTraffic {
	tr := dayTraffic{Profile: p}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		outbox := memory.NewOutbox(1, 0)
		var ctr edge.Counters
		for name := range agentCounters {
			ctr.Inc(name)
		}
		sender, err := uplink.New(uplink.Config{VehicleID: dayVehicle, MinBatchAge: p.MinBatchAge}, outbox, nil, &ctr)
		if err != nil {
			t.Fatal(err)
		}
		l := &link{ctx: ctx, sender: sender, ctr: &ctr, tr: &tr, fixAt: map[uint64]time.Time{}}
		info := uplink.StatusInfo{AgentVersion: "v1.4.2", Started: time.Now()}

		// The connection: CONNECT with the offline status as its will,
		// CONNACK, SUBSCRIBE to down/ack and down/cmd, SUBACK, the status.
		l.send(bench.ConnectBytes("fleetgate-edge-"+dayVehicle, topicOf(telemetry.KindStatus), l.status(false, info)))
		l.receive(bench.ConnackBytes)
		sub, suback := bench.SubscribeBytes(topicOf(telemetry.KindAck), topicOf(telemetry.KindCmd))
		l.send(sub)
		l.receive(suback)
		publishStatus := func() {
			l.send(bench.PublishBytes(topicOf(telemetry.KindStatus), l.status(true, info), 1))
			l.later(dayRTT/2, func() { l.receive(bench.PubackBytes) })
			l.mu.Lock()
			tr.Statuses++
			l.mu.Unlock()
		}
		publishStatus()
		l.wg.Add(2)
		go l.keepalive()
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(p.StatusInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					for name, perSecond := range agentCounters {
						ctr.Add(name, perSecond*uint64(p.StatusInterval/time.Second))
					}
					publishStatus()
				}
			}
		}()

		records := make(chan edge.Record, 64)
		collector := &edge.Collector{Outbox: outbox, FlushInterval: 200 * time.Millisecond, MaxRecords: uplink.DefaultBatchMaxRecords,
			OnCommit: func([]edge.Record) { sender.Notify() }}
		var parts sync.WaitGroup
		parts.Add(2)
		go func() { defer parts.Done(); collector.Run(ctx, records) }()
		go func() { defer parts.Done(); sender.Run(ctx, l) }()

		// 1 Hz fixes at whole seconds, the 8 PIDs from half a second on,
		// 20 ms apart, as the OBD source polls them.
		start := time.Now()
		base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
		d := bench.NewDrive(3)
		for i := range int(span / time.Second) {
			at := start.Add(time.Duration(i) * time.Second)
			time.Sleep(time.Until(at))
			fix := d.Next(base.Add(time.Duration(i)*time.Second), time.Second)
			l.mu.Lock()
			l.fixAt[uint64(9*i+1)] = time.Now() // the outbox numbers the records in order from 1
			l.mu.Unlock()
			records <- edge.PositionRecord(fix)
			tr.Fixes++
			for j, pid := range bench.PIDs {
				off := 500*time.Millisecond + time.Duration(j)*20*time.Millisecond
				time.Sleep(time.Until(at.Add(off)))
				records <- edge.OBDRecord(telemetry.OBDSample{UnixMs: base.Add(time.Duration(i)*time.Second + off).UnixMilli(), PID: pid, Value: bench.OBD(pid, i)})
				tr.Samples++
			}
		}
		time.Sleep(2 * p.MinBatchAge) // the last records go
		time.Sleep(time.Second)
		cancel()
		parts.Wait()
		l.wg.Wait()
		if len(l.delays) != tr.Fixes {
			t.Errorf("%d of %d fixes acknowledged", len(l.delays), tr.Fixes)
		}
		tr.FixDelayP50, tr.FixDelayP99 = percentile(l.delays, 0.5), percentile(l.delays, 0.99)
		tr.Codec8, tr.Codec8Packets = codec8Day(tr.Fixes, p.Codec8Records)
	})
	return tr
}

// codec8Day returns the bytes of the same day's fixes and OBD samples as
// Codec 8 over TCP, one record a second (the fix and its 8 IO values), perPacket
// records a packet, and the packets.
func codec8Day(seconds, perPacket int) (int, int) {
	d := bench.NewDrive(3)
	base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	total := codec8IMEI + codec8Accept
	packets := 0
	var recs []codec8Record
	flush := func() {
		total += len(codec8Packet(recs)) + codec8Answer
		packets++
		recs = recs[:0]
	}
	for i := range seconds {
		p := d.Next(base.Add(time.Duration(i)*time.Second), time.Second)
		// The FMB OBD II elements, each at its smallest width: engine load,
		// coolant, rpm (2 bytes), speed, intake air, MAF (2 bytes, ×100),
		// throttle, fuel level.
		v := func(pid uint16) uint64 { return uint64(bench.OBD(pid, i)) }
		recs = append(recs, codec8Record{
			TimestampMs: uint64(p.UnixMs), LonE7: p.LonE7, LatE7: p.LatE7, AltM: int16(p.AltCm / 100),
			Angle: uint16(p.CourseCdeg / 100), Sats: byte(p.SatsUsed), SpeedKmh: uint16(p.SpeedMmps * 36 / 10000),
			IO: []codec8IO{{31, 1, v(0x0104)}, {32, 1, v(0x0105)}, {36, 2, v(0x010C)}, {37, 1, v(0x010D)},
				{39, 1, v(0x010F)}, {40, 2, uint64(bench.OBD(0x0110, i) * 100)}, {41, 1, v(0x0111)}, {48, 1, v(0x012F)}},
		})
		if len(recs) == perPacket {
			flush()
		}
	}
	if len(recs) > 0 {
		flush()
	}
	return total, packets
}

// jsonRecord is a record as a typical tracker's JSON has it.
type jsonRecord struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Lat    float64   `json:"lat,omitempty"`
	Lon    float64   `json:"lon,omitempty"`
	Alt    float64   `json:"alt,omitempty"`
	Speed  float64   `json:"speed,omitempty"`
	Course float64   `json:"course,omitempty"`
	Sats   int32     `json:"sats,omitempty"`
	HDOP   float64   `json:"hdop,omitempty"`
	PID    string    `json:"pid,omitempty"`
	Value  *float64  `json:"value,omitempty"`
}

// zstdJSON is made and first used outside any synctest bubble (its
// channels would otherwise belong to the first bubble that used it).
var zstdJSON = func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	e.EncodeAll(nil, nil)
	return e
}()

// jsonRecords returns b's records as JSON has them.
func jsonRecords(b *telemetry.Batch) []jsonRecord {
	var recs []jsonRecord
	for _, p := range b.Positions {
		recs = append(recs, jsonRecord{Seq: p.Seq, Time: time.UnixMilli(p.UnixMs).UTC(), Lat: p.Lat(), Lon: p.Lon(),
			Alt: float64(p.AltCm) / 100, Speed: float64(p.SpeedMmps) / 1000, Course: float64(p.CourseCdeg) / 100,
			Sats: p.SatsUsed, HDOP: float64(p.HDOPc) / 100})
	}
	for _, s := range b.OBD {
		recs = append(recs, jsonRecord{Seq: s.Seq, Time: time.UnixMilli(s.UnixMs).UTC(), PID: fmt.Sprintf("%02X", s.PID&0xFF), Value: &s.Value})
	}
	return recs
}

// jsonBatch returns the sizes of b as a JSON object (vehicle, stream,
// records) compressed by gzip and by zstd, each at its default level.
func jsonBatch(b *telemetry.Batch) (gz, zs int) {
	raw, err := json.Marshal(map[string]any{"vehicle_id": dayVehicle, "stream_id": b.StreamID, "records": jsonRecords(b)})
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(raw)
	w.Close()
	return buf.Len(), len(zstdJSON.EncodeAll(raw, nil))
}

// TestVehicleDay: on a metered link, a vehicle-day costs at least three
// times fewer bytes than the same day in Teltonika Codec 8 at the same
// cadence (a packet a minute). FLEETGATE_VEHICLE_DAY, when set, names a file
// that gets the figures as JSON, for BenchmarkVehicleDay, with an hour of the
// agent's defaults besides.
func TestVehicleDay(t *testing.T) {
	m := simulateDay(t, meteredDay, 24*time.Hour)
	t.Logf("metered vehicle-day: %d bytes (%d up, %d down; %d packets up, %d down), %d batches, %d statuses, %d pings; "+
		"JSON+gzip %d, JSON+zstd %d, Codec 8 %d (%d packets); fix to ack p50 %.0f ms, p99 %.0f ms", m.Total(), m.Up, m.Down, m.PacketsUp, m.PacketsDown,
		m.Batches, m.Statuses, m.Pings, m.Total()+m.JSONGzip, m.Total()+m.JSONZstd, m.Codec8, m.Codec8Packets, m.FixDelayP50, m.FixDelayP99)
	if m.Fixes != 86400 || m.Samples != 8*86400 {
		t.Errorf("%d fixes and %d samples in the day", m.Fixes, m.Samples)
	}
	if 3*m.Total() > m.Codec8 {
		t.Errorf("metered vehicle-day: %d bytes, Codec 8 %d: %.2f× smaller, want at least 3×", m.Total(), m.Codec8, float64(m.Codec8)/float64(m.Total()))
	}
	path := os.Getenv("FLEETGATE_VEHICLE_DAY")
	if path == "" {
		return
	}
	live := simulateDay(t, liveDay, time.Hour)
	b, err := json.Marshal([]dayTraffic{m, live})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVehicleDay reports the bytes of a vehicle-day on a metered link
// (vehicle_day_bytes) beside the same day in Codec 8 and as JSON+gzip and
// JSON+zstd, and, derived from an hour × 24, the day with the agent's
// defaults (every record live) beside Codec 8 sending each record alone.
// testing/synctest needs a *testing.T, so the day runs as TestVehicleDay in
// a child of this test binary.
func BenchmarkVehicleDay(b *testing.B) {
	var days []dayTraffic
	for b.Loop() {
		path := b.TempDir() + "/day.json"
		cmd := exec.Command(os.Args[0], "-test.run=^TestVehicleDay$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FLEETGATE_VEHICLE_DAY="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("TestVehicleDay: %v\n%s", err, out)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(raw, &days); err != nil {
			b.Fatal(err)
		}
	}
	m, live := days[0], days[1]
	b.ReportMetric(float64(m.Total()), "B/vehicle-day")
	b.ReportMetric(float64(m.Codec8), "B/vehicle-day-codec8")
	b.ReportMetric(float64(m.Codec8)/float64(m.Total()), "x-smaller-than-codec8")
	b.ReportMetric(float64(m.Total()+m.JSONGzip), "B/vehicle-day-json-gzip")
	b.ReportMetric(float64(m.Total()+m.JSONZstd), "B/vehicle-day-json-zstd")
	b.ReportMetric(float64(m.PacketsUp+m.PacketsDown), "packets/vehicle-day")
	b.ReportMetric(m.FixDelayP50, "p50-ms-fix-to-ack")
	b.ReportMetric(m.FixDelayP99, "p99-ms-fix-to-ack")
	b.ReportMetric(float64(24*live.Total()), "B/vehicle-day-live-defaults-derived")
	b.ReportMetric(float64(24*live.Codec8), "B/vehicle-day-live-codec8-derived")
	b.ReportMetric(live.FixDelayP50, "p50-ms-fix-to-ack-live")
	b.ReportMetric(live.FixDelayP99, "p99-ms-fix-to-ack-live")
}
