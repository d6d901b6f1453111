package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// scenarioChain is the real chain driven by a simulator scenario: the cloud,
// firmware-sim running the scenario, one agent per vehicle connected to the
// broker through the simulator's uplink proxy.
type scenarioChain struct {
	dir      string
	api      cloudapi.Client
	cloud    *testenv.Proc
	sim      *testenv.Proc
	agents   map[string]*testenv.Proc
	vehicles []string
	truth    string
	start    time.Time
	db       string // the cloud's database
}

// startScenarioChain runs scenario (a file or a built-in name) with a unique
// id prefix, a private namespace and database, the given speed and start.
func startScenarioChain(t *testing.T, scenario string, vehicles []string, speed int, start time.Time) *scenarioChain {
	t.Helper()
	c := &scenarioChain{dir: t.TempDir(), agents: map[string]*testenv.Proc{}, start: start}
	bin := testenv.Binaries(t)
	dbURL := testenv.Postgres(t)
	c.db = dbURL
	redisURL, prefix := testenv.Redis(t)
	mqttURL, ns := testenv.MQTT(t)
	port := testenv.FreePort(t)
	c.api = cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}
	c.cloud = testenv.StartProcess(t, c.dir, "cloud-server", filepath.Join(bin, "cloud-server"), []string{
		"DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=e2e-cloud-" + testenv.ID(),
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "TRIP_INTERVAL=1s",
	}, "run")
	e2e.WaitReady(t, 30*time.Second, c.api, c.cloud)
	c.api.Token = e2e.Token(t, c.cloud)

	idPrefix := "sim" + testenv.ID() + "-"
	links := filepath.Join(c.dir, "dev")
	c.truth = filepath.Join(c.dir, "truth.jsonl")
	c.sim = testenv.StartProcess(t, c.dir, "firmware-sim", filepath.Join(bin, "firmware-sim"), nil, "run",
		"--scenario", scenario, "--id-prefix", idPrefix, "--speed", strconv.Itoa(speed), "--start", start.Format(time.RFC3339),
		"--truth", c.truth, "--link-dir", links, "--uplink-proxy", mqttURL)
	proxies := map[string]string{}
	proxyLine := regexp.MustCompile(`^(\S+) uplink (tcp://\S+) -> `)
	testenv.Eventually(t, 30*time.Second, "the simulator's ports and proxies", func() error {
		f, err := os.Open(c.sim.Log)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := proxyLine.FindStringSubmatch(sc.Text()); m != nil {
				proxies[m[1]] = m[2]
			}
			if sc.Text() == "ready" && len(proxies) == len(vehicles) {
				return nil
			}
		}
		return fmt.Errorf("no ready line yet (%d proxies)", len(proxies))
	}, c.sim)
	for _, v := range vehicles {
		id := idPrefix + v
		c.vehicles = append(c.vehicles, id)
		cfg := filepath.Join(c.dir, id+".yaml")
		yml, err := yaml.Marshal(map[string]any{
			"vehicle_id": id,
			"data_dir":   filepath.Join(c.dir, id+"-data"),
			// The receiver's own rate: baud detection is not what these tests are about.
			"gps":    map[string]any{"port": "serial://" + filepath.Join(links, id+"-gps") + "?baud=9600"},
			"obd":    map[string]any{"port": filepath.Join(links, id+"-obd"), "pids": []string{"0C", "0D", "05"}, "interval": "200ms"},
			"mqtt":   map[string]any{"url": proxies[id], "namespace": ns, "client_id": "e2e-" + id}, // through the uplink proxy
			"outbox": map[string]any{"flush_interval": "100ms"},
			"uplink": map[string]any{"min_batch_age": "300ms"},
			"http":   map[string]any{"listen": ""},
			"log":    map[string]any{"level": "debug"},
		})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, cfg, string(yml))
		c.agents[id] = testenv.StartProcess(t, c.dir, "edge-agent-"+id, filepath.Join(bin, "edge-agent"), nil, "run", "--config", cfg)
	}
	return c
}

