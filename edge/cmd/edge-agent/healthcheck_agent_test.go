package main_test

import (
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
)

// TestHealthcheckAgainstTheAgent runs the built agent and its own
// `healthcheck --config` (what Dockerfile.edge's HEALTHCHECK runs) with the
// same file: healthy while the agent runs, unhealthy once it has stopped.
func TestHealthcheckAgainstTheAgent(t *testing.T) {
	bin := buildAgent(t)
	url, ns := testenv.MQTT(t)
	_, gpsPath := rawPty(t)
	vehicle := "veh-" + testenv.ID()
	t.Cleanup(func() { forgetVehicle(t, url, ns, vehicle) })
	dir := t.TempDir()
	config := filepath.Join(dir, "agent.yaml")
	httpPort := testenv.FreePort(t)
	if err := os.WriteFile(config, fmt.Appendf(nil, `vehicle_id: %s
data_dir: %s
gps:
  port: %s
mqtt:
  url: %s
  namespace: %s
http:
  listen: 0.0.0.0:%d
`, vehicle, filepath.Join(dir, "data"), gpsPath, url, ns, httpPort), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() (int, string) {
		cmd := exec.Command(bin, "healthcheck", "--config", config)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("healthcheck did not run: %s", out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := check(); code != 1 {
		t.Fatalf("healthcheck before the agent runs: exit %d (%s), want 1", code, out)
	}

	agent := exec.Command(bin, "run", "--config", config)
	agent.Env = withoutEnv(os.Environ(), "GOMAXPROCS")
	logs, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent.Stdout, agent.Stderr = logs, logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("agent log:\n%s", b)
		}
	})

	testenv.Eventually(t, time.Minute, "the healthcheck to pass", func() error {
		select {
		case err := <-exited:
			t.Fatalf("the agent exited early: %v", err)
		default:
		}
		if code, out := check(); code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})

	// The daemon runs on one processor when GOMAXPROCS is unset (main.go, oneProc).
	if got := metric(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort), "go_sched_gomaxprocs_threads"); got != "1" {
		t.Errorf("go_sched_gomaxprocs_threads = %q, want 1", got)
	}

	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	if code, out := check(); code != 1 {
		t.Errorf("healthcheck after the agent stopped: exit %d (%s), want 1", code, out)
	}
}

// withoutEnv returns env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// metric returns the value of an unlabelled metric in a Prometheus text page.
func metric(t *testing.T, url, name string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s: no %s in\n%s", url, name, body)
	return ""
}

// forgetVehicle removes what an agent leaves on the shared broker: its
// retained status and its persistent session.
func forgetVehicle(t *testing.T, url, ns, vehicle string) {
	t.Helper()
	topic, err := telemetry.Namespace(ns).Topic(vehicle, telemetry.KindStatus)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetgate-edge-" + vehicle).SetCleanSession(true))
	waitTok(t, c.Connect())
	waitTok(t, c.Publish(topic, 1, true, []byte{}))
	c.Disconnect(100)
}
