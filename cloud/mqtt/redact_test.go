package mqtt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/cloud/mqtt"
)

// /ready shows Ping's error; the broker password in MQTT_URL must not leak into it.
func TestPingErrorHidesPassword(t *testing.T) {
	in := mqtt.NewSession("tcp://fleetgate.cloud:s3cret-pw@127.0.0.1:1", "redact-test")
	err := in.Ping(context.Background())
	if err == nil {
		t.Fatal("Ping of an ingester that never ran succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Ping error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Ping error no longer names the broker: %v", err)
	}
}