// waitEnd waits for the end line of every vehicle and returns the truth.
func (c *scenarioChain) waitEnd(t *testing.T, within time.Duration) []truth.Line {
	t.Helper()
	procs := []*testenv.Proc{c.sim, c.cloud}
	for _, a := range c.agents {
		procs = append(procs, a)
	}
	var lines []truth.Line
	testenv.Eventually(t, within, "the end of every drive", func() error {
		f, err := os.Open(c.truth)
		if err != nil {
			return err
		}
		defer f.Close()
		if lines, err = truth.Read(f); err != nil {
			return err
		}
		ends := 0
		for _, l := range lines {
			if l.Type == "end" {
				ends++
			}
		}
		if ends < len(c.vehicles) {
			return fmt.Errorf("%d of %d end lines (%d lines so far)", ends, len(c.vehicles), len(lines))
		}
		return nil
	}, procs...)
	return lines
}

// window is a time span of simulated time in which no fix may exist.
type window struct {
	vehicle  string // "" for every vehicle
	from, to time.Time
	why      string
}

// checkAgainstTruth diffs the API with the truth: every fix and OBD sample
// emitted is stored exactly once, nothing else is, and no fix lies in a
// window where the receiver had none to give.
func (c *scenarioChain) checkAgainstTruth(t *testing.T, lines []truth.Line, noFix []window) {
	t.Helper()
	ctx := context.Background()
	from, to := c.start.Add(-24*time.Hour), time.Now().Add(time.Hour)
	tr := truth.Vehicles(lines)
	for _, v := range c.vehicles {
		fixes, samples := tr[v].Fixes, tr[v].OBD
		for _, f := range fixes {
			for _, w := range noFix {
				if (w.vehicle == "" || strings.HasSuffix(v, "-"+w.vehicle)) && !f.Time.Before(w.from) && f.Time.Before(w.to) {
					t.Errorf("%s: the truth has a fix at %v, during %s", v, f.Time, w.why)
				}
			}
		}
		if len(fixes) < 100 || len(samples) < 10 {
			t.Fatalf("%s: the simulator emitted only %d fixes and %d OBD samples", v, len(fixes), len(samples))
		}
		var fd, od truth.Diff
		var stored []cloudapi.Position
		testenv.Eventually(t, 90*time.Second, v+" data in the API", func() error {
			ps, err := c.api.Positions(ctx, v, from, to)
			if err != nil {
				return err
			}
			obd, err := c.api.OBD(ctx, v, from, to)
			if err != nil {
				return err
			}
			stored = ps
			fd, od = truth.CompareFixes(fixes, ps), truth.CompareOBD(samples, obd)
			if fd.Stored < fd.Truth || od.Stored < od.Truth {
				return fmt.Errorf("positions: %v; obd: %v", fd, od)
			}
			return nil
		}, c.cloud)
		if !fd.OK() {
			t.Errorf("%s positions: %v", v, fd)
		}
		if !od.OK() {
			t.Errorf("%s OBD samples: %v", v, od)
		}
		for _, p := range stored {
			for _, w := range noFix {
				if (w.vehicle == "" || strings.HasSuffix(v, "-"+w.vehicle)) && !p.Time.Before(w.from) && p.Time.Before(w.to) {
					t.Errorf("%s: the API has a position at %v, during %s", v, p.Time, w.why)
				}
			}
		}
		t.Logf("%s: %d fixes and %d OBD samples emitted, each stored exactly once", v, fd.Truth, od.Truth)
	}
}

