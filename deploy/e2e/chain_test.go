package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Chain holds one running chain: cloud, simulator, agents.
type Chain struct {
	Dir      string
	Bin      string
	DB       string // the test's PostgreSQL database
	API      cloudapi.Client
	Cloud    *testenv.Proc
	Sim      *testenv.Proc
	Agents   map[string]*testenv.Proc
	Vehicles []string
	Truth    string
	Start    time.Time
	Duration time.Duration
	Batches  *BatchWatch // the agents' batches, by protocol version, as the broker carried them
}

// ChainOptions say how to drive the chain.
type ChainOptions struct {
	Vehicles int
	Speed    int           // simulated seconds per real second
	Duration time.Duration // simulated driving time
	PIDs     []string
}

// StartChain starts cloud-server, firmware-sim and one edge-agent per vehicle, all
// against this machine's real PostgreSQL (a fresh database), Redis (a private key
// prefix) and Mosquitto (a private topic namespace).
func StartChain(t *testing.T, o ChainOptions) *Chain {
	t.Helper()
	c := &Chain{Dir: t.TempDir(), Bin: testenv.Binaries(t), Agents: map[string]*testenv.Proc{}, Duration: o.Duration}
	dbURL := testenv.Postgres(t)
	c.DB = dbURL
	redisURL, prefix := testenv.Redis(t)
	mqttURL, ns := testenv.MQTT(t)
	port := testenv.FreePort(t)
	c.API = cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}

	c.Cloud = testenv.StartProcess(t, c.Dir, "cloud-server", filepath.Join(c.Bin, "cloud-server"), []string{
		"DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=e2e-cloud-" + testenv.ID(),
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=debug", "TRIP_INTERVAL=1s",
	}, "run")
	e2e.WaitReady(t, 30*time.Second, c.API, c.Cloud)
	c.API.Token = e2e.Token(t, c.Cloud)
	c.Batches = WatchBatches(t, mqttURL, telemetry.Namespace(ns))

	// Simulated time runs in the past, so that accelerated time never produces
	// fixes from the future.
	c.Start = time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	links := filepath.Join(c.Dir, "dev")
	c.Truth = filepath.Join(c.Dir, "truth.jsonl")
	prefixID := "e2e" + testenv.ID() + "-"
	c.Sim = testenv.StartProcess(t, c.Dir, "firmware-sim", filepath.Join(c.Bin, "firmware-sim"), nil, "run",
		"--vehicles", strconv.Itoa(o.Vehicles), "--id-prefix", prefixID,
		"--speed", strconv.Itoa(o.Speed), "--start", c.Start.Format(time.RFC3339),
		"--duration", o.Duration.String(), "--truth", c.Truth, "--link-dir", links, "--seed", "7")
	for i := 1; i <= o.Vehicles; i++ {
		c.Vehicles = append(c.Vehicles, fmt.Sprintf("%s%03d", prefixID, i))
	}
	for _, v := range c.Vehicles {
		for _, dev := range []string{"gps", "obd"} {
			link := filepath.Join(links, v+"-"+dev)
			testenv.Eventually(t, 20*time.Second, link, func() error { _, err := os.Stat(link); return err }, c.Sim)
		}
	}
	for _, v := range c.Vehicles {
		cfg := filepath.Join(c.Dir, v+".yaml")
		pids := ""
		for _, p := range o.PIDs {
			pids += `"` + p + `", `
		}
		writeFile(t, cfg, fmt.Sprintf(`vehicle_id: %s
data_dir: %s
gps:
  port: %s
obd:
  port: %s
  pids: [%s]
  interval: 200ms
mqtt:
  url: %s
  namespace: %s
  client_id: e2e-%s
outbox:
  flush_interval: 100ms
uplink:
  min_batch_age: 300ms
http:
  listen: ""
log:
  level: debug
`, v, filepath.Join(c.Dir, v+"-data"), filepath.Join(links, v+"-gps"), filepath.Join(links, v+"-obd"),
			pids, mqttURL, ns, v))
		c.Agents[v] = testenv.StartProcess(t, c.Dir, "edge-agent-"+v, filepath.Join(c.Bin, "edge-agent"), nil, "run", "--config", cfg)
	}
	return c
}

