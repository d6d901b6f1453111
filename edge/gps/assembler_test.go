package gps_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Expected values are worked out by hand from the sentences: ddmm.mmm →
// dd + mm.mmm/60 degrees, × 10^7 rounded; knots × 1852/3600 m/s, in mm/s
// rounded; times from the RMC date and time in UTC.
var (
	// $GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A
	// $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47
	classic = telemetry.Position{
		UnixMs: 764426119000, // 1994-03-23T12:35:19Z
		LatE7:  481173000,    // 48 + 7.038/60 = 48.1173
		LonE7:  115166667,    // 11 + 31.000/60 = 11.51666667
		Has: telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality | telemetry.HasSatsUsed |
			telemetry.HasHDOP | telemetry.HasAlt | telemetry.HasGeoidSep,
		SpeedMmps:  11524, // 22.4 kn = 11.5236 m/s
		CourseCdeg: 8440,
		Quality:    1,
		SatsUsed:   8,
		HDOPc:      90,
		AltCm:      54540,
		GeoidSepCm: 4690,
	}
	// SiRF NMEA reference manual:
	// $GPGGA,161229.487,3723.2475,N,12158.3416,W,1,07,1.0,9.0,M,,,,0000*18
	// $GPRMC,161229.487,A,3723.2475,N,12158.3416,W,0.13,309.62,120598,,*10
	sirf = telemetry.Position{
		UnixMs: 894989549487, // 1998-05-12T16:12:29.487Z
		LatE7:  373874583,    // 37 + 23.2475/60 = 37.38745833
		LonE7:  -1219723600,  // -(121 + 58.3416/60) = -121.97236
		Has: telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality | telemetry.HasSatsUsed |
			telemetry.HasHDOP | telemetry.HasAlt, // geoid separation empty: unknown
		SpeedMmps:  67, // 0.13 kn = 0.0669 m/s
		CourseCdeg: 30962,
		Quality:    1,
		SatsUsed:   7,
		HDOPc:      100,
		AltCm:      900,
	}
	// u-blox protocol specification:
	// $GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57
	ublox = telemetry.Position{
		UnixMs:     1039422959000, // 2002-12-09T08:35:59Z
		LatE7:      472852395,     // 47 + 17.11437/60 = 47.2852395
		LonE7:      85652537,      // 8 + 33.91522/60 = 8.56525367
		Has:        telemetry.HasSpeed | telemetry.HasCourse,
		SpeedMmps:  2, // 0.004 kn = 0.00206 m/s
		CourseCdeg: 7752,
	}
	// $GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B
	gnrmc = telemetry.Position{
		UnixMs:    1484007031000,      // 2017-01-10T00:10:31Z
		LatE7:     440689988,          // 44 + 4.13993/60 = 44.06899883
		LonE7:     -1213143372,        // -(121 + 18.86023/60) = -121.31433717
		Has:       telemetry.HasSpeed, // course empty: unknown
		SpeedMmps: 75,                 // 0.146 kn = 0.0751 m/s
	}
	// $GPRMC,220516,A,5133.82,N,00042.24,W,173.8,231.8,130694,004.2,W*70
	west = telemetry.Position{
		UnixMs:     771545116000, // 1994-06-13T22:05:16Z
		LatE7:      515636667,    // 51 + 33.82/60 = 51.56366667
		LonE7:      -7040000,     // -(0 + 42.24/60) = -0.704
		Has:        telemetry.HasSpeed | telemetry.HasCourse,
		SpeedMmps:  89410, // 173.8 kn = 89.4104 m/s
		CourseCdeg: 23180,
	}
)

// withChecksum frames an NMEA body made up for a test: "$" + body + "*hh".
func withChecksum(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X", body, sum)
}

