package gps_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// FuzzReader feeds arbitrary bytes through the line reader and the epoch
// assembler. Neither may panic; every line is a bounded, printable sentence;
// every fix lies on the globe, comes after the one before, carries values
// that are possible (course in [0, 360), nothing negative that cannot be),
// and only in an epoch that said there was a fix.
func FuzzReader(f *testing.F) {
	// The start of each recording: large seeds make the fuzzer spend its time
	// minimizing instead of exploring.
	files, _ := filepath.Glob("testdata/*.nmea")
	for _, name := range files {
		if in, err := os.ReadFile(name); err == nil {
			f.Add(in[:min(len(in), 1200)])
		}
	}
	f.Add([]byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"))
	f.Add([]byte("$GPGGA,161229.487,3723.2475,N,12158.3416,W,1,07,1.0,9.0,M,,,,0000*18\r\n$$$\x00\xff\r"))
	f.Add([]byte("$GPRMC,,A,,,,,,,,,*00\r\n$GPGGA,,,,,,,,,,,,,,*00\n"))
	f.Add([]byte("\xb5\x62\x05\x01\x02\x00\x06\x01\x0f\x38$GNZDA,014035.00,10,01,2017,00,00*7F\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine = 100
		var c edge.Counters
		a := gps.Assembler{Counters: &c}
		var last int64
		check := func(ep gps.Epoch) {
			if !ep.Fix {
				if ep.Position != (telemetry.Position{}) {
					t.Fatalf("no-fix epoch with a position: %+v", ep)
				}
				return
			}
			p := ep.Position
			if math.Abs(p.Lat()) > 90 || math.Abs(p.Lon()) > 180 {
				t.Fatalf("fix off the globe: %+v", p)
			}
			if p.UnixMs <= last && c.Snapshot()["gps.time_resets"] == 0 {
				t.Fatalf("fix at %d after one at %d", p.UnixMs, last)
			}
			if p.CourseCdeg < 0 || p.CourseCdeg >= 36000 || p.SpeedMmps < 0 || p.HDOPc < 0 || p.SatsUsed < 0 {
				t.Fatalf("impossible value: %+v", p)
			}
			last = p.UnixMs
		}
		for _, l := range readAll(t, in, maxLine, &c) {
			if len(l) > maxLine || !(strings.HasPrefix(l, "$") || strings.HasPrefix(l, "!")) ||
				strings.ContainsAny(l, "\r\n") || bytes.ContainsFunc([]byte(l), func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("line reader returned %q", l)
			}
			eps := a.Feed(l)
			if len(eps) > 2 {
				t.Fatalf("%d epochs closed by one sentence", len(eps))
			}
			for _, ep := range eps {
				check(ep)
			}
		}
		if ep, ok := a.Flush(); ok {
			check(ep)
		}
	})
}
