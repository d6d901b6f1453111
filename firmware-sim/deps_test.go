package firmwaresim_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/deptest"
)

// TestDependencies enforces the layout rules (docs/ARCHITECTURE.md) for
// firmware-sim/.
// Run with -count=1: the test cache cannot see the go list subprocess.
func TestDependencies(t *testing.T) {
	pkgs := deptest.List(t, "./firmware-sim/...")
	deptest.CheckDocs(t, pkgs)
	deptest.Check(t, pkgs, []deptest.Rule{
		{From: "firmware-sim/...", Deny: []string{"cloud/..."},
			Why: "the simulator never depends on the cloud"},
		{From: "firmware-sim/...", Deny: []string{"edge/..."}, Allow: []string{"edge", "edge/uplink", "edge/mqtt", "edge/memory"},
			Why: "load mode may reuse the agent's domain, sending policy, connection and in-memory outbox through their exported API, nothing else of the agent"},
		{From: "firmware-sim", Deny: []string{"firmware-sim/..."},
			Why: "the model at the root imports no adapter"},
		{From: "firmware-sim", Direct: true, Deny: []string{"os", "os/...", "net", "net/..."},
			Why: "the vehicle model is deterministic and does no I/O: no files, no network; time comes from the caller"},
		{From: "firmware-sim/...", Except: []string{"firmware-sim/cmd/..."}, Deny: []string{"firmware-sim/cmd/..."},
			Why: "adapters do not import the wiring"},
		{From: "firmware-sim/...", Except: []string{"firmware-sim/internal/simtest"}, Deny: []string{"testing", "testing/...", "firmware-sim/internal/simtest"},
			Why: "the binary carries no test code: what tests share with it (truth, cloudapi) takes no testing.TB"},
	})
}