func TestAssembler(t *testing.T) {
	const (
		rmc519 = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
		gga519 = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
	)
	tests := []struct {
		name     string
		lines    []string
		want     []gps.Epoch // every epoch closed, Flush included
		counters map[string]uint64
	}{
		{
			name:  "RMC and GGA of one epoch",
			lines: []string{rmc519, gga519},
			want:  []gps.Epoch{{Fix: true, Position: classic}},
		},
		{
			name: "GGA first, milliseconds, empty field unknown",
			lines: []string{
				"$GPGGA,161229.487,3723.2475,N,12158.3416,W,1,07,1.0,9.0,M,,,,0000*18",
				"$GPRMC,161229.487,A,3723.2475,N,12158.3416,W,0.13,309.62,120598,,*10",
			},
			want: []gps.Epoch{{Fix: true, Position: sirf}},
		},
		{
			name: "RMC alone closed by the next epoch; GGA alone has no date",
			lines: []string{
				"$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57",
				"$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B",
			},
			want:     []gps.Epoch{{Fix: true, Position: ublox}},
			counters: map[string]uint64{"gps.no_rmc": 1},
		},
		{
			name:  "GN talker, empty course",
			lines: []string{"$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B"},
			want:  []gps.Epoch{{Fix: true, Position: gnrmc}},
		},
		{
			name:  "west longitude",
			lines: []string{"$GPRMC,220516,A,5133.82,N,00042.24,W,173.8,231.8,130694,004.2,W*70"},
			want:  []gps.Epoch{{Fix: true, Position: west}},
		},
		{
			name:  "lower-case checksum",
			lines: []string{"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6a", gga519},
			want:  []gps.Epoch{{Fix: true, Position: classic}},
		},
		{
			name:     "void RMC",
			lines:    []string{"$GPRMC,123520,V,4807.038,N,01131.000,E,,,230394,003.1,W*7B"},
			want:     []gps.Epoch{{}},
			counters: map[string]uint64{"gps.no_fix": 1, "gps.fixes": 0},
		},
		{
			name: "valid RMC but GGA quality 0",
			lines: []string{
				"$GPRMC,123520,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*60",
				"$GPGGA,123520,4807.038,N,01131.000,E,0,00,,,M,,M,,*58",
			},
			want:     []gps.Epoch{{}},
			counters: map[string]uint64{"gps.no_fix": 1},
		},
		{
			name:     "FAA mode N (data not valid)",
			lines:    []string{"$GPRMC,123521,A,4807.040,N,01131.002,E,022.5,084.4,230394,003.1,W,N*0F"},
			want:     []gps.Epoch{{}},
			counters: map[string]uint64{"gps.no_fix": 1},
		},
		{
			name:     "bad checksum",
			lines:    []string{"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B"},
			counters: map[string]uint64{"gps.bad_checksum": 1, "gps.fixes": 0},
		},
		{
			name:     "missing checksum",
			lines:    []string{"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"},
			counters: map[string]uint64{"gps.bad_checksum": 1},
		},
		{
			name: "a corrupted field that keeps its checksum is a parse error",
			// time field 12x519: checksum recomputed so only the parser can object
			lines:    []string{"$GPRMC,12x519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*21"},
			counters: map[string]uint64{"gps.parse_errors": 1},
		},
		{
			name:     "NaN latitude is a parse error, not a position",
			lines:    []string{withChecksum("GPRMC,123519,A,NaN,N,01131.000,E,022.4,084.4,230394,003.1,W")},
			counters: map[string]uint64{"gps.parse_errors": 1, "gps.fixes": 0},
		},
		{
			name:     "speed too large for the wire is a parse error",
			lines:    []string{withChecksum("GPRMC,123519,A,4807.038,N,01131.000,E,9e99,084.4,230394,003.1,W")},
			counters: map[string]uint64{"gps.parse_errors": 1, "gps.fixes": 0},
		},
		{
			name:  "course 360.00 wraps to 0",
			lines: []string{withChecksum("GPRMC,220516,A,5133.82,N,00042.24,W,173.8,360.00,130694,004.2,W")},
			want: []gps.Epoch{{Fix: true, Position: func() telemetry.Position {
				p := west
				p.CourseCdeg = 0
				return p
			}()}},
		},
		{
			name:     "sentences not used and unknown types",
			lines:    []string{"$GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45*75", "$GPXYZ,1*51"},
			counters: map[string]uint64{"gps.ignored": 2},
		},
		{
			name:     "a repeated epoch is dropped",
			lines:    []string{rmc519, gga519, rmc519, gga519},
			want:     []gps.Epoch{{Fix: true, Position: classic}},
			counters: map[string]uint64{"gps.stale_epochs": 1, "gps.fixes": 1},
		},
		{
			name:     "a second RMC in one epoch is ignored",
			lines:    []string{rmc519, rmc519, gga519},
			want:     []gps.Epoch{{Fix: true, Position: classic}},
			counters: map[string]uint64{"gps.duplicate_sentences": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c edge.Counters
			a := gps.Assembler{Counters: &c}
			var got []gps.Epoch
			for _, l := range tt.lines {
				if ep, ok := a.Feed(l); ok {
					got = append(got, ep)
				}
			}
			if ep, ok := a.Flush(); ok {
				got = append(got, ep)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("epochs (-want +got):\n%s", diff)
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
