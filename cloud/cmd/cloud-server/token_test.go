package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

var tokenPattern = regexp.MustCompile(`^fgt_[A-Za-z0-9_-]{43}\n$`)

// TestTokenCommands: create prints the token alone on standard output, list
// shows it without its secret, revoke removes it; mistakes exit 2.
func TestTokenCommands(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": testenv.Postgres(t)}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"token"}, args...), env(vars), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("create", "--name", "ops", "--role", "operator", "--ttl", "720h")
	if code != 0 || !tokenPattern.MatchString(out) || !strings.Contains(errOut, `token "ops" (operator, expires`) {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	secret := strings.TrimSpace(out)
	if code, out, _ := run("create", "--name", "viewer-1", "--role", "viewer"); code != 0 || !tokenPattern.MatchString(out) {
		t.Fatalf("create without ttl: %d %q", code, out)
	}
	code, out, _ = run("list")
	if code != 0 || !strings.Contains(out, "NAME") || !regexp.MustCompile(`(?m)^ops +operator +\S+ +\S+ +never$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^viewer-1 +viewer +\S+ +never +never$`).MatchString(out) || strings.Contains(out, secret) {
		t.Errorf("list: %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"create", "--name", "ops", "--role", "viewer"}, // the name is taken
		{"create", "--name", "x", "--role", "root"},
		{"create", "--name", "has space", "--role", "viewer"},
		{"create", "--name", "x", "--role", "viewer", "--ttl", "-1h"},
		{"create", "--role", "viewer"},
		{"revoke", "nobody"},
		{"burn"},
		{},
	} {
		if code, out, errOut := run(bad...); code != 2 || out != "" || errOut == "" {
			t.Errorf("token %v: %d %q %q; want exit 2 and a message", bad, code, out, errOut)
		}
	}
	if code, _, errOut := run("revoke", "ops"); code != 0 || !strings.Contains(errOut, "revoked") {
		t.Errorf("revoke: %d %q", code, errOut)
	}
	if _, out, _ := run("list"); strings.Contains(out, "ops ") {
		t.Errorf("a revoked token is listed:\n%s", out)
	}
}

// buildServer builds cloud-server into the test's directory.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cloud-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// createToken runs bin's token create with vars and returns the token.
func createToken(t *testing.T, bin string, vars []string, name, role string) string {
	t.Helper()
	cmd := exec.Command(bin, "token", "create", "--name", name, "--role", role)
	cmd.Env = append(os.Environ(), vars...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !tokenPattern.Match(out) {
		t.Fatalf("token create: %v %q %s", err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// waitReady waits for api's /ready, failing when proc exits first.
func waitReady(t *testing.T, api string, proc *testenv.Proc) {
	t.Helper()
	testenv.Eventually(t, time.Minute, api+"/ready", func() error {
		resp, err := http.Get(api + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return testenv.True(resp.StatusCode == 200)
	}, proc)
}

// sse reads a live stream's data lines of one event kind into a channel.
func sse(t *testing.T, url, token string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %v %v", url, resp, err)
	}
	out := make(chan string, 1000)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- d
			}
		}
	}()
	return out
}

// TestTwoReplicasShareTheLiveStream: two replicas on one database and one
// Redis; only the first ingests the vehicle's namespace, yet a live stream
// served by the second shows what the first ingested, as does the first's.
func TestTwoReplicasShareTheLiveStream(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	mqttURL, ns := testenv.MQTT(t)
	redisURL, prefix := testenv.Redis(t)
	db := testenv.Postgres(t)
	base := []string{"DATABASE_URL=" + db, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix, "MQTT_URL=" + mqttURL, "LOG_LEVEL=debug"}
	var apis []string
	for i, namespace := range []string{ns, ns + "/elsewhere"} {
		port := testenv.FreePort(t)
		id := fmt.Sprintf("fgtest-replica%d-%s", i, testenv.ID())
		t.Cleanup(func() { removeSession(t, mqttURL, id) })
		api := fmt.Sprintf("http://127.0.0.1:%d", port)
		vars := append(append([]string{}, base...), "MQTT_NAMESPACE="+namespace, "MQTT_CLIENT_ID="+id, fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port))
		proc := testenv.StartProcess(t, dir, fmt.Sprintf("replica%d", i), bin, vars, "run")
		waitReady(t, api, proc)
		apis = append(apis, api)
	}
	token := createToken(t, bin, base, "live-test", "viewer")
	streams := []<-chan string{
		sse(t, apis[0]+"/api/v1/live?types=position", token),
		sse(t, apis[1]+"/api/v1/live?types=position&vehicles=veh-live", token),
	}
	agent := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID("fgtest-agent-" + testenv.ID()))
	if tok := agent.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("agent connect: %v", tok.Error())
	}
	defer agent.Disconnect(100)
	topic, _ := telemetry.Namespace(ns).Topic("veh-live", telemetry.KindBatch)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	for seq := uint64(1); seq <= 3; seq++ {
		payload, err := telemetry.EncodeBatch(&telemetry.Batch{VehicleID: "veh-live", StreamID: 5, Positions: []telemetry.Position{
			{Seq: seq, UnixMs: at.Add(time.Duration(seq) * time.Second).UnixMilli(), LatE7: 437384166 + int32(seq), LonE7: 74246333},
		}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if tok := agent.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		for i, s := range streams {
			select {
			case d := <-s:
				if !strings.Contains(d, `"vehicle_id":"veh-live"`) || !strings.Contains(d, fmt.Sprintf(`"seq":%d,`, seq)) {
					t.Errorf("replica %d streamed %s, want seq %d", i, d, seq)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("replica %d streamed nothing for seq %d within 30 s", i, seq)
			}
		}
	}
}

// removeSession drops a replica's persistent broker session.
func removeSession(t *testing.T, url, id string) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

// TestBrokerPasswordNeverLogged: with the broker gone, a command's publish
// fails and is retried; neither the API's answer nor the log shows the
// password of MQTT_URL.
func TestBrokerPasswordNeverLogged(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	mqttURL, ns := testenv.MQTT(t)
	proxy := testenv.StartProxy(t, strings.TrimPrefix(mqttURL, "tcp://"), testenv.ProxyOptions{})
	const password = "s3cret-broker-pw"
	redisURL, prefix := testenv.Redis(t)
	port := testenv.FreePort(t)
	id := "fgtest-pw-" + testenv.ID()
	t.Cleanup(func() { removeSession(t, mqttURL, id) })
	vars := []string{"DATABASE_URL=" + testenv.Postgres(t), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=tcp://fleetgate.cloud:" + password + "@" + proxy.Addr(), "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=" + id,
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port), "LOG_LEVEL=debug"}
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	proc := testenv.StartProcess(t, dir, "cloud-server", bin, vars, "run")
	waitReady(t, api, proc)
	token := createToken(t, bin, vars, "pw-test", "operator")
	// A status makes the vehicle known (and commandable).
	agent := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID("fgtest-agent-" + testenv.ID()))
	if tok := agent.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("agent connect: %v", tok.Error())
	}
	defer agent.Disconnect(100)
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	publishStatus(t, agent, telemetry.Namespace(ns), "veh-pw")
	testenv.Eventually(t, 30*time.Second, "veh-pw known", func() error {
		code, body := post("/api/v1/vehicles/veh-pw/commands", `{"type":"report_status"}`)
		return testenv.True(code == 202 && strings.Contains(body, `"status":"sent"`))
	}, proc)
	proxy.SetUp(false) // the broker is gone
	code, body := post("/api/v1/vehicles/veh-pw/commands", `{"type":"read_dtcs"}`)
	if code != 202 || !strings.Contains(body, `"status":"pending"`) || strings.Contains(body, password) {
		t.Errorf("command while the broker is gone: %d %s", code, body)
	}
	testenv.Eventually(t, time.Minute, "the failed retry logged", func() error {
		b, err := os.ReadFile(proc.Log)
		if err != nil {
			return err
		}
		return testenv.True(strings.Contains(string(b), "pending commands not sent"))
	}, proc)
	proxy.SetUp(true)
	if err := proc.Stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
	b, _ := os.ReadFile(proc.Log)
	if strings.Contains(string(b), password) {
		t.Errorf("the broker password is in the log:\n%s", b)
	}
	if !strings.Contains(string(b), "fleetgate.cloud:xxxxx@") {
		t.Errorf("the log no longer names the broker (redacted):\n%s", b)
	}
}

// publishStatus publishes an online status of vehicle, as its agent would.
func publishStatus(t *testing.T, agent paho.Client, ns telemetry.Namespace, vehicle string) {
	t.Helper()
	topic, _ := ns.Topic(vehicle, telemetry.KindStatus)
	payload, err := telemetry.Encode(&telemetrypb.Status{VehicleId: vehicle, Online: true, UnixMs: time.Now().UnixMilli()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if tok := agent.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish status: %v", tok.Error())
	}
}