// WaitTruthEnd waits until the simulator has written the end line of every
// vehicle, and returns the truth by vehicle.
func (c *Chain) WaitTruthEnd(t *testing.T, within time.Duration) map[string]truth.Vehicle {
	t.Helper()
	var tr map[string]truth.Vehicle
	procs := []*testenv.Proc{c.Sim, c.Cloud}
	for _, a := range c.Agents {
		procs = append(procs, a)
	}
	testenv.Eventually(t, within, "the simulator's end of drive", func() error {
		lines, err := truth.ReadFile(c.Truth)
		if err != nil {
			return err
		}
		tr = truth.Vehicles(lines)
		for _, v := range c.Vehicles {
			if !tr[v].Ended {
				return fmt.Errorf("no end line for %s yet (%d fixes so far)", v, len(tr[v].Fixes))
			}
		}
		return nil
	}, procs...)
	return tr
}

// BatchWatch counts, per vehicle, the batches published in each protocol
// version, seen through plain subscriptions beside the cloud's shared ones.
type BatchWatch struct {
	mu sync.Mutex
	n  map[string]map[telemetry.Kind]int // vehicle → topic kind → batches
}

// WatchBatches subscribes to every vehicle's batches of both versions until
// the test ends.
func WatchBatches(t *testing.T, url string, ns telemetry.Namespace) *BatchWatch {
	t.Helper()
	w := &BatchWatch{n: map[string]map[telemetry.Kind]int{}}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fgtest-watch-" + testenv.ID()).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("watch the batches: connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	filters := map[string]byte{ns.Filter(telemetry.KindBatch): 1, ns.Filter(telemetry.KindBatchV2): 1}
	tok := c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		vehicle, kind, err := ns.Parse(m.Topic())
		if err != nil {
			t.Errorf("batch on %s: %v", m.Topic(), err)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.n[vehicle] == nil {
			w.n[vehicle] = map[telemetry.Kind]int{}
		}
		w.n[vehicle][kind]++
	})
	if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("watch the batches: subscribe: %v", tok.Error())
	}
	return w
}

// Counts returns how many batches vehicle published in version 1 and in
// version 2 so far.
func (w *BatchWatch) Counts(vehicle string) (v1, v2 int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[vehicle][telemetry.KindBatch], w.n[vehicle][telemetry.KindBatchV2]
}

