package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

func TestCheckNamesDownServicesAndHowToStartThem(t *testing.T) {
	pg, rd, mq := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"check"}, env(map[string]string{
		"DATABASE_URL": fmt.Sprintf("postgres://postgres@127.0.0.1:%d/fleetgate?sslmode=disable", pg),
		"REDIS_URL":    fmt.Sprintf("redis://127.0.0.1:%d/0", rd),
		"MQTT_URL":     fmt.Sprintf("tcp://127.0.0.1:%d", mq),
	}), &out, &errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		fmt.Sprintf("PostgreSQL is not reachable at 127.0.0.1:%d: ", pg),
		"  start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n",
		fmt.Sprintf("Redis is not reachable at 127.0.0.1:%d: ", rd),
		`  start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log` + "\n",
		fmt.Sprintf("MQTT broker is not reachable at 127.0.0.1:%d: ", mq),
		"  start it with: mosquitto -d -c /etc/mosquitto/mosquitto.conf\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckAllUp(t *testing.T) {
	mqttURL, _ := testenv.MQTT(t)
	redisURL, _ := testenv.Redis(t)
	var out bytes.Buffer
	// The database need not exist yet: migrate creates it.
	code := Main(context.Background(), []string{"check"}, env(map[string]string{
		"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/fg_missing_" + testenv.ID() + "?sslmode=disable",
		"REDIS_URL":    redisURL, "MQTT_URL": mqttURL,
	}), &out, &out)
	if code != 0 || strings.Count(out.String(), " is reachable at ") != 3 {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}

