package gps_test

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
)

// FuzzReader feeds arbitrary bytes through the line reader and the assembler.
// Neither may panic; every line is a bounded, printable sentence; every fix
// lies on the globe and comes after the one before.
func FuzzReader(f *testing.F) {
	if in, err := os.ReadFile("testdata/session.nmea"); err == nil {
		f.Add(in)
	}
	f.Add([]byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"))
	f.Add([]byte("$GPGGA,161229.487,3723.2475,N,12158.3416,W,1,07,1.0,9.0,M,,,,0000*18\r\n$$$\x00\xff\r"))
	f.Add([]byte("$GPRMC,,A,,,,,,,,,*00\r\n$GPGGA,,,,,,,,,,,,,,*00\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine = 100
		var c edge.Counters
		a := gps.Assembler{Counters: &c}
		var last int64
		check := func(ep gps.Epoch) {
			if !ep.Fix {
				return
			}
			p := ep.Position
			if math.Abs(p.Lat()) > 90 || math.Abs(p.Lon()) > 180 {
				t.Fatalf("fix off the globe: %+v", p)
			}
			if p.UnixMs <= last {
				t.Fatalf("fix at %d after one at %d", p.UnixMs, last)
			}
			if p.CourseCdeg < 0 || p.CourseCdeg >= 36000 {
				t.Fatalf("course %d", p.CourseCdeg)
			}
			last = p.UnixMs
		}
		for _, l := range readAll(t, in, maxLine, &c) {
			if len(l) > maxLine || !(strings.HasPrefix(l, "$") || strings.HasPrefix(l, "!")) ||
				strings.ContainsAny(l, "\r\n") || bytes.ContainsFunc([]byte(l), func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("line reader returned %q", l)
			}
			if ep, ok := a.Feed(l); ok {
				check(ep)
			}
		}
		if ep, ok := a.Flush(); ok {
			check(ep)
		}
	})
}
