package dashboard_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// TestMain removes the binaries the tests built (testenv.Binaries).
func TestMain(m *testing.M) { testenv.Main(m) }
