package gps_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// gpsEpoch as a date floor turns the week-rollover rule off (no two-digit
// year reads earlier), so the documents' examples keep the dates they were
// written with.
var gpsEpoch = time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)

// Expected values are worked out by hand from the sentences: ddmm.mmm →
// dd + mm.mmm/60 degrees, × 10^7 rounded; knots × 1852/3600 m/s, in mm/s
// rounded; metres in cm; DOPs × 100; times from the date and time in UTC.
var (
	// NMEA 0183 (the classic example pair):
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
	// u-blox M8 protocol specification:
	// $GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57
	ublox = telemetry.Position{
		UnixMs:     1039422959000, // 2002-12-09T08:35:59Z
		LatE7:      472852395,     // 47 + 17.11437/60 = 47.2852395
		LonE7:      85652537,      // 8 + 33.91522/60 = 8.56525367
		Has:        telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality,
		SpeedMmps:  2, // 0.004 kn = 0.00206 m/s
		CourseCdeg: 7752,
		Quality:    1, // FAA mode A
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

// feed runs lines through a and returns every epoch closed, Flush included.
func feed(a *gps.Assembler, lines ...string) []gps.Epoch {
	var got []gps.Epoch
	for _, l := range lines {
		got = append(got, a.Feed(l)...)
	}
	if ep, ok := a.Flush(); ok {
		got = append(got, ep)
	}
	return got
}

func checkCounters(t *testing.T, c *edge.Counters, want map[string]uint64) {
	t.Helper()
	snap := c.Snapshot()
	for k, v := range want {
		if snap[k] != v {
			t.Errorf("counter %s = %d, want %d (all: %v)", k, snap[k], v, snap)
		}
	}
}

// TestDocumentedSentences feeds sentences printed in the NMEA 0183 standard
// and receiver manuals (their checksums are the documents'; a line marked
// "written" was made for the test, with its checksum computed) and checks
// the fix worked out by hand.
func TestDocumentedSentences(t *testing.T) {
	fix := func(p telemetry.Position) []gps.Epoch { return []gps.Epoch{{Fix: true, Position: p}} }
	tests := []struct {
		name  string
		lines []string
		want  []gps.Epoch
	}{
		{
			name: "NMEA 0183: RMC and GGA of one epoch",
			lines: []string{
				"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
				"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
			},
			want: fix(classic),
		},
		{
			name: "SiRF NMEA reference manual: GGA GLL GSA GSV RMC VTG",
			lines: []string{
				"$GPGGA,161229.487,3723.2475,N,12158.3416,W,1,07,1.0,9.0,M,,,,0000*18",
				"$GPGLL,3723.2475,N,12158.3416,W,161229.487,A*2C",
				"$GPGSA,A,3,07,02,26,27,09,04,15,,,,,,1.8,1.0,1.5*33",
				"$GPGSV,2,1,07,07,79,048,42,02,51,062,43,26,36,256,42,27,27,138,42*71",
				"$GPGSV,2,2,07,09,23,313,42,04,19,159,41,15,12,041,42*41",
				"$GPRMC,161229.487,A,3723.2475,N,12158.3416,W,0.13,309.62,120598,,*10",
				"$GPVTG,309.62,T,,M,0.13,N,0.2,K*6E",
			},
			want: fix(telemetry.Position{
				UnixMs: 894989549487, // 1998-05-12T16:12:29.487Z
				LatE7:  373874583,    // 37 + 23.2475/60 = 37.38745833
				LonE7:  -1219723600,  // -(121 + 58.3416/60) = -121.97236
				Has: telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality | telemetry.HasSatsUsed |
					telemetry.HasSatsInView | telemetry.HasHDOP | telemetry.HasVDOP | telemetry.HasPDOP |
					telemetry.HasAlt | telemetry.HasMode, // geoid separation empty: unknown
				SpeedMmps:  67, // 0.13 kn = 0.0669 m/s
				CourseCdeg: 30962,
				Mode:       3,
				Quality:    1,
				SatsUsed:   7,
				SatsInView: 7,
				HDOPc:      100, // GGA's
				VDOPc:      150,
				PDOPc:      180,
				AltCm:      900,
			}),
		},
		{
			name: "u-blox M8: GGA dated by an earlier ZDA",
			lines: []string{
				"$GPZDA,082710.00,16,09,2002,00,00*64",
				"$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B",
			},
			want: fix(telemetry.Position{
				UnixMs: 1032168445000, // 2002-09-16T09:27:25Z
				LatE7:  472852332,     // 47 + 17.11399/60
				LonE7:  85652650,      // 8 + 33.91590/60
				Has: telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP | telemetry.HasAlt |
					telemetry.HasGeoidSep,
				Quality:    1,
				SatsUsed:   8,
				HDOPc:      101,
				AltCm:      49960,
				GeoidSepCm: 4800,
			}),
		},
		{
			name: "u-blox M8: RMC then VTG",
			lines: []string{
				"$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57",
				"$GPVTG,77.52,T,,M,0.004,N,0.008,K,A*06",
			},
			want: fix(ublox),
		},
		{
			name: "u-blox M8: GLL with FAA mode, dated by an earlier ZDA",
			lines: []string{
				"$GPZDA,082710.00,16,09,2002,00,00*64",
				"$GPGLL,4717.11364,N,00833.91565,E,092321.00,A,A*60",
			},
			want: fix(telemetry.Position{
				UnixMs:  1032168201000, // 2002-09-16T09:23:21Z
				LatE7:   472852273,     // 47 + 17.11364/60
				LonE7:   85652608,      // 8 + 33.91565/60
				Has:     telemetry.HasQuality,
				Quality: 1,
			}),
		},
		{
			name: "MediaTek MT3339 datasheet: GSA and GSV before RMC",
			lines: []string{
				"$GPGSA,A,3,29,21,26,15,18,09,06,10,,,,,2.32,0.95,2.11*00",
				"$GPGSV,3,1,09,29,36,029,42,21,46,314,43,26,44,020,43,15,21,321,39*7D",
				"$GPRMC,064951.000,A,2307.1256,N,12016.4438,E,0.03,165.48,260406,3.05,W,A*2C",
			},
			want: fix(telemetry.Position{
				UnixMs: 1146034191000, // 2006-04-26T06:49:51Z
				LatE7:  231187600,     // 23 + 7.1256/60
				LonE7:  1202740633,    // 120 + 16.4438/60
				Has: telemetry.HasSpeed | telemetry.HasCourse | telemetry.HasQuality | telemetry.HasSatsUsed |
					telemetry.HasSatsInView | telemetry.HasHDOP | telemetry.HasVDOP | telemetry.HasPDOP | telemetry.HasMode,
				SpeedMmps:  15, // 0.03 kn = 0.0154 m/s
				CourseCdeg: 16548,
				Mode:       3,
				Quality:    1,
				SatsUsed:   8, // counted in the GSA
				SatsInView: 9,
				HDOPc:      95, // the GSA's: no GGA
				VDOPc:      211,
				PDOPc:      232,
			}),
		},
		{
			name: "Trimble NMEA guide: GGA (DGPS, 8 decimals) and GST; ZDA written",
			lines: []string{
				"$GPZDA,172814.0,12,07,1996,00,00*5C", // written: the date
				"$GPGGA,172814.0,3723.46587704,N,12202.26957864,W,2,6,1.2,18.893,M,-25.669,M,2.0,0031*4F",
				"$GPGST,172814.0,0.006,0.023,0.020,273.6,0.023,0.020,0.031*6A",
			},
			want: fix(telemetry.Position{
				UnixMs: 837192494000, // 1996-07-12T17:28:14Z
				LatE7:  373910980,    // 37 + 23.46587704/60
				LonE7:  -1220378263,  // -(122 + 2.26957864/60)
				Has: telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP | telemetry.HasAlt |
					telemetry.HasGeoidSep | telemetry.HasErrLat | telemetry.HasErrLon | telemetry.HasErrAlt,
				Quality:    2,
				SatsUsed:   6,
				HDOPc:      120,
				AltCm:      1889,
				GeoidSepCm: -2567,
				ErrLatCm:   2, // 0.023 m
				ErrLonCm:   2,
				ErrAltCm:   3,
			}),
		},
		{
			name: "NMEA 4.1 GNS, RTK fixed on every constellation; ZDA written",
			lines: []string{
				"$GNZDA,014035.00,10,01,2017,00,00*7F", // written: the date
				"$GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,*70",
			},
			want: fix(telemetry.Position{
				UnixMs: 1484012435000, // 2017-01-10T01:40:35Z
				LatE7:  -435448770,    // -(43 + 32.69262/60)
				LonE7:  1725914248,    // 172 + 35.48549/60
				Has: telemetry.HasQuality | telemetry.HasSatsUsed | telemetry.HasHDOP | telemetry.HasAlt |
					telemetry.HasGeoidSep,
				Quality:    4,
				SatsUsed:   13,
				HDOPc:      90,
				AltCm:      2563,
				GeoidSepCm: 1124,
			}),
		},
		{
			name:  "u-blox GST alone says nothing of a fix",
			lines: []string{"$GNGST,082356.00,1.8,,,,1.7,1.3,2.2*60"},
		},
		{
			name:  "GNS with no fix on any constellation",
			lines: []string{withChecksum("GNGNS,014035.00,,,,,NNN,,,,,,")}, // written
			want:  []gps.Epoch{{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := gps.Assembler{DateFloor: gpsEpoch}
			if diff := cmp.Diff(tt.want, feed(&a, tt.lines...)); diff != "" {
				t.Errorf("epochs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAssemblerRules covers the fix, value and hygiene rules on made-up
// variations of documented sentences (checksums recomputed by withChecksum).
func TestAssemblerRules(t *testing.T) {
	const (
		rmc519 = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
		gga519 = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
		rmc520 = "$GPRMC,123520,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*60"
		gga520 = "$GPGGA,123520,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4D"
	)
	at := func(p telemetry.Position, ms int64) telemetry.Position { p.UnixMs = ms; return p }
	rmcOnly := func(p telemetry.Position) telemetry.Position {
		p.Has &= telemetry.HasSpeed | telemetry.HasCourse
		p.Quality, p.SatsUsed, p.HDOPc, p.AltCm, p.GeoidSepCm = 0, 0, 0, 0, 0
		return p
	}
	tests := []struct {
		name     string
		lines    []string
		want     []gps.Epoch
		counters map[string]uint64
	}{
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
			name: "valid RMC but GGA quality 0: no fix",
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
			name:  "FAA mode S (simulator) and M (manual input) are not fixes",
			lines: []string{withChecksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,S"), withChecksum("GPRMC,123520,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,M")},
			want:  []gps.Epoch{{}, {}},
		},
		{
			name:  "a GSA with fix type 1 between the epoch's timed sentences vetoes it",
			lines: []string{rmc519, withChecksum("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"), gga519},
			want:  []gps.Epoch{{}},
		},
		{
			name: "a GSA after them that contradicts them is a neighbour's: no veto, no mode",
			lines: []string{rmc519, gga519,
				withChecksum("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99")},
			want:     []gps.Epoch{{Fix: true, Position: classic}},
			counters: map[string]uint64{"gps.stale_sentences": 1},
		},
		{
			name: "quality 6 (dead reckoning) is a fix of quality 6",
			lines: []string{rmc519,
				withChecksum("GPGGA,123519,4807.038,N,01131.000,E,6,08,0.9,545.4,M,46.9,M,,")},
			want: []gps.Epoch{{Fix: true, Position: func() telemetry.Position { p := classic; p.Quality = 6; return p }()}},
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
			name:     "a corrupted field that keeps its checksum is a parse error",
			lines:    []string{"$GPRMC,12x519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*21"},
			counters: map[string]uint64{"gps.parse_errors": 1},
		},
		{
			name:     "NaN latitude is a bad value, not a position",
			lines:    []string{withChecksum("GPRMC,123519,A,NaN,N,01131.000,E,022.4,084.4,230394,003.1,W")},
			counters: map[string]uint64{"gps.bad_values": 1, "gps.fixes": 0},
		},
		{
			name:     "speed too large for the wire is a bad value",
			lines:    []string{withChecksum("GPRMC,123519,A,4807.038,N,01131.000,E,9e99,084.4,230394,003.1,W")},
			counters: map[string]uint64{"gps.bad_values": 1, "gps.fixes": 0},
		},
		{
			name:     "negative speed is a bad value",
			lines:    []string{withChecksum("GPRMC,123519,A,4807.038,N,01131.000,E,-1.0,084.4,230394,003.1,W")},
			counters: map[string]uint64{"gps.bad_values": 1},
		},
		{
			name:  "course 360.00 wraps to 0",
			lines: []string{withChecksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,360.00,230394,003.1,W")},
			want: []gps.Epoch{{Fix: true, Position: func() telemetry.Position {
				p := rmcOnly(classic)
				p.CourseCdeg = 0
				return p
			}()}},
		},
		{
			name: "sentences not used, unknown types, satellite sentences of other talkers",
			lines: []string{"$GPXYZ,1*51", withChecksum("IIGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),
				"$PGRME,15.0,M,45.0,M,25.0,M*1C"},
			counters: map[string]uint64{"gps.ignored": 3, "gps.fixes": 0},
		},
		{
			name:     "a repeated epoch is dropped",
			lines:    []string{rmc519, gga519, rmc520, gga520, rmc520, gga520},
			want:     []gps.Epoch{{Fix: true, Position: classic}, {Fix: true, Position: at(classic, 764426120000)}},
			counters: map[string]uint64{"gps.repeated_epochs": 1, "gps.fixes": 2},
		},
		{
			name:     "a second RMC in one epoch is ignored",
			lines:    []string{rmc519, rmc519, gga519},
			want:     []gps.Epoch{{Fix: true, Position: classic}},
			counters: map[string]uint64{"gps.duplicate_sentences": 1},
		},
		{
			name:     "position sentences without a time are not placed",
			lines:    []string{"$GNRMC,,V,,,,,,,,,,N*4D", "$GNGGA,,,,,,0,00,99.99,,,,,,*56"},
			counters: map[string]uint64{"gps.no_time": 2, "gps.no_fix": 0},
		},
		{
			name: "a fix with no date before it has no time",
			lines: []string{
				"$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B",
			},
			counters: map[string]uint64{"gps.no_date": 1},
		},
		{
			name: "a fix says there is one but gives no position",
			lines: []string{
				withChecksum("GPRMC,123519,A,,,,,022.4,084.4,230394,003.1,W"),
			},
			counters: map[string]uint64{"gps.no_position": 1},
		},
		{
			name: "RMC-only receiver: the second epoch learns the ender, later ones close at once",
			lines: []string{
				rmc519,
				withChecksum("GPRMC,123520,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
				withChecksum("GPRMC,123521,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
			},
			want: []gps.Epoch{
				{Fix: true, Position: rmcOnly(classic)},
				{Fix: true, Position: at(rmcOnly(classic), 764426120000)},
				{Fix: true, Position: at(rmcOnly(classic), 764426121000)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c edge.Counters
			a := gps.Assembler{Counters: &c, DateFloor: gpsEpoch}
			if diff := cmp.Diff(tt.want, feed(&a, tt.lines...)); diff != "" {
				t.Errorf("epochs (-want +got):\n%s", diff)
			}
			checkCounters(t, &c, tt.counters)
		})
	}
}

// TestEpochClosing checks that an epoch is emitted when its learned ender
// arrives, without waiting for the next epoch, and that a late sentence moves
// the ender.
func TestEpochClosing(t *testing.T) {
	body := func(typ string, s int) string {
		switch typ {
		case "RMC":
			return withChecksum(fmt.Sprintf("GPRMC,1235%02d,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", s))
		case "GGA":
			return withChecksum(fmt.Sprintf("GPGGA,1235%02d,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", s))
		case "ZDA":
			return withChecksum(fmt.Sprintf("GPZDA,1235%02d,23,03,1994,00,00", s))
		}
		return withChecksum("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1")
	}
	var c edge.Counters
	a := gps.Assembler{Counters: &c, DateFloor: gpsEpoch}
	step := func(line string, wantClosed int) {
		t.Helper()
		if got := len(a.Feed(line)); got != wantClosed {
			t.Fatalf("after %s: %d epochs closed, want %d", line, got, wantClosed)
		}
	}
	// Epoch 19 is closed by the change of time; its last sentence, GSA, is the ender.
	step(body("RMC", 19), 0)
	step(body("GGA", 19), 0)
	step(body("GSA", 19), 0)
	step(body("RMC", 20), 1)
	step(body("GGA", 20), 0)
	step(body("GSA", 20), 1) // closed by its ender
	// A ZDA after the ender: late, and the ender from now on.
	step(body("ZDA", 20), 0)
	step(body("RMC", 21), 0)
	step(body("GGA", 21), 0)
	step(body("GSA", 21), 0)
	step(body("ZDA", 21), 1)
	// The ender lost once (no ZDA in epoch 22): epoch 22 closes when 23 starts,
	// and the ender stays ZDA.
	step(body("RMC", 22), 0)
	step(body("GGA", 22), 0)
	step(body("GSA", 22), 0)
	step(body("RMC", 23), 1)
	step(body("GGA", 23), 0)
	step(body("GSA", 23), 0)
	step(body("ZDA", 23), 1)
	checkCounters(t, &c, map[string]uint64{"gps.late_sentences": 1, "gps.fixes": 5})
}

func TestWeekRollover(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		want     int64 // UnixMs of the fix; 0: none
		counters map[string]uint64
	}{
		{
			name:     "u-blox 2002 example: one rollover late, moved 1024 weeks on",
			line:     "$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57",
			want:     1658738159000, // 2022-07-25T08:35:59Z = 2002-12-09 + 7168 days
			counters: map[string]uint64{"gps.week_rollover_corrected": 1},
		},
		{
			name: "Garmin firmware after the 2019 rollover reports 2003-07-29 for 2023-03-14",
			line: withChecksum("GPRMC,174500,A,3851.3228,N,09447.9832,W,052.1,180.0,290703,003.1,E,D"),
			want: 1678815900000, // 2023-03-14T17:45:00Z
		},
		{
			name: "a date on the floor is kept",
			line: "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B",
			want: 1484007031000, // 2017-01-10T00:10:31Z
		},
		{
			name:     "1994 is still before the floor after one step: rejected",
			line:     "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
			counters: map[string]uint64{"gps.week_rollover_rejected": 1, "gps.fixes": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c edge.Counters
			a := gps.Assembler{Counters: &c}
			got := feed(&a, tt.line)
			var ms int64
			if len(got) == 1 && got[0].Fix {
				ms = got[0].Position.UnixMs
			}
			if ms != tt.want {
				t.Errorf("fix at %d (%v), want %d", ms, got, tt.want)
			}
			checkCounters(t, &c, tt.counters)
		})
	}
}

func TestDateCarriedPastMidnight(t *testing.T) {
	var c edge.Counters
	a := gps.Assembler{Counters: &c}
	got := feed(&a,
		withChecksum("GNRMC,235959.00,A,3113.8250,N,12128.4221,E,32.46,90.00,020923,,,A"),
		// The RMC of the next epoch is lost: the GGA takes the date, a day on.
		withChecksum("GNGGA,000000.00,3113.8250,N,12128.4232,E,1,14,0.79,4.2,M,8.3,M,,"),
	)
	if len(got) != 2 || !got[1].Fix {
		t.Fatalf("got %+v", got)
	}
	if want := time.Date(2023, 9, 3, 0, 0, 0, 0, time.UTC).UnixMilli(); got[1].Position.UnixMs != want {
		t.Errorf("GGA after midnight at %v, want %v", time.UnixMilli(got[1].Position.UnixMs).UTC(), time.UnixMilli(want).UTC())
	}
}

func TestBackwardsAndTimeReset(t *testing.T) {
	rmc := func(hms, date string) string {
		return withChecksum("GPRMC," + hms + ",A,4807.038,N,01131.000,E,0.0,," + date + ",,,A")
	}
	var c edge.Counters
	a := gps.Assembler{Counters: &c}
	var times []string
	for _, l := range []string{
		rmc("120000", "010124"), rmc("120001", "010124"),
		// A receiver clock stepping back a day for good: dropped twice, then followed.
		rmc("120002", "311223"), rmc("120003", "311223"), rmc("120004", "311223"), rmc("120005", "311223"),
	} {
		for _, ep := range a.Feed(l) {
			times = append(times, time.UnixMilli(ep.Position.UnixMs).UTC().Format(time.TimeOnly+" 02"))
		}
	}
	if ep, ok := a.Flush(); ok {
		times = append(times, time.UnixMilli(ep.Position.UnixMs).UTC().Format(time.TimeOnly+" 02"))
	}
	want := []string{"12:00:00 01", "12:00:01 01", "12:00:04 31", "12:00:05 31"}
	if diff := cmp.Diff(want, times); diff != "" {
		t.Errorf("fixes (-want +got):\n%s", diff)
	}
	checkCounters(t, &c, map[string]uint64{"gps.backwards_epochs": 2, "gps.time_resets": 1})
}

func TestJumpFlagged(t *testing.T) {
	rmc := func(hms, lat string) string {
		return withChecksum("GPRMC," + hms + ",A," + lat + ",N,00733.000,E,0.0,,010124,,,A")
	}
	var c edge.Counters
	a := gps.Assembler{Counters: &c}
	got := feed(&a,
		rmc("120000", "4344.000"),
		rmc("120001", "4344.050"), // 92.6 m in 1 s: within 100 m/s × 1 s + 100 m
		rmc("120002", "4346.000"), // 3.6 km in 1 s: flagged, kept
		rmc("130002", "4446.000"), // 111 km in an hour (31 m/s): plausible
	)
	if len(got) != 4 {
		t.Fatalf("%d epochs, want 4: %+v", len(got), got)
	}
	for i, ep := range got {
		if flagged := ep.Jump != nil; flagged != (i == 2) || !ep.Fix {
			t.Errorf("fix %d: jump %+v", i, ep.Jump)
		}
	}
	if j := got[2].Jump; j.Elapsed != time.Second || j.Metres < 3600 || j.Metres > 3630 {
		t.Errorf("jump %+v, want about 3611 m in 1s", j)
	}
	checkCounters(t, &c, map[string]uint64{"gps.jumps": 1, "gps.fixes": 4})
}

// Sentences with a valid checksum on which go-nmea v1.10.0 panics (found by
// FuzzReader) are parse errors; the epoch around them still closes.
func TestParserPanicsAreParseErrors(t *testing.T) {
	var c edge.Counters
	a := gps.Assembler{Counters: &c, DateFloor: gpsEpoch}
	got := feed(&a,
		"$GPTXT,0AN*5C", // one field where TXT has four: go-nmea slices past them
		withChecksum("GPRMC,120000.00,A,4807.038,N,01131.000,E,022.4,084.4,230324,,,A"),
		withChecksum("GPTXT,01"),
		withChecksum("GPRMC,120001.00,A,4807.040,N,01131.002,E,022.4,084.4,230324,,,A"),
	)
	if len(got) != 2 || !got[0].Fix || !got[1].Fix {
		t.Errorf("epochs %+v, want the two RMC fixes", got)
	}
	checkCounters(t, &c, map[string]uint64{"gps.parser_panics": 2, "gps.parse_errors": 2})
}
