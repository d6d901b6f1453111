package cloud_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/deptest"
)

// TestDependencies enforces the layout rules (docs/ARCHITECTURE.md) for cloud/.
// Run with -count=1: the test cache cannot see the go list subprocess.
func TestDependencies(t *testing.T) {
	pkgs := deptest.List(t, "./cloud/...")
	deptest.CheckDocs(t, pkgs)
	deptest.Check(t, pkgs, []deptest.Rule{
		{From: "cloud/...", Deny: []string{"edge/...", "firmware-sim/..."},
			Why: "the cloud never depends on the agent or the simulator"},
		{From: "cloud", Deny: []string{"cloud/..."},
			Why: "the domain root imports no adapter"},
		{From: "cloud/ingest", Deny: []string{"cloud/mqtt", "cloud/postgres", "cloud/redis", "cloud/httpapi", "cloud/osrm"},
			Why: "the ingest pipeline is plain Go over its interfaces: the adapters plug into it, not the other way"},
		{From: "cloud/dispatch", Deny: []string{"cloud/mqtt", "cloud/postgres", "cloud/redis", "cloud/httpapi", "cloud/osrm", "cloud/ingest"},
			Why: "sending commands is plain Go over the command store and publisher interfaces"},
		{From: "cloud/httpapi", Deny: []string{"cloud/mqtt", "cloud/postgres", "cloud/redis", "cloud/osrm", "cloud/ingest"},
			Why: "the API serves the domain's interfaces; cmd wires the adapters in"},
		{From: "cloud/...", Except: []string{"cloud/cmd/..."}, Deny: []string{"cloud/cmd/..."},
			Why: "adapters do not import the wiring"},
		{From: "cloud/...", Except: []string{"cloud/postgres"}, Direct: true, Deny: []string{"github.com/jackc/...", "github.com/golang-migrate/..."},
			Why: "cloud/postgres is the only importer of pgx and the migration library"},
		{From: "cloud/...", Except: []string{"cloud/redis"}, Direct: true, Deny: []string{"github.com/redis/..."},
			Why: "cloud/redis is the only importer of the Redis client"},
		{From: "cloud/...", Except: []string{"cloud/mqtt"}, Direct: true, Deny: []string{"github.com/eclipse/paho.mqtt.golang/..."},
			Why: "cloud/mqtt is the only importer of paho"},
		{From: "cloud/web", Deny: []string{"cloud/..."},
			Why: "the dashboard's bundle is served on its own; httpapi mounts it as a handler and the page reads the API"},
		{From: "cloud/...", Except: []string{"cloud/osrm"}, Direct: true, Deny: []string{"github.com/sony/gobreaker/..."},
			Why: "cloud/osrm is the only importer of the circuit breaker"},
		{From: "cloud/...", Deny: []string{"go.etcd.io/bbolt/...", "go.bug.st/serial/..."},
			Why: "the outbox and serial ports belong to the agent"},
	})
}
