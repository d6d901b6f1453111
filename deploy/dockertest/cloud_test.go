package dockertest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// TestCloudServerThroughProductionBroker runs the real cloud-server against
// the production broker configuration as docker-compose.prod.yml wires it
// (MQTT_URL with the cloud's login on the backend listener): a vehicle with
// its own certificate sends a batch over TLS, the server stores it and the
// vehicle gets the ack on its downlink. The ACL lets the cloud identity do
// all of its job: the shared subscription, the acks, `check`.
func TestCloudServerThroughProductionBroker(t *testing.T) {
	vehicle := "veh-c" + testenv.ID()
	b := startProductionBroker(t, brokerOptions{vehicles: []string{vehicle}})
	bin := testenv.Binaries(t)
	redisURL, prefix := testenv.Redis(t)
	port := testenv.FreePort(t)
	env := []string{
		"DATABASE_URL=" + testenv.Postgres(t), "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + b.backendURL(replica1), "MQTT_NAMESPACE=fleet/v1", "MQTT_CLIENT_ID=" + replica1,
		fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port),
	}
	check := exec.Command(filepath.Join(bin, "cloud-server"), "check")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("cloud-server check through the backend listener: %v\n%s", err, out)
	}
	dir := t.TempDir()
	server := testenv.StartProcess(t, dir, "cloud-server", filepath.Join(bin, "cloud-server"), env, "run")
	api := cloudapi.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ctx := context.Background()
	e2e.WaitReady(t, 60*time.Second, api, server)
	api.Token = e2e.Token(t, server)

	veh := b.vehicle(t, vehicle)
	acks := make(chan *telemetrypb.Ack, 10)
	ns := telemetry.Namespace("fleet/v1")
	ackTopic, _ := ns.Topic(vehicle, telemetry.KindAck)
	batchTopic, _ := ns.Topic(vehicle, telemetry.KindBatch)
	if tok := veh.Subscribe(ackTopic, 1, func(_ paho.Client, m paho.Message) {
		var ack telemetrypb.Ack
		if telemetry.Decode(m.Payload(), &ack) == nil {
			acks <- &ack
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", ackTopic, tok.Error())
	}
	now := time.Now().UTC().Truncate(time.Second)
	payload, err := telemetry.EncodeBatch(&telemetry.Batch{VehicleID: vehicle, StreamID: 0x5eed, Positions: []telemetry.Position{
		{Seq: 1, UnixMs: now.UnixMilli(), LatE7: 437384166, LonE7: 74246333},
		{Seq: 2, UnixMs: now.Add(time.Second).UnixMilli(), LatE7: 437385000, LonE7: 74247000},
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, veh, batchTopic, string(payload), false)

	select {
	case ack := <-acks:
		if ack.VehicleId != vehicle || ack.StreamId != 0x5eed || len(ack.Committed) != 1 ||
			ack.Committed[0].First != 1 || ack.Committed[0].Last != 2 || len(ack.Rejected) != 0 {
			t.Fatalf("ack = %v, want records 1-2 of stream 5eed committed", ack)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no ack on the vehicle's downlink within 30 s")
	}
	var got struct {
		ID       string `json:"id"`
		Position struct {
			Lat float64 `json:"lat"`
		} `json:"position"`
	}
	if err := api.Get(ctx, "/api/v1/vehicles/"+vehicle, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != vehicle || got.Position.Lat < 43.7 || got.Position.Lat > 43.8 {
		t.Errorf("GET /api/v1/vehicles/%s = %+v", vehicle, got)
	}
}
