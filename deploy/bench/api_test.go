package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// apiEnv is the API in process over the machine's PostgreSQL and Redis (a
// database and a prefix of its own), served by httptest, with a token.
type apiEnv struct {
	db    *postgres.DB
	dbURL string
	live  *redis.LiveState
	srv   *httptest.Server
	token string
}

func startAPI(b *testing.B, modify ...func(*httpapi.Server)) *apiEnv {
	b.Helper()
	ctx := context.Background()
	e := &apiEnv{dbURL: testenv.Postgres(b)}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(postgres.Migrate(ctx, e.dbURL))
	e.db = postgres.NewDB(e.dbURL)
	must(e.db.Open(ctx))
	b.Cleanup(func() { e.db.Close() })
	e.live = redis.NewLiveState(testenv.Redis(b))
	must(e.live.Open(ctx))
	b.Cleanup(func() { e.live.Close() })
	s := httpapi.NewServer(":0")
	s.Vehicles, s.Positions, s.Statuses, s.Events, s.Tokens, s.Live = e.db, e.db, e.db, e.db, e.db, e.live
	s.RateLimit = 0
	for _, m := range modify {
		m(s)
	}
	var err error
	_, e.token, err = httpapi.NewToken(ctx, e.db, "bench", cloud.RoleViewer, 0, time.Now())
	must(err)
	e.srv = httptest.NewServer(s.Handler())
	b.Cleanup(e.srv.Close)
	return e
}

// get GETs path and reads the whole body, returning its size.
func (e *apiEnv) get(b *testing.B, path string) int64 {
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %s, %v", path, resp.Status, err)
	}
	return n
}

// timed runs f n times and returns each duration.
func timed(n int, f func()) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		f()
		out[i] = time.Since(start)
	}
	return out
}

// BenchmarkAPILatest10k (api_latest_10k_ms): GET /api/v1/vehicles?limit=10000
// of a fleet of 10,000 vehicles, each with a latest position (Redis and
// PostgreSQL), a device status and a trouble code, as the dashboard's list
// asks it, back to back, with the server's defaults: its PostgreSQL part is
// kept per replica for at most API_LIST_CACHE_TTL (1 s), the positions read
// from Redis each time. Target p99 ≤ 50 ms. Baseline: the one SQL query that
// reads the same vehicles and statuses, straight from PostgreSQL, without
// the API.
func BenchmarkAPILatest10k(b *testing.B) {
	benchLatest10k(b, httpapi.DefaultListCacheTTL)
}

// BenchmarkAPILatest10kUncached is BenchmarkAPILatest10k without the cache
// (API_LIST_CACHE_TTL=0): every request reads PostgreSQL.
func BenchmarkAPILatest10kUncached(b *testing.B) {
	benchLatest10k(b, 0)
}

func benchLatest10k(b *testing.B, ttl time.Duration) {
	e := startAPI(b, func(s *httpapi.Server) { s.ListCacheTTL = ttl })
	ctx := context.Background()
	const fleet = 10_000
	now := time.Now().UTC().Truncate(time.Millisecond)
	var states []cloud.VehicleState
	for chunk := 0; chunk < fleet; chunk += 1000 {
		c := &cloud.Commit{ReceivedAt: now}
		for i := chunk; i < chunk+1000; i++ {
			id := fmt.Sprintf("veh-%05d", i)
			d := bench.NewDrive(i)
			p := d.Next(now.Add(-time.Second), time.Second)
			p.Seq = 1
			c.Batches = append(c.Batches, &telemetry.Batch{VehicleID: id, StreamID: uint64(i + 1), Positions: []telemetry.Position{p},
				Events: []telemetry.Event{{Seq: 2, UnixMs: p.UnixMs, Type: telemetry.EventDTCSet, Code: "P0301"}}})
			c.Statuses = append(c.Statuses, cloud.DeviceStatus{VehicleID: id, Online: i%3 != 0, Time: now, StreamID: uint64(i + 1), NextSeq: 3,
				OutboxDepth: uint64(i % 50), FixMode: 3, Counters: map[string]uint64{"gps.bad_checksum": uint64(i % 7)}, ReceivedAt: now})
			states = append(states, cloud.VehicleState{VehicleID: id, UpdatedAt: now, Position: cloud.Position{
				VehicleID: id, StreamID: uint64(i + 1), Seq: 1, Time: time.UnixMilli(p.UnixMs).UTC(), Lat: p.Lat(), Lon: p.Lon()}})
		}
		if _, err := e.db.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.live.UpdateLatest(ctx, states); err != nil {
		b.Fatal(err)
	}
	sql, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer sql.Close()
	path := "/api/v1/vehicles?limit=10000"
	size := e.get(b, path) // warm up
	var body struct {
		Vehicles []json.RawMessage `json:"vehicles"`
		Source   string            `json:"source"`
	}
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Vehicles) != fleet || body.Source != "redis" {
		b.Fatalf("%d vehicles from %q, %v", len(body.Vehicles), body.Source, err)
	}
	for b.Loop() {
		e.get(b, path)
	}
	api := timed(60, func() { e.get(b, path) })
	base := timed(60, func() {
		rows, err := sql.Query(ctx, `SELECT v.id, v.first_seen, v.last_seen, v.pos_time, v.pos_lat_e7, v.pos_lon_e7, v.pos_speed_mmps,
	v.pos_course_cdeg, s.online, s.time, s.outbox_depth, s.fix_mode, s.counters
FROM vehicles v LEFT JOIN device_status s ON s.vehicle_id = v.id ORDER BY v.id`)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				b.Fatal(err)
			}
		}
		rows.Close()
	})
	b.ReportMetric(percentile(api, 0.50), "ms-p50")
	b.ReportMetric(percentile(api, 0.99), "ms-p99")
	b.ReportMetric(percentile(base, 0.99), "ms-p99-sql-baseline")
	b.ReportMetric(percentile(api, 0.99)/percentile(base, 0.99), "x-vs-sql")
	b.ReportMetric(float64(size)/(1<<20), "MiB-body")
}

