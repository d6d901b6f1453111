package gps_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
)

func readAll(t testing.TB, in []byte, maxLine int, c *edge.Counters) []string {
	t.Helper()
	lr := gps.NewLineReader(bytes.NewReader(in), maxLine, c)
	var lines []string
	for {
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return lines
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		lines = append(lines, l)
	}
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		max      int
		want     []string
		counters map[string]uint64
	}{
		{"CR LF", "$GPA,1*00\r\n$GPB,2*00\r\n", 0, []string{"$GPA,1*00", "$GPB,2*00"}, nil},
		{"LF only and CR only", "$GPA*00\n$GPB*00\r", 0, []string{"$GPA*00", "$GPB*00"}, nil},
		{"encapsulated", "!AIVDM,1*00\r\n", 0, []string{"!AIVDM,1*00"}, nil},
		{"garbage before", "\x00\xb5\x62junk$GPA*00\r\n", 0, []string{"$GPA*00"},
			map[string]uint64{"gps.garbage_bytes": 7}},
		{"cut short by a new sentence", "$GPRMC,12$GPA*00\r\n", 0, []string{"$GPA*00"},
			map[string]uint64{"gps.resyncs": 1}},
		{"binary inside a sentence", "$GP\x01A*00\r\n$GPB*00\r\n", 0, []string{"$GPB*00"},
			map[string]uint64{"gps.binary_lines": 1, "gps.garbage_bytes": 4}},
		{"exactly max", "$" + strings.Repeat("A", 9) + "\r\n", 10, []string{"$" + strings.Repeat("A", 9)}, nil},
		{"over max", "$" + strings.Repeat("A", 10) + "\r\n$GPB*00\n", 10, []string{"$GPB*00"},
			map[string]uint64{"gps.overlong": 1}},
		{"no line end at EOF", "$GPA*00\r\n$GPB*0", 0, []string{"$GPA*00"},
			map[string]uint64{"gps.truncated_lines": 1}},
		{"empty lines and a lone $", "\r\n\r\n$\r\n", 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c edge.Counters
			got := readAll(t, []byte(tt.in), tt.max, &c)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			snap := c.Snapshot()
			for k, v := range tt.counters {
				if snap[k] != v {
					t.Errorf("counter %s = %d, want %d (all: %v)", k, snap[k], v, snap)
				}
			}
		})
	}
}

// TestSession runs testdata/session.nmea (see testdata/README.md) through the
// line reader and the assembler, as the Source does.
func TestSession(t *testing.T) {
	in, err := os.ReadFile("testdata/session.nmea")
	if err != nil {
		t.Fatal(err)
	}
	var c edge.Counters
	a := gps.Assembler{Counters: &c}
	var got []gps.Epoch
	for _, l := range readAll(t, in, 0, &c) {
		if ep, ok := a.Feed(l); ok {
			got = append(got, ep)
		}
	}
	if ep, ok := a.Flush(); ok {
		got = append(got, ep)
	}
	want := []gps.Epoch{
		{Fix: true, Position: classic},
		{}, // 123520: void RMC, GGA quality 0
		{Fix: true, Position: sirf},
		{Fix: true, Position: ublox},
		{Fix: true, Position: gnrmc},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("epochs (-want +got):\n%s", diff)
	}
	wantCounters := map[string]uint64{
		"gps.sentences":     11,
		"gps.fixes":         4,
		"gps.no_fix":        1,
		"gps.ignored":       1, // GSV
		"gps.bad_checksum":  1,
		"gps.stale_epochs":  1, // the classic RMC again at the end
		"gps.resyncs":       1, // $GPRMC,1235 cut short
		"gps.overlong":      1, // the $GPTXT
		"gps.garbage_bytes": 28,
	}
	if diff := cmp.Diff(wantCounters, c.Snapshot()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}