// checkDeletedSample deletes one OBD sample of the first vehicle from
// PostgreSQL and checks that the comparison with the truth then finds it
// missing, and nothing else: it holds the cloud to every sample.
func (c *scenarioChain) checkDeletedSample(t *testing.T, lines []truth.Line) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	v := c.vehicles[0]
	var pid int32
	var value float64
	if err := conn.QueryRow(ctx, `DELETE FROM obd_samples WHERE (vehicle_id, stream_id, seq, time) =
  (SELECT vehicle_id, stream_id, seq, time FROM obd_samples WHERE vehicle_id = $1 ORDER BY stream_id, seq OFFSET 20 LIMIT 1)
RETURNING pid, value`, v).Scan(&pid, &value); err != nil {
		t.Fatal(err)
	}
	stored, err := c.api.OBD(ctx, v, c.start.Add(-24*time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d := truth.CompareOBD(truth.Vehicles(lines)[v].OBD, stored)
	if d.Missing != 1 || d.Stored != d.Truth-1 || d.Duplicated+d.Unexpected+d.Mismatched != 0 {
		t.Errorf("%s, sample of PID %04X = %g deleted from PostgreSQL: %v; want exactly that one missing", v, pid, value, d)
	}
	t.Logf("%s, sample of PID %04X = %g deleted from PostgreSQL: %v", v, pid, value, d)
}

// checkUplinkCut checks that uplink_down really took the agent's network: once
// the truth says the uplink is down, the vehicle's positions stop reaching
// the cloud (the count stays the same for a second, while the simulator,
// hundreds of times faster than real time, emits hundreds of fixes), until
// the truth says it is back.
func (c *scenarioChain) checkUplinkCut(t *testing.T, vehicle string) {
	t.Helper()
	ctx := context.Background()
	phase := func(p string) bool {
		f, err := os.Open(c.truth)
		if err != nil {
			return false
		}
		defer f.Close()
		lines, _ := truth.Read(f)
		for _, l := range lines {
			if l.Type == "fault" && l.Fault == "uplink_down" && l.Phase == p {
				return true
			}
		}
		return false
	}
	testenv.Eventually(t, 120*time.Second, "uplink_down in the truth", func() error {
		if !phase("begin") {
			return fmt.Errorf("not yet")
		}
		return nil
	}, c.sim)
	stored := func() int {
		ps, err := c.api.Positions(ctx, vehicle, c.start.Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	last, changed := stored(), time.Now()
	testenv.Eventually(t, 60*time.Second, "positions to stop arriving while the uplink is down", func() error {
		if phase("end") {
			t.Fatal("the outage ended before the positions stopped arriving for a second")
		}
		if n := stored(); n != last {
			last, changed = n, time.Now()
			return fmt.Errorf("%d positions stored, still growing", n)
		}
		if time.Since(changed) < time.Second {
			return fmt.Errorf("%d positions stored, the same for %v", last, time.Since(changed))
		}
		return nil
	}, c.sim)
}

// checkTrips compares the cloud's trips of each vehicle with those of the
// truth's ignition lines (firmware-sim diff's rules and tolerance).
func (c *scenarioChain) checkTrips(t *testing.T, lines []truth.Line, within time.Duration) map[string]truth.Diff {
	t.Helper()
	return checkTrips(t, c.api, c.cloud, c.vehicles, truth.Vehicles(lines), c.start.Add(-24*time.Hour), within)
}

// checkTrips compares the trips the API returns of each vehicle (from
// from) with those of its truth, once the trip job has caught up: they
// have not changed for three of its rounds (the cloud runs with
// TRIP_INTERVAL=1s). It returns the comparisons.
func checkTrips(t *testing.T, api cloudapi.Client, cloud *testenv.Proc, vehicles []string, tr map[string]truth.Vehicle, from time.Time, within time.Duration) map[string]truth.Diff {
	t.Helper()
	ctx := context.Background()
	out := map[string]truth.Diff{}
	for _, v := range vehicles {
		want := truth.Trips(tr[v], truth.DefaultTripRules())
		var d truth.Diff
		var stored []cloudapi.Trip
		last, since := "", time.Now()
		testenv.Eventually(t, within, v+" trips as the truth's", func() error {
			var err error
			if stored, err = api.Trips(ctx, v, from, time.Now().Add(time.Hour)); err != nil {
				return err
			}
			now := ""
			for _, s := range stored {
				now += fmt.Sprintf("%d %v %v %v %.3f;", s.ID, s.Start.Time, s.End.Time, s.Open, s.DistanceM)
			}
			if now != last {
				last, since = now, time.Now()
			}
			if time.Since(since) < 3*time.Second {
				return fmt.Errorf("the trips changed %v ago", time.Since(since))
			}
			if d = truth.CompareTrips(want, stored, truth.DefaultTripTolerance()); !d.OK() {
				return fmt.Errorf("%v", d)
			}
			return nil
		}, cloud)
		for _, s := range stored {
			t.Logf("%s: stored trip %v to %v, %.0f m, open %v (truth: %v)", v, s.Start.Time, s.End.Time, s.DistanceM, s.Open, want)
		}
		out[v] = d
	}
	return out
}

// stop stops the agents, the simulator and the cloud, each of which must
// exit cleanly.
func (c *scenarioChain) stop(t *testing.T) {
	t.Helper()
	for name, p := range c.agents {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s exited with %v on SIGTERM", name, err)
		}
	}
	for _, p := range []*testenv.Proc{c.sim, c.cloud} {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s exited with %v on SIGTERM", p.Name, err)
		}
	}
}

// faultLines returns the truth's fault lines as "vehicle-suffix fault device
// phase +offset", for the log and the checks.
func faultLines(lines []truth.Line, start time.Time) []string {
	var out []string
	for _, l := range lines {
		if l.Type == "fault" {
			out = append(out, fmt.Sprintf("%s %s %s %s +%v", l.Vehicle[strings.LastIndexByte(l.Vehicle, '-')+1:], l.Fault, l.Device, l.Phase, l.Time.Sub(start)))
		}
	}
	return out
}

const faultScenario = `name: e2e-faults
seed: 7
duration: 6m
vehicles:
  - id: a
    route: monaco-tunnel
    gps: {noise: true, cold_start: 15s}
  - id: b
    route: monaco-loop
    gps: {noise: true, talker: GN, sentences: [RMC, GGA, GSA, GSV, VTG]}
faults:
  - {at: 40s, kind: fix_loss, duration: 20s}
  - {at: 70s, kind: unplug, device: obd, duration: 10s}
  - {at: 90s, kind: unplug, device: gps, vehicle: a, duration: 15s}
  - {at: 120s, kind: garbage, device: gps, bytes: 300}
  - {at: 150s, kind: bad_checksum, duration: 10s}
  - {at: 180s, kind: uplink_down, duration: 90s}
  - {at: 200s, kind: can_error, count: 3}
  - {at: 220s, kind: ignition_off, vehicle: b, duration: 40s}
  - {at: 240s, kind: garbage, device: obd, bytes: 64}
`

// TestSimScenarioAgainstTheChain runs a scenario full of faults — a cold
// start with noise, the tunnel, fix loss, OBD and GPS unplugged, garbage,
// bad checksums, the uplink cut for 90 s, CAN ERROR, the ignition off — with
// the real agent and cloud, and diffs the API with the ground truth: every
// fix and sample emitted is stored exactly once, and no position exists
// where the receiver had no fix to give.
func TestSimScenarioAgainstTheChain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faults.yaml")
	writeFile(t, path, faultScenario)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	c := startScenarioChain(t, path, []string{"a", "b"}, 20, start)
	lines := c.waitEnd(t, 120*time.Second)

	got := strings.Join(faultLines(lines, start), "\n")
	for _, want := range []string{"a fix_loss gps begin +40s", "b fix_loss gps end +1m0s", "a unplug obd begin +1m10s", "a unplug gps begin +1m30s",
		"b garbage gps instant +2m0s", "a bad_checksum gps end +2m40s", "b uplink_down uplink begin +3m0s", "b uplink_down uplink end +4m30s",
		"a can_error obd instant +3m20s", "b ignition_off vehicle begin +3m40s", "a garbage obd instant +4m0s"} {
		if !strings.Contains(got, want) {
			t.Errorf("no fault line %q in the truth:\n%s", want, got)
		}
	}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	c.checkAgainstTruth(t, lines, []window{
		{"", at(40 * time.Second), at(60 * time.Second), "fix_loss"},
		{"a", at(90 * time.Second), at(105 * time.Second), "the GPS unplug"},
		{"", at(150 * time.Second), at(160 * time.Second), "bad checksums"},
		{"a", at(0), at(15 * time.Second), "the cold start"},
	})
	c.checkDeletedSample(t, lines)
	c.stop(t)
}

