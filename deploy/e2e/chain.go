// Package e2e runs Fleetgate's whole chain as a user would — the simulator on real
// pseudo-terminals, the edge agent, the real Mosquitto, the cloud server, real
// PostgreSQL and Redis — and compares what the HTTP API returns with the
// simulator's ground truth (firmware-sim/cloudapi reads the API,
// firmware-sim/truth reads the truth and compares). The helpers here are the
// chain's own (waiting for a ready cloud, forgetting an agent's broker state);
// internal/testenv starts the programs; the tests are in the _test files.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// ForgetAgent removes what an agent leaves on the shared broker: its
// retained status and its persistent session.
func ForgetAgent(t testing.TB, url string, ns telemetry.Namespace, vehicle string) {
	t.Helper()
	topic, err := ns.Topic(vehicle, telemetry.KindStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(url, topic, []byte{}, true); err != nil {
		t.Errorf("clear the retained status: %v", err)
	}
	if err := mqtt.RemoveSession(context.Background(), url, "fleetgate-edge-"+vehicle); err != nil {
		t.Errorf("remove the agent's session: %v", err)
	}
}

// PublishStatus publishes s on its vehicle's status topic at QoS 1, not
// retained, as an agent would (without being one), and clears nothing: the
// test's namespace is its own.
func PublishStatus(t testing.TB, url string, ns telemetry.Namespace, s *telemetrypb.Status) {
	t.Helper()
	topic, err := ns.Topic(s.GetVehicleId(), telemetry.KindStatus)
	if err != nil {
		t.Fatal(err)
	}
	p, err := telemetry.Encode(s, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(url, topic, p, false); err != nil {
		t.Fatalf("publish the status of %s: %v", s.GetVehicleId(), err)
	}
}

// publish sends one message at QoS 1 with a client of its own.
func publish(url, topic string, payload []byte, retained bool) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fgtest-pub-" + testenv.ID()))
	if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return fmt.Errorf("connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return fmt.Errorf("publish on %s: %v", topic, tok.Error())
	}
	return nil
}

// Token makes an admin API token with the cloud-server program of cloud,
// run with its environment (so against its database), as a user would:
// cloud-server token create. Each call makes a token of its own name.
func Token(t testing.TB, cloud *testenv.Proc) string {
	t.Helper()
	cmd := exec.Command(cloud.Cmd.Path, "token", "create", "--name", "test-"+testenv.ID(), "--role", "admin", "--ttl", "24h")
	cmd.Env = cloud.Cmd.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	token := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(token, "fgt_") {
		t.Fatalf("cloud-server token create: %v %q %s", err, out, stderr.String())
	}
	return token
}

// WaitReady waits until the cloud-server behind api answers GET /ready,
// failing the test when cloud exits first or within passes.
func WaitReady(t testing.TB, within time.Duration, api cloudapi.Client, cloud *testenv.Proc) {
	t.Helper()
	testenv.Eventually(t, within, "cloud-server /ready", func() error {
		var v map[string]any
		return api.Get(context.Background(), "/ready", &v)
	}, cloud)
}
