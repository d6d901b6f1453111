package dockertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// TestAgentThroughProductionBroker runs the whole chain through the production
// broker configuration: the simulator on ptys, the real edge-agent presenting
// its vehicle certificate over TLS (mqtt.tls), Mosquitto with the production
// mosquitto.conf and ACL (the certificate's CN is the username, so the ACL's
// %u must be the agent's vehicle id), and the real cloud-server on the backend
// listener. Every fix of the ground truth must reach the API exactly once:
// the agent's topics, its will and the cloud's acks all pass the ACL.
func TestAgentThroughProductionBroker(t *testing.T) {
	prefix := "veh-a" + testenv.ID() + "-"
	vehicle := prefix + "001"
	b := startProductionBroker(t, brokerOptions{vehicles: []string{vehicle}})
	bin := testenv.Binaries(t)
	dir := t.TempDir()
	redisURL, redisPrefix := testenv.Redis(t)
	port := testenv.FreePort(t)
	server := testenv.StartProcess(t, dir, "cloud-server", filepath.Join(bin, "cloud-server"), []string{
		"DATABASE_URL=" + testenv.Postgres(t), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + redisPrefix,
		"MQTT_URL=" + b.backendURL(replica1), "MQTT_NAMESPACE=fleet/v1", "MQTT_CLIENT_ID=" + replica1,
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port),
	}, "run")
	api := cloudapi.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ctx := context.Background()
	e2e.WaitReady(t, 60*time.Second, api, server)
	api.Token = e2e.Token(t, server)

	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	links, truthPath := filepath.Join(dir, "dev"), filepath.Join(dir, "truth.jsonl")
	sim := testenv.StartProcess(t, dir, "firmware-sim", filepath.Join(bin, "firmware-sim"), nil, "run",
		"--vehicles", "1", "--id-prefix", prefix, "--speed", "20", "--start", start.Format(time.RFC3339),
		"--duration", "40s", "--truth", truthPath, "--link-dir", links, "--seed", "3")
	gpsLink := filepath.Join(links, vehicle+"-gps")
	testenv.Eventually(t, 20*time.Second, gpsLink, func() error { _, err := os.Stat(gpsLink); return err }, sim)

	crt, key := b.vehicleCert(vehicle)
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`vehicle_id: %s
data_dir: %s
gps:
  port: %s
mqtt:
  url: ssl://127.0.0.1:%d
  tls:
    ca: %s
    cert: %s
    key: %s
outbox:
  flush_interval: 100ms
uplink:
  min_batch_age: 200ms
http:
  listen: ""
`, vehicle, filepath.Join(dir, "data"), gpsLink, b.tlsPort, filepath.Join(b.certs, "ca.crt"), crt, key))
	agent := testenv.StartProcess(t, dir, "edge-agent", filepath.Join(bin, "edge-agent"), nil, "run", "--config", cfg)

	var tr truth.Vehicle
	testenv.Eventually(t, 60*time.Second, "the end of the drive", func() error {
		lines, err := truth.ReadFile(truthPath)
		if err != nil {
			return err
		}
		if tr = truth.Vehicles(lines)[vehicle]; !tr.Ended {
			return fmt.Errorf("%d fixes so far", len(tr.Fixes))
		}
		return nil
	}, sim, agent, server)
	if len(tr.Fixes) < 30 {
		t.Fatalf("the simulator emitted only %d fixes", len(tr.Fixes))
	}
	var d truth.Diff
	testenv.Eventually(t, 60*time.Second, "every fix in the API", func() error {
		ps, err := api.Positions(ctx, vehicle, start.Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		if d = truth.CompareFixes(tr.Fixes, ps); d.Stored < d.Truth {
			return fmt.Errorf("%v", d)
		}
		return nil
	}, agent, server)
	if !d.OK() {
		t.Errorf("through the production broker: %v", d)
	}
	// The agent's retained status passed the ACL too: the cloud shows its health.
	var v struct {
		Device *struct {
			Online bool `json:"online"`
		} `json:"device"`
	}
	testenv.Eventually(t, 30*time.Second, "the agent's status in the API", func() error {
		if err := api.Get(ctx, "/api/v1/vehicles/"+vehicle, &v); err != nil {
			return err
		}
		if v.Device == nil || !v.Device.Online {
			return fmt.Errorf("device = %+v", v.Device)
		}
		return nil
	}, agent, server)
}
