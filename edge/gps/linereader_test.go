package gps_test

import (
	"bytes"
	"errors"
	"io"
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
		// UBX-ACK-ACK (class 05 id 01, length 2, payload 06 01, checksum 0F 38),
		// the u-blox protocol specification's example.
		{"UBX frame between sentences", "$GPA*00\r\n\xb5\x62\x05\x01\x02\x00\x06\x01\x0f\x38$GPB*00\r\n", 0,
			[]string{"$GPA*00", "$GPB*00"}, map[string]uint64{"gps.ubx_frames": 1, "gps.garbage_bytes": 0}},
		{"UBX payload holding $ and LF is skipped whole", "\xb5\x62\x01\x07\x03\x00$\n$\x5d\xe4$GPB*00\r\n", 0,
			[]string{"$GPB*00"}, map[string]uint64{"gps.ubx_frames": 1, "gps.ubx_bad_checksum": 0, "gps.resyncs": 0}},
		{"UBX frame with a bad checksum is skipped and counted", "\xb5\x62\x05\x01\x02\x00\x06\x01\x00\x00$GPB*00\r\n", 0,
			[]string{"$GPB*00"}, map[string]uint64{"gps.ubx_frames": 1, "gps.ubx_bad_checksum": 1}},
		{"UBX frame cutting a sentence short", "$GPRMC,1\xb5\x62\x05\x01\x02\x00\x06\x01\x0f\x38$GPB*00\r\n", 0,
			[]string{"$GPB*00"}, map[string]uint64{"gps.ubx_frames": 1, "gps.binary_lines": 1}},
		{"a stray 0xB5 is garbage, the $ after it starts a sentence", "\xb5$GPB*00\r\n", 0,
			[]string{"$GPB*00"}, map[string]uint64{"gps.garbage_bytes": 1}},
		{"an implausible UBX length is garbage", "\xb5\x62\x01\x07\xff\xff$GPB*00\r\n", 0,
			[]string{"$GPB*00"}, map[string]uint64{"gps.garbage_bytes": 6, "gps.ubx_frames": 0}},
		{"UBX frame cut by the end of the stream", "$GPA*00\r\n\xb5\x62\x01\x07\x5c\x00\x01\x02", 0,
			[]string{"$GPA*00"}, map[string]uint64{"gps.truncated_lines": 1}},
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
