package gps_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
)

// BenchmarkReader runs the u-blox M8 recording (262 sentences of every kind,
// with UBX frames) through the line reader and the assembler, as the source
// does, and reports sentences per second and heap allocations per sentence,
// counted by testing.AllocsPerRun (allocs/op, from b.ReportAllocs, is per
// pass over the whole recording).
func BenchmarkReader(b *testing.B) {
	in, err := os.ReadFile("testdata/ublox_m8.nmea")
	if err != nil {
		b.Fatal(err)
	}
	var counters edge.Counters
	pass := func() (sentences int) {
		a := gps.Assembler{Counters: &counters}
		lr := gps.NewLineReader(bytes.NewReader(in), 0, &counters)
		for {
			line, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			a.Feed(line)
			sentences++
		}
		a.Flush()
		return sentences
	}
	perPass := pass()
	allocs := testing.AllocsPerRun(20, func() { pass() })
	b.ReportAllocs()
	for b.Loop() {
		pass()
	}
	b.ReportMetric(float64(b.N*perPass)/b.Elapsed().Seconds(), "sentences/s")
	b.ReportMetric(allocs/float64(perPass), "allocs/sentence")
}
