package shared_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/deptest"
)

// TestDependencies enforces the layout rules (docs/ARCHITECTURE.md) for
// shared/: the wire protocol only.
// Run with -count=1.
func TestDependencies(t *testing.T) {
	pkgs := deptest.List(t, "./shared/...")
	deptest.CheckDocs(t, pkgs)
	deptest.Check(t, pkgs, []deptest.Rule{
		{From: "shared/...", Deny: []string{"edge/...", "cloud/...", "firmware-sim/..."},
			Why: "shared/ is the wire protocol that the apps import, never the other way"},
		{From: "shared/...", Direct: true, Deny: []string{"net", "net/...", "os", "os/...", "log", "log/...", "io/fs", "database/..."},
			Why: "shared/ does no I/O and no logging"},
	})
}
