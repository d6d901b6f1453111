package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	if err := os.WriteFile(config, fmt.Appendf(nil, `vehicle_id: %s
data_dir: %s
gps:
  port: %s
mqtt:
  url: %s
  namespace: %s
http:
  listen: 0.0.0.0:%d
`, vehicle, filepath.Join(dir, "data"), gpsPath, url, ns, testenv.FreePort(t)), 0o600); err != nil {
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

	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := check()
		if code == 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the agent exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: exit %d: %s", code, out)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
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
