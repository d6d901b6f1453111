// Package e2e runs Fleetgate's whole chain as a user would — the simulator on real
// pseudo-terminals, the edge agent, the real Mosquitto, the cloud server, real
// PostgreSQL and Redis — and compares what the HTTP API returns with the
// simulator's ground truth (firmware-sim/cloudapi reads the API,
// firmware-sim/truth reads the truth and compares). The helpers here start the
// programs; the tests are in the _test files.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Proc is a program started for a test. Its output goes to a log file that is
// printed when the test fails.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// Start runs bin with args and env (added to the test's environment). The process
// is stopped (SIGTERM, then SIGKILL after 10 s) when the test ends.
func Start(t testing.TB, dir, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("---- %s log (%s) ----\n%s", name, logPath, tail(out, 200))
		}
	})
	return p
}

// Stop sends SIGTERM and waits for the process to exit, killing it after 10 s.
// It returns the exit error (nil for a clean exit).
func (p *Proc) Stop(t testing.TB) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10 s of SIGTERM; killing it", p.Name)
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func tail(b []byte, lines int) string {
	s := strings.Split(string(b), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// ForgetAgent removes what an agent leaves on the shared broker: its
// retained status and its persistent session.
func ForgetAgent(t testing.TB, url string, ns telemetry.Namespace, vehicle string) {
	t.Helper()
	topic, err := ns.Topic(vehicle, telemetry.KindStatus)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fgtest-clean-" + testenv.ID()))
	if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Errorf("clean the broker: %v", tok.Error())
		return
	}
	if tok := c.Publish(topic, 1, true, []byte{}); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Errorf("clear the retained status: %v", tok.Error())
	}
	c.Disconnect(100)
	if err := mqtt.RemoveSession(context.Background(), url, "fleetgate-edge-"+vehicle); err != nil {
		t.Errorf("remove the agent's session: %v", err)
	}
}

// WaitReady waits until the cloud-server behind api answers GET /ready,
// failing the test when cloud exits first or within passes.
func WaitReady(t testing.TB, within time.Duration, api cloudapi.Client, cloud *Proc) {
	t.Helper()
	Eventually(t, within, "cloud-server /ready", func() error {
		var v map[string]any
		return api.Get(context.Background(), "/ready", &v)
	}, cloud)
}

// Eventually polls cond every 100 ms until it returns nil or the deadline passes,
// then fails the test with cond's last error. The procs are checked for an
// early exit on every round, so a crash fails fast with its log.
func Eventually(t testing.TB, within time.Duration, what string, cond func() error, procs ...*Proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		for _, p := range procs {
			if done, perr := p.Exited(); done {
				t.Fatalf("waiting for %s: %s exited early (%v)", what, p.Name, perr)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not true after %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