// heapBytes returns the bytes of live and unswept heap objects now (cheap:
// no stop of the world).
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkAPITrackDay (api_track_day_ms): one vehicle's day at 1 Hz, 86,400
// fixes, as GeoJSON points (the larger of the two shapes), over HTTP and
// read whole by the client. Target p99 ≤ 500 ms with memory flat: the peak
// growth of the process's heap while serving it is reported next to the
// body's size. Baseline: the same day as JSON, page by page (9 pages of
// 10,000), as a client following next reads it.
func BenchmarkAPITrackDay(b *testing.B) {
	e := startAPI(b)
	ctx := context.Background()
	day := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	d := bench.NewDrive(1)
	const fixes = 86_400
	for chunk := 0; chunk < fixes; chunk += 10_000 {
		batch := &telemetry.Batch{VehicleID: "veh-day", StreamID: 1}
		for i := chunk; i < min(chunk+10_000, fixes); i++ {
			p := d.Next(day.Add(time.Duration(i)*time.Second), time.Second)
			p.Seq = uint64(i + 1)
			batch.Positions = append(batch.Positions, p)
		}
		if _, err := e.db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{batch}, ReceivedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	window := "from=" + day.Format(time.RFC3339) + "&to=" + day.Add(24*time.Hour).Format(time.RFC3339)
	geo := "/api/v1/vehicles/veh-day/positions?format=geojson&" + window
	size := e.get(b, geo)
	var pages int
	paged := func() {
		after := ""
		for pages = 1; ; pages++ {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/vehicles/veh-day/positions?limit=10000&"+window+after, nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Next string `json:"next"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			if page.Next == "" {
				return
			}
			after = "&after=" + page.Next
		}
	}
	for b.Loop() {
		e.get(b, geo)
	}
	// Memory: the heap's peak over its level before, sampled every
	// millisecond while the day is served and read.
	peakGrowth := func(f func()) uint64 {
		runtime.GC()
		before := heapBytes()
		var peak atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				if h := heapBytes(); h > peak.Load() {
					peak.Store(h)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		f()
		close(stop)
		<-done
		if p := peak.Load(); p > before {
			return p - before
		}
		return 0
	}
	geoGrowth := peakGrowth(func() { e.get(b, geo) })
	pagedGrowth := peakGrowth(paged)
	ts := timed(20, func() { e.get(b, geo) })
	base := timed(10, paged)
	b.ReportMetric(percentile(ts, 0.50), "ms-p50")
	b.ReportMetric(percentile(ts, 0.99), "ms-p99")
	b.ReportMetric(float64(size)/(1<<20), "MiB-body")
	b.ReportMetric(float64(geoGrowth)/(1<<20), "MiB-heap-peak-growth")
	b.ReportMetric(percentile(base, 0.99), "ms-p99-json-pages-baseline")
	b.ReportMetric(float64(pagedGrowth)/(1<<20), "MiB-heap-peak-growth-json-pages")
	b.ReportMetric(float64(pages), "json-pages")
}

// BenchmarkLiveFanout (live_fanout_p99_ms): 1,000 vehicles each publish a
// fix a second to the real cloud-server binary, and 200 clients follow its
// live stream (SSE); the latency of a fix is from its publish (its record
// time) to its arrival at a client. Target p99 ≤ 300 ms. CPU per client is
// derived: the server's CPU with the 200 clients less its CPU with none (the
// same ingest), over 200.
func BenchmarkLiveFanout(b *testing.B) {
	const (
		vehicles = 1000
		clients  = 200
		phase    = 15 * time.Second
	)
	bin := testenv.Binaries(b)
	dir := b.TempDir()
	redisURL, prefix := testenv.Redis(b)
	mqttURL, ns := testenv.MQTT(b)
	port := testenv.FreePort(b)
	clientID := "fgbench-fanout-" + testenv.ID()
	b.Cleanup(func() { // after the server has stopped (cleanups run last first)
		if err := mqtt.RemoveSession(context.Background(), mqttURL, clientID); err != nil {
			b.Errorf("remove the server's session: %v", err)
		}
	})
	proc := testenv.StartProcess(b, dir, "cloud-server", filepath.Join(bin, "cloud-server"), []string{
		"DATABASE_URL=" + testenv.Postgres(b), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=" + clientID,
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=warn", "LIVE_MAX_STREAMS_PER_TOKEN=1000", "API_RATE_LIMIT=0",
	}, "run")
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	e2e.WaitReady(b, time.Minute, cloudapi.Client{Base: base}, proc)
	token := e2e.Token(b, proc)

	pub := connect(b, paho.NewClientOptions().AddBroker(mqttURL).SetClientID("fgbench-fleet-"+testenv.ID()).SetOrderMatters(false))
	defer pub.Disconnect(100)
	nsp := telemetry.Namespace(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var published atomic.Int64
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	go func() { // each vehicle once a second: every 10 ms, the fixes due by then
		defer pubWG.Done()
		seq := make([]uint64, vehicles)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		begin, sent := time.Now(), int64(0)
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int64(time.Since(begin).Seconds() * vehicles)
			for ; sent < due; sent, i = sent+1, (i+1)%vehicles {
				seq[i]++
				id := fmt.Sprintf("fan-%04d", i)
				p := telemetry.Position{Seq: seq[i], UnixMs: time.Now().UnixMilli(), LatE7: 437384166 + int32(seq[i]), LonE7: 74246333 + int32(i)}
				payload, err := telemetry.EncodeBatch(&telemetry.Batch{VehicleID: id, StreamID: uint64(i + 1), Positions: []telemetry.Position{p}}, false)
				if err != nil {
					b.Error(err)
					return
				}
				topic, _ := nsp.Topic(id, telemetry.KindBatch)
				pub.Publish(topic, 1, false, payload) // QoS 1; not waited for: the broker keeps the pace
				published.Add(1)
			}
		}
	}()
	defer pubWG.Wait()
	defer cancel()

	usage := func() bench.Usage {
		u, err := bench.ReadUsage(proc.Cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return u
	}
	time.Sleep(5 * time.Second) // ingest warms up
	u0 := usage()
	time.Sleep(phase)
	cpuIngest := (usage().CPU - u0.CPU).Seconds() / phase.Seconds()

	// 200 clients; each keeps the latencies of every update it reads.
	var (
		mu        sync.Mutex
		latencies []time.Duration
		recording atomic.Bool
		received  atomic.Int64
		cwg       sync.WaitGroup
	)
	for range clients {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/live?types=position", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("open a stream: %v %v", resp, err)
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			defer resp.Body.Close()
			mine := make([]time.Duration, 0, 20_000)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Bytes()
				if len(line) < 6 || string(line[:6]) != "data: " {
					continue
				}
				now := time.Now()
				received.Add(1)
				if !recording.Load() {
					continue
				}
				// The fix's time, without decoding the whole event: the
				// clients share the machine with the server.
				if i := bytes.Index(line, []byte(`"time":"`)); i >= 0 && len(line) >= i+8+24 {
					if at, err := time.Parse(time.RFC3339Nano, string(line[i+8:i+8+24])); err == nil {
						mine = append(mine, now.Sub(at))
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(3 * time.Second)
	recording.Store(true)
	r0, u1, p0 := received.Load(), usage(), published.Load()
	start := time.Now()
	time.Sleep(phase)
	recording.Store(false)
	wall := time.Since(start)
	cpuFanout := (usage().CPU - u1.CPU).Seconds() / wall.Seconds()
	deliveries := received.Load() - r0
	pubs := published.Load() - p0
	for b.Loop() {
	}
	cancel()
	cwg.Wait()
	if len(latencies) == 0 {
		b.Fatal("no update reached a client")
	}
	b.ReportMetric(percentile(latencies, 0.50), "ms-p50")
	b.ReportMetric(percentile(latencies, 0.99), "ms-p99")
	b.ReportMetric(percentile(latencies, 1), "ms-max")
	b.ReportMetric(float64(deliveries)/float64(pubs*clients), "delivered-fraction")
	b.ReportMetric(100*cpuIngest, "%CPU-server-ingest-only")
	b.ReportMetric(100*cpuFanout, "%CPU-server-with-200-clients")
	b.ReportMetric(100*(cpuFanout-cpuIngest)/clients, "%CPU-per-client-derived")
	b.ReportMetric(float64(pubs)/wall.Seconds(), "fixes/s")
}