// TestSimDoneWhen is the tester's loop of the README: the built-in scenario that
// drives the loop for two hours, loses GPS in the tunnel every lap, unplugs
// OBD for 10 s and kills the uplink for an hour, run against the real agent
// (200 times faster than real time); the cloud's data diffed with the truth.
func TestSimDoneWhen(t *testing.T) {
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	c := startScenarioChain(t, "tunnel-unplug-outage", []string{"veh-001"}, 200, start)
	c.checkUplinkCut(t, c.vehicles[0])
	// While the uplink is down: the trip the cloud has so far is the
	// truth's so far (going on: its start is compared).
	f, err := os.Open(c.truth)
	if err != nil {
		t.Fatal(err)
	}
	sofar, err := truth.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.checkTrips(t, sofar, 60*time.Second)
	lines := c.waitEnd(t, 180*time.Second)
	got := faultLines(lines, start)
	want := []string{"001 unplug obd begin +5m0s", "001 unplug obd end +5m10s", "001 uplink_down uplink begin +20m0s", "001 uplink_down uplink end +1h20m0s"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fault lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fixes := 0
	for _, l := range lines {
		if l.Type == "fix" {
			fixes++
		}
	}
	// Two hours at 1 Hz, less the tunnel each lap (a lap is about six
	// minutes, half a minute of it without a fix).
	if fixes < 6000 || fixes > 7000 {
		t.Errorf("%d fixes in two hours", fixes)
	}
	c.checkAgainstTruth(t, lines, nil)
	// After the drain: the whole trip, start, end and distance.
	c.checkTrips(t, lines, 60*time.Second)
	c.stop(t)
}

const stallScenario = `name: e2e-stall
seed: 7
duration: 10m
vehicles:
  - id: a
    route: monaco-loop
  - id: b
    route: monaco-harbour
`

// TestSimStallAgainstTheChain stops the simulator (SIGSTOP) for 3 s, twice,
// while the agents poll the engine: as behind a slow link, or on a loaded
// machine where the process is not scheduled, the adapter's replies come
// after the agent's 2 s timeout, while it resyncs. Each such reply is still
// the answer to its request: every sample the simulator sent is stored
// exactly once, and each agent's last status counts late replies. (After
// the first, the agent's timeouts have grown with the latency it measured,
// so the second stall may end in time.)
func TestSimStallAgainstTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stall.yaml")
	writeFile(t, path, stallScenario)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	c := startScenarioChain(t, path, []string{"a", "b"}, 20, start)
	testenv.Eventually(t, 60*time.Second, "OBD samples of every vehicle in the truth", func() error {
		f, err := os.Open(c.truth)
		if err != nil {
			return err
		}
		defer f.Close()
		lines, err := truth.Read(f)
		if err != nil {
			return err
		}
		for _, v := range c.vehicles {
			if n := len(truth.Vehicles(lines)[v].OBD); n < 10 {
				return fmt.Errorf("%s: %d samples", v, n)
			}
		}
		return nil
	}, c.sim)
	for range 2 {
		stall(t, c.sim, 3*time.Second)
		time.Sleep(time.Second)
	}
	lines := c.waitEnd(t, 120*time.Second)
	c.checkAgainstTruth(t, lines, nil)
	for name, p := range c.agents {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s exited with %v on SIGTERM", name, err)
		}
	}
	for _, v := range c.vehicles {
		var got struct {
			Device *struct {
				Online   bool              `json:"online"`
				Counters map[string]uint64 `json:"counters"`
			} `json:"device"`
		}
		testenv.Eventually(t, 30*time.Second, v+"'s offline status", func() error {
			if err := c.api.Get(context.Background(), "/api/v1/vehicles/"+v, &got); err != nil {
				return err
			}
			return testenv.True(got.Device != nil && !got.Device.Online)
		}, c.cloud)
		late, timeouts := got.Device.Counters["obd.late_replies"], got.Device.Counters["obd.errors.timeout"]
		if late == 0 {
			t.Errorf("%s: no reply came after its request timed out (obd.errors.timeout %d): the stalls did not test it", v, timeouts)
		}
		t.Logf("%s: %d requests timed out, %d replies came late", v, timeouts, late)
	}
	c.checkDeletedSample(t, lines)
	c.stop(t)
}

// stall stops p for d, as the scheduler of a loaded machine can.
func stall(t *testing.T, p *testenv.Proc, d time.Duration) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}()
	time.Sleep(d)
}
