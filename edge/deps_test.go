package edge_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/deptest"
)

// TestDependencies enforces the layout rules (docs/ARCHITECTURE.md) for edge/.
// Run with -count=1: the test cache cannot see the go list subprocess.
func TestDependencies(t *testing.T) {
	pkgs := deptest.List(t, "./edge/...")
	deptest.CheckDocs(t, pkgs)
	deptest.Check(t, pkgs, []deptest.Rule{
		{From: "edge/...", Deny: []string{"cloud/...", "firmware-sim/..."},
			Why: "the agent never depends on the cloud or the simulator"},
		{From: "edge", Deny: []string{"edge/..."},
			Why: "the domain root imports no adapter"},
		{From: "edge/...", Except: []string{"edge/cmd/..."}, Deny: []string{"edge/cmd/..."},
			Why: "adapters do not import the wiring"},
		{From: "edge/...", Except: []string{"edge/serial"}, Direct: true, Deny: []string{"go.bug.st/serial/..."},
			Why: "edge/serial is the only importer of go.bug.st/serial"},
		{From: "edge/...", Except: []string{"edge/bolt"}, Direct: true, Deny: []string{"go.etcd.io/bbolt/..."},
			Why: "edge/bolt is the only importer of bbolt"},
		{From: "edge/...", Except: []string{"edge/mqtt"}, Direct: true, Deny: []string{"github.com/eclipse/paho.mqtt.golang/..."},
			Why: "edge/mqtt is the only importer of paho"},
		{From: "edge/uplink", Deny: []string{"edge/mqtt", "edge/bolt", "edge/serial", "edge/gps", "edge/obd", "edge/memory"},
			Why: "the sending policy works over uplink.Conn and edge.Outbox; the broker and the file are adapters'"},
		{From: "edge/uplink", Direct: true, Deny: []string{"net", "net/...", "os", "os/..."},
			Why: "the sending policy does no I/O of its own, so that its rules are tested without a broker"},
		{From: "edge/memory", Direct: true, Deny: []string{"net", "net/...", "os", "os/..."},
			Why: "the in-memory outbox keeps records in memory only"},
		{From: "edge/gps/...", Deny: []string{"edge/serial/...", "go.bug.st/serial/..."},
			Why: "sources read an io.Reader; opening ports is edge/serial's job"},
		{From: "edge/obd/...", Deny: []string{"edge/serial/...", "go.bug.st/serial/..."},
			Why: "sources read an io.ReadWriter; opening ports is edge/serial's job"},
		{From: "edge/...", Deny: []string{"github.com/jackc/...", "github.com/redis/..."},
			Why: "database and cache clients belong to the cloud"},
	})
}