func TestUsageAndBadConfig(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{nil, nil, 2, "usage: cloud-server"},
		{[]string{"fly"}, nil, 2, `unknown command "fly"`},
		{[]string{"run"}, map[string]string{"LOG_LEVEL": "loud"}, 2, "LOG_LEVEL"},
		{[]string{"healthcheck"}, map[string]string{"LISTEN_ADDR": fmt.Sprintf(":%d", testenv.FreePort(t))}, 1, "/health"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		code := Main(context.Background(), tt.args, env(tt.env), &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	u := testenv.Postgres(t)
	for range 2 {
		var out bytes.Buffer
		if code := Main(context.Background(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": u}), &out, &out); code != 0 {
			t.Fatalf("exit %d: %s", code, out.String())
		}
	}
}

// TestRunServesIngestsAndStopsOnSIGTERM runs the real binary against the
// real services: a batch published as an agent would is acked and served by
// the API, /ready and healthcheck pass, and SIGTERM stops it cleanly.
func TestRunServesIngestsAndStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cloud-server")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mqttURL, ns := testenv.MQTT(t)
	redisURL, prefix := testenv.Redis(t)
	port := testenv.FreePort(t)
	clientID := "fgtest-cloud-" + testenv.ID()
	vars := []string{
		"DATABASE_URL=" + testenv.Postgres(t), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=" + clientID,
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port), "LOG_LEVEL=debug",
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), vars...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(clientID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
		if t.Failed() {
			t.Logf("cloud-server output:\n%s", logs.String())
		}
	})
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Eventually(t, time.Minute, "/ready", func() error {
		resp, err := http.Get(api + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /ready: %s", resp.Status)
		}
		return nil
	})
	hc := exec.Command(bin, "healthcheck")
	hc.Env = append(os.Environ(), vars...)
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("healthcheck: %v %s", err, out)
	}

	agent := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID("fgtest-agent-" + testenv.ID()))
	if tok := agent.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("agent connect: %v", tok.Error())
	}
	defer agent.Disconnect(100)
	nsp := telemetry.Namespace(ns)
	acks := make(chan *telemetrypb.Ack, 1)
	ackTopic, _ := nsp.Topic("veh-001", telemetry.KindAck)
	if tok := agent.Subscribe(ackTopic, 1, func(_ paho.Client, m paho.Message) {
		var a telemetrypb.Ack
		if telemetry.Decode(m.Payload(), &a) == nil {
			acks <- &a
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	payload, err := telemetry.EncodeBatch(&telemetry.Batch{VehicleID: "veh-001", StreamID: 77, Positions: []telemetry.Position{
		{Seq: 1, UnixMs: at.UnixMilli(), LatE7: 437384166, LonE7: 74246333},
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	batchTopic, _ := nsp.Topic("veh-001", telemetry.KindBatch)
	if tok := agent.Publish(batchTopic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case a := <-acks:
		if c, _ := telemetry.AckRanges(a); len(c) != 1 || c[0] != (telemetry.SeqRange{First: 1, Last: 1}) {
			t.Errorf("ack %v", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no ack within 30 s")
	}
	// Without a token the API refuses; with one made by `token create`, it
	// answers.
	if resp, err := http.Get(api + "/api/v1/vehicles/veh-001/positions"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("without a token: %v %v", resp, err)
	}
	token := createToken(t, bin, vars, "run-test", "viewer")
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", api+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	resp, err := get("/api/v1/vehicles/veh-001/positions")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Positions []struct {
			Seq  uint64
			Time string
			Lat  float64
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || len(page.Positions) != 1 || page.Positions[0].Lat != 43.7384166 ||
		page.Positions[0].Time != at.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("positions %+v, %v", page, err)
	}

	// The MQTT ack follows the Ack's PUBACK: poll the metrics for it.
	var metrics string
	testenv.Eventually(t, 30*time.Second, "the acked message counted at /metrics", func() error {
		resp, err := get("/metrics")
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("GET /metrics: %s, %v", resp.Status, err)
		}
		if metrics = string(b); !strings.Contains(metrics, "\nfleetgate_ingest_messages_acked_total 1\n") {
			return fmt.Errorf("not counted yet:\n%s", metrics)
		}
		return nil
	})
	for _, want := range []string{"fleetgate_ingest_commits_total 1\n", "fleetgate_ingest_records_inserted_total 1\n",
		"fleetgate_ingest_batch_messages_count 1\n", "fleetgate_ingest_subscribed 1\n", "go_goroutines "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		if !strings.Contains(logs.String(), "cloud-server stopped") {
			t.Errorf("no shutdown log line")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after SIGTERM")
	}
}

// A replica gone for good leaves a persistent session in the shared
// subscription, and Mosquitto keeps queueing its share of the batches there
// (the agents resend them only after their ack timeout). retire removes that
// session: afterwards the live member gets every batch.
func TestRetireRemovesAGoneReplicasShare(t *testing.T) {
	mqttURL, ns := testenv.MQTT(t)
	filter := "$share/ingest/" + ns + "/+/up/batch"
	gone, live := "retire-gone-"+testenv.ID(), "retire-live-"+testenv.ID()
	connect := func(id string, clean bool, h paho.MessageHandler) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(id).SetCleanSession(clean).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		if h != nil {
			if tok := c.Subscribe(filter, 1, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe %s: %v", id, tok.Error())
			}
		}
		return c
	}
	g := connect(gone, false, func(paho.Client, paho.Message) {})
	g.Disconnect(100) // its session stays, with its place in the share group
	got := make(chan string, 100)
	l := connect(live, true, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	t.Cleanup(func() { l.Disconnect(100) })

	env := env(map[string]string{"MQTT_URL": mqttURL, "MQTT_NAMESPACE": ns, "MQTT_CLIENT_ID": live})
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"retire", live}, env, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "own MQTT_CLIENT_ID") {
		t.Errorf("retire of its own id: exit %d, %q", code, errOut.String())
	}
	if code := Main(context.Background(), []string{"retire"}, env, &out, &errOut); code != 2 {
		t.Errorf("retire without an id: exit %d", code)
	}
	errOut.Reset()
	withLogin := func(k string) string {
		if k == "MQTT_URL" {
			return "tcp://fleetgate.cloud.1:pw@127.0.0.1:1"
		}
		return env(k)
	}
	if code := Main(context.Background(), []string{"retire", "fleetgate.cloud.2"}, withLogin, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "fleetgate.cloud.2's login") {
		t.Errorf("retire with another replica's login: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"retire", gone}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), gone) {
		t.Fatalf("retire %s: exit %d, %q %q", gone, code, out.String(), errOut.String())
	}

	p := connect("retire-pub-"+testenv.ID(), true, nil)
	defer p.Disconnect(100)
	const n = 20
	for i := range n {
		if tok := p.Publish(ns+"/veh/up/batch", 1, false, fmt.Sprint(i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case m := <-got:
			seen[m] = true
		case <-timeout:
			t.Fatalf("the live member got %d of %d batches: the retired session still takes a share", len(seen), n)
		}
	}
}
