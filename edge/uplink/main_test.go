package uplink_test

import (
	"os"
	"testing"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestMain makes the codec's zstd encoder and decoder, which are made once
// per process, outside any synctest bubble: made inside one, their channels
// would belong to it and fail in the next.
func TestMain(m *testing.M) {
	b := &telemetry.Batch{VehicleID: vehicle, StreamID: 1}
	for i := range 100 {
		b.Positions = append(b.Positions, telemetry.Position{Seq: uint64(i + 1), UnixMs: int64(i)})
	}
	p, err := telemetry.EncodeBatch(b, true)
	if err == nil {
		_, err = telemetry.DecodeBatch(p)
	}
	if err != nil || p[0]&telemetry.FlagZstd == 0 {
		panic("warming the zstd codec up failed")
	}
	os.Exit(m.Run())
}