// cloudMetric returns the value of one series of the cloud's /metrics
// (name{labels}, as Prometheus's text format writes it), 0 when absent.
func cloudMetric(t *testing.T, c *Chain, series string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.API.Base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.API.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s in /metrics: %v", series, err)
	}
	return v
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestChain drives the whole chain — simulator, two real ptys per vehicle, the
// agent, Mosquitto, the cloud, PostgreSQL and Redis — and checks that every fix
// and every OBD sample the simulator emitted is in the API exactly once, with the
// coordinates within 1e-6° and the fix times to the millisecond. Then the
// tester's command, firmware-sim diff, must say the same, and name a fix
// deleted from PostgreSQL.
func TestChain(t *testing.T) {
	c := StartChain(t, ChainOptions{Vehicles: 2, Speed: 20, Duration: 2 * time.Minute, PIDs: []string{"0C", "0D", "05"}})
	tr := c.WaitTruthEnd(t, 60*time.Second)

	ctx := context.Background()
	from, to := c.Start.Add(-time.Hour), time.Now().Add(time.Hour)
	for _, v := range c.Vehicles {
		fixes, samples := tr[v].Fixes, tr[v].OBD
		// A real drive: at 1 Hz for two simulated minutes, about 120 fixes; OBD
		// polled every 200 ms of real time for 6 s, tens of samples.
		if len(fixes) < 100 || len(samples) < 10 {
			t.Fatalf("%s: the simulator emitted only %d fixes and %d OBD samples", v, len(fixes), len(samples))
		}
		var fd, od truth.Diff
		testenv.Eventually(t, 60*time.Second, v+" data in the API", func() error {
			ps, err := c.API.Positions(ctx, v, from, to)
			if err != nil {
				return err
			}
			obd, err := c.API.OBD(ctx, v, from, to)
			if err != nil {
				return err
			}
			fd, od = truth.CompareFixes(fixes, ps), truth.CompareOBD(samples, obd)
			if fd.Stored < fd.Truth || od.Stored < od.Truth {
				return fmt.Errorf("positions: %v; obd: %v", fd, od)
			}
			return nil
		}, c.Cloud)
		if !fd.OK() {
			t.Errorf("%s positions: %v", v, fd)
		}
		if !od.OK() {
			t.Errorf("%s OBD samples: %v", v, od)
		}
		t.Logf("%s: %d fixes and %d OBD samples, all stored exactly once", v, fd.Truth, od.Truth)
	}

	// Protocol version 2: each agent began in version 1 and switched once
	// the cloud's first Ack said it reads version 2; the data above came
	// through both, none of it lost or stored twice.
	for _, v := range c.Vehicles {
		v1, v2 := c.Batches.Counts(v)
		if v2 == 0 {
			t.Errorf("%s published %d batches in version 1 and none in version 2: it never switched", v, v1)
		}
		t.Logf("%s: %d batches in version 1, then %d in version 2", v, v1, v2)
	}
	received := cloudMetric(t, c, `fleetgate_ingest_messages_received_total{version="2"}`)
	if received == 0 {
		t.Errorf("the cloud counts no message received in version 2")
	}
	for _, reason := range []string{"topic", "decode", "invalid"} {
		if n := cloudMetric(t, c, `fleetgate_ingest_dead_letters_total{reason="`+reason+`"}`); n != 0 {
			t.Errorf("the cloud dead-lettered %v messages for %s", n, reason)
		}
	}

	// The trips too: one per vehicle, the two minutes of its drive.
	checkTrips(t, c.API, c.Cloud, c.Vehicles, tr, from, 60*time.Second)
	checkDiffCommand(t, c)

	var list struct {
		Vehicles []struct {
			ID       string `json:"id"`
			Position *struct {
				Lat float64 `json:"lat"`
				Lon float64 `json:"lon"`
			} `json:"position"`
		} `json:"vehicles"`
	}
	if err := c.API.Get(ctx, "/api/v1/vehicles", &list); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, v := range list.Vehicles {
		listed[v.ID] = v.Position != nil
	}
	for _, v := range c.Vehicles {
		if !listed[v] {
			t.Errorf("GET /api/v1/vehicles does not list %s with a position: %+v", v, list.Vehicles)
		}
	}

	for name, p := range c.Agents {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s exited with %v on SIGTERM", name, err)
		}
	}
	for _, p := range []*testenv.Proc{c.Sim, c.Cloud} {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s exited with %v on SIGTERM", p.Name, err)
		}
	}
}

// checkDiffCommand runs firmware-sim diff on the chain's truth against its
// cloud: everything matches (exit 0); then, with one position deleted from
// PostgreSQL, the fix is named missing (exit 1).
func checkDiffCommand(t *testing.T, c *Chain) {
	t.Helper()
	diff := func() (int, string) {
		out, err := exec.Command(filepath.Join(c.Bin, "firmware-sim"), "diff", "--truth", c.Truth, "--api", c.API.Base, "--token", c.API.Token).CombinedOutput()
		if exit, ok := errors.AsType[*exec.ExitError](err); ok {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("firmware-sim diff: %v", err)
		}
		return 0, string(out)
	}
	if code, out := diff(); code != 0 || !strings.Contains(out, "match: 2 vehicles") {
		t.Errorf("firmware-sim diff: exit %d, want 0:\n%s", code, out)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var at time.Time
	var lat, lon int32
	if err := conn.QueryRow(ctx, `DELETE FROM positions WHERE (vehicle_id, stream_id, seq, time) =
  (SELECT vehicle_id, stream_id, seq, time FROM positions WHERE vehicle_id = $1 ORDER BY time OFFSET 10 LIMIT 1)
RETURNING time, lat_e7, lon_e7`, c.Vehicles[1]).Scan(&at, &lat, &lon); err != nil {
		t.Fatal(err)
	}
	code, out := diff()
	missing := fmt.Sprintf("  missing: fix %s %.7f,%.7f not stored\n", at.UTC().Format(truth.TimeFormat), float64(lat)/1e7, float64(lon)/1e7)
	verdict := "\nDIFFERS: 1 of 2 vehicles: " + c.Vehicles[1] + " (fixes 1 missing)\n"
	if code != 1 || !strings.Contains(out, missing) || !strings.HasSuffix(out, verdict) {
		t.Errorf("firmware-sim diff after deleting the position at %s: exit %d, want 1, %q and %q:\n%s", at, code, missing, verdict, out)
	}
	t.Logf("firmware-sim diff after deleting a position:\n%s", out)
}
