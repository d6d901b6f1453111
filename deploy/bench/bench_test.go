package bench_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

func TestChecksum(t *testing.T) {
	// The textbook sentences of the NMEA 0183 GGA and RMC descriptions.
	for _, s := range []string{
		"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
		"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
	} {
		body, sum, _ := strings.Cut(s[1:], "*")
		if got := bench.Checksum(body); fmt.Sprintf("%02X", got) != sum {
			t.Errorf("Checksum(%q) = %02X, want %s", body, got, sum)
		}
	}
}

// TestSentencesAreWhatTheAgentReads feeds the sentences of drive fixes to the
// agent's own NMEA assembler: the epochs give back the fixes.
func TestSentencesAreWhatTheAgentReads(t *testing.T) {
	d := bench.NewDrive(3)
	start := time.Date(2026, 11, 27, 23, 59, 58, 0, time.UTC) // crosses midnight
	asm := &gps.Assembler{}
	var want, got []telemetry.Position
	for i := range 40 {
		p := d.Next(start.Add(time.Duration(i)*100*time.Millisecond), 100*time.Millisecond)
		want = append(want, p)
		for _, line := range bytes.Split(bytes.TrimSpace(bench.Sentences(p)), []byte("\r\n")) {
			for _, ep := range asm.Feed(string(line)) {
				if ep.Fix {
					got = append(got, ep.Position)
				}
			}
		}
	}
	if ep, ok := asm.Flush(); ok && ep.Fix {
		got = append(got, ep.Position)
	}
	if len(got) != len(want) {
		t.Fatalf("%d fixes from %d epochs", len(got), len(want))
	}
	for i, p := range got {
		w := want[i]
		if p.UnixMs != w.UnixMs || math.Abs(float64(p.LatE7-w.LatE7)) > 2 || math.Abs(float64(p.LonE7-w.LonE7)) > 2 ||
			math.Abs(float64(p.SpeedMmps-w.SpeedMmps)) > 3 || p.CourseCdeg != w.CourseCdeg || p.SatsUsed != w.SatsUsed {
			t.Errorf("epoch %d: fix %+v, want %+v", i, p, w)
		}
	}
}

func TestParseUsage(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...; the name may hold ") (".
	stat := []byte("4242 (edge) (agent)) S 1 4242 4242 0 -1 4194560 1200 0 3 0 250 75 0 0 20 0 9 0 1000 726000000 4000 18446744073709551615\n")
	status := []byte("Name:\tedge-agent\nVmPeak:\t  726000 kB\nVmHWM:\t   16384 kB\nVmRSS:\t   15000 kB\nThreads:\t9\n")
	u, err := bench.ParseUsage(stat, status)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU != 3250*time.Millisecond || u.PeakRSS != 16<<20 || u.RSS != 15000<<10 {
		t.Errorf("usage %+v: want 3.25 s CPU, 16 MiB peak, 15000 kB resident", u)
	}
	if _, err := bench.ParseUsage([]byte("4242 (x) S 1"), status); err == nil {
		t.Error("a short stat line parsed")
	}
}
