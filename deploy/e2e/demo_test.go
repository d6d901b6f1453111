package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemo runs `make demo` as a new user would: three vehicles appear with
// positions at GET /api/v1/vehicles, and Ctrl-C (SIGINT to the whole process
// group, as a terminal sends it) stops every process; the demo exits 0 and
// make reports no error. The script's defaults (the fleetgate database,
// fleet/v1, port 8000, veh-001...) are replaced by the test's own through
// the environment variables the script reads, and make builds into the
// test's directory.
func TestDemo(t *testing.T) {
	bin := t.TempDir()
	redisURL, prefix := testenv.Redis(t)
	mqttURL, ns := testenv.MQTT(t)
	port := testenv.FreePort(t)
	idPrefix := "demo" + testenv.ID() + "-"
	cloudID := "e2e-demo-cloud-" + testenv.ID()
	t.Cleanup(func() { forgetDemo(t, mqttURL, ns, cloudID, idPrefix) })

	cmd := exec.Command("make", "--no-print-directory", "demo", "BIN="+bin)
	cmd.Dir = testenv.ModuleRoot(t)
	// The make running these tests, if any, passes nothing on to this one.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	demoDir, dbURL := t.TempDir(), testenv.Postgres(t)
	cmd.Env = append(cmd.Env, "DEMO_DIR="+demoDir, "DATABASE_URL="+dbURL,
		"REDIS_URL="+redisURL, "REDIS_PREFIX="+prefix, "MQTT_URL="+mqttURL, "MQTT_NAMESPACE="+ns, "MQTT_CLIENT_ID="+cloudID,
		"LISTEN_ADDR=127.0.0.1:"+strconv.Itoa(port), "ID_PREFIX="+idPrefix, "METRICS_PORT_BASE="+strconv.Itoa(testenv.FreePort(t)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// A test that failed before its Ctrl-C still lets the script stop
		// its programs (they run in sessions of their own).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // a no-op when the demo has stopped
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})

	api := cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}
	tokenFile := filepath.Join(demoDir, "token")
	var list struct {
		Vehicles []struct {
			ID       string `json:"id"`
			Position *struct {
				Lat float64 `json:"lat"`
			} `json:"position"`
		} `json:"vehicles"`
	}
	testenv.Eventually(t, 2*time.Minute, "3 vehicles with a position at /api/v1/vehicles", func() error {
		select {
		case err := <-exited:
			t.Fatalf("the demo exited before its vehicles appeared: %v", err)
		default:
		}
		if api.Token == "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return err
			}
			api.Token = strings.TrimSpace(string(b))
		}
		if err := api.Get(context.Background(), "/api/v1/vehicles", &list); err != nil {
			return err
		}
		n := 0
		for _, v := range list.Vehicles {
			if strings.HasPrefix(v.ID, idPrefix) && v.Position != nil {
				n++
			}
		}
		if n != 3 {
			return fmt.Errorf("%d of 3: %+v", n, list.Vehicles)
		}
		return nil
	})
	if s := out.String(); !strings.Contains(s, fmt.Sprintf(`curl -H "Authorization: Bearer %s" localhost:%d/api/v1/vehicles`, api.Token, port)) ||
		!strings.Contains(s, fmt.Sprintf("localhost:%d/api/v1/live", port)) {
		t.Errorf("the demo does not print the API URL:\n%s", s)
	}

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		// make, interrupted too, ends by its own SIGINT once the script is
		// done: what counts is that it reports no error.
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); err != nil && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGINT) {
			t.Errorf("make demo ended with %v after Ctrl-C, want 0 or its own SIGINT", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not stop within a minute of Ctrl-C")
	}
	if s := out.String(); strings.Contains(s, "exited early") || !strings.Contains(s, "stopping") || strings.Contains(s, "make: ***") {
		t.Errorf("after Ctrl-C the demo printed:\n%s", s)
	}
	// The demo's token is revoked when it stops.
	tokens := exec.Command(filepath.Join(bin, "cloud-server"), "token", "list")
	tokens.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	if b, err := tokens.CombinedOutput(); err != nil || strings.Contains(string(b), "demo-") {
		t.Errorf("token list after the demo: %v\n%s", err, b)
	}
}

// forgetDemo removes what the demo leaves on the shared broker: the agents'
// retained status and persistent sessions, and the cloud's session.
func forgetDemo(t *testing.T, url, ns, cloudID, idPrefix string) {
	for i := 1; i <= 3; i++ {
		e2e.ForgetAgent(t, url, telemetry.Namespace(ns), fmt.Sprintf("%s%03d", idPrefix, i))
	}
	if err := mqtt.RemoveSession(context.Background(), url, cloudID); err != nil {
		t.Errorf("remove the cloud's session: %v", err)
	}
}
