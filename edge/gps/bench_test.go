package gps_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
)

// BenchmarkReader runs the u-blox M8 recording (262 sentences of every kind,
// with UBX frames) through the line reader and the assembler, as the source
// does, and reports sentences per second and heap allocations per sentence.
func BenchmarkReader(b *testing.B) {
	in, err := os.ReadFile("testdata/ublox_m8.nmea")
	if err != nil {
		b.Fatal(err)
	}
	var counters edge.Counters
	sentences := 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
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
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(sentences)/b.Elapsed().Seconds(), "sentences/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(sentences), "allocs/sentence")
}
