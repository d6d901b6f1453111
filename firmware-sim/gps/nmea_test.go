package gps_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/firmware-sim/gps"
)

// withChecksum completes an NMEA sentence body (between "$" and "*") with its
// checksum, computed here independently of the package: XOR of the bytes.
func withChecksum(body string) string {
	var x byte
	for _, c := range []byte(body) {
		x ^= c
	}
	return fmt.Sprintf("$%s*%02X", body, x)
}

func TestChecksumHelperAgainstKnownSentence(t *testing.T) {
	// The widely quoted example sentence with its published checksum.
	const known = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
	if got := withChecksum(known[1 : len(known)-3]); got != known {
		t.Fatalf("test checksum helper gives %s, want %s", got, known)
	}
}

func TestEncode(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 412_345_678, time.UTC)
	tests := []struct {
		name string
		fix  gps.Fix
		want []string // sentence bodies
		wire gps.Fix
	}{{
		name: "monaco",
		fix: gps.Fix{Time: at, Valid: true, Lat: 43.7384166667, Lon: 7.4246333333, AltM: 52.34,
			SpeedMps: 13.891, CourseDeg: 45.21, Quality: 1, Sats: 9, HDOP: 0.93, VDOP: 1.28, PDOP: 1.58},
		want: []string{
			"GPRMC,100000.41,A,4344.30500,N,00725.47800,E,27.002,45.2,271126,,,A",
			"GPGGA,100000.41,4344.30500,N,00725.47800,E,1,09,0.9,52.3,M,,M,,",
			"GPGSA,A,3,02,05,07,09,13,15,18,20,24,,,,1.58,0.93,1.28",
		},
		wire: gps.Fix{Time: at.Truncate(10 * time.Millisecond), Valid: true, Lat: 43 + 44.305/60, Lon: 7 + 25.478/60,
			AltM: 52.3, SpeedMps: 27.002 * 0.514444, CourseDeg: 45.2, Quality: 1, Sats: 9, HDOP: 0.9, VDOP: 1.28, PDOP: 1.58},
	}, {
		name: "south west, twelve satellites",
		fix: gps.Fix{Time: time.Date(2031, 1, 5, 23, 59, 59, 990_000_000, time.UTC), Valid: true, Lat: -33.8688, Lon: -70.6693,
			AltM: -3.04, SpeedMps: 0, CourseDeg: 359.96, Quality: 1, Sats: 14, HDOP: 0.55, VDOP: 0.8, PDOP: 0.97},
		want: []string{
			"GPRMC,235959.99,A,3352.12800,S,07040.15800,W,0.000,0.0,050131,,,A",
			"GPGGA,235959.99,3352.12800,S,07040.15800,W,1,14,0.6,-3.0,M,,M,,",
			"GPGSA,A,3,02,05,07,09,13,15,18,20,24,27,29,30,0.97,0.55,0.80",
		},
		wire: gps.Fix{Time: time.Date(2031, 1, 5, 23, 59, 59, 990_000_000, time.UTC), Valid: true, Lat: -(33 + 52.128/60), Lon: -(70 + 40.158/60),
			AltM: -3.0, SpeedMps: 0, CourseDeg: 0, Quality: 1, Sats: 14, HDOP: 0.6, VDOP: 0.8, PDOP: 0.97},
	}, {
		name: "minutes round up to the next degree",
		fix: gps.Fix{Time: at, Valid: true, Lat: 43.9999999999, Lon: 7.99999999, AltM: 10,
			SpeedMps: 1, CourseDeg: 90, Quality: 1, Sats: 4, HDOP: 2.04, VDOP: 3, PDOP: 3.63},
		want: []string{
			"GPRMC,100000.41,A,4400.00000,N,00800.00000,E,1.944,90.0,271126,,,A",
			"GPGGA,100000.41,4400.00000,N,00800.00000,E,1,04,2.0,10.0,M,,M,,",
			"GPGSA,A,3,02,05,07,09,,,,,,,,,3.63,2.04,3.00",
		},
		wire: gps.Fix{Time: at.Truncate(10 * time.Millisecond), Valid: true, Lat: 44, Lon: 8, AltM: 10,
			SpeedMps: 1.944 * 0.514444, CourseDeg: 90, Quality: 1, Sats: 4, HDOP: 2.0, VDOP: 3, PDOP: 3.63},
	}, {
		name: "no fix",
		fix:  gps.Fix{Time: at, Valid: false, Lat: 43.7, Lon: 7.4},
		want: []string{
			"GPRMC,100000.41,V,,,,,,,271126,,,N",
			"GPGGA,100000.41,,,,,0,00,99.99,,M,,M,,",
			"GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99",
		},
		wire: gps.Fix{Time: at.Truncate(10 * time.Millisecond)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := gps.Encode(tt.fix, gps.Format{Talker: "GP"})
			var want []string
			for _, b := range tt.want {
				want = append(want, withChecksum(b))
			}
			if diff := cmp.Diff(want, e.Sentences); diff != "" {
				t.Errorf("sentences (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wire, e.Fix, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
				t.Errorf("wire values (-want +got):\n%s", diff)
			}
			if got, wantBytes := string(e.Bytes()), strings.Join(want, "\r\n")+"\r\n"; got != wantBytes {
				t.Errorf("Bytes() = %q, want %q", got, wantBytes)
			}
		})
	}
}

func TestEpochTime(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		rate, k int
		want    string
	}{
		{1, 0, "10:00:00.000"}, {1, 59, "10:00:59.000"},
		{5, 1, "10:00:00.200"}, {5, 7, "10:00:01.400"},
		{3, 1, "10:00:00.330"}, {3, 2, "10:00:00.660"}, {3, 3, "10:00:01.000"},
		{25, 1, "10:00:00.040"}, {25, 26, "10:00:01.040"},
	}
	for _, tt := range tests {
		if got := gps.EpochTime(start, tt.rate, tt.k).Format("15:04:05.000"); got != tt.want {
			t.Errorf("EpochTime(rate %d, k %d) = %s, want %s", tt.rate, tt.k, got, tt.want)
		}
	}
}

// Every sentence type, formatted as the NMEA 0183 standard lays it out, with
// the GN talker (GSV goes out per constellation, as GP).
func TestEncodeEverySentence(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 412_345_678, time.UTC)
	fix := gps.Fix{Time: at, Valid: true, Lat: 43.7384166667, Lon: 7.4246333333, AltM: 52.34, SpeedMps: 13.891, CourseDeg: 45.21,
		Quality: 1, Sats: 4, HDOP: 0.93, VDOP: 1.28, PDOP: 1.58, ErrLatM: 1.64, ErrLonM: 1.64, ErrAltM: 3.2,
		InView: []gps.Satellite{{2, 45, 120, 40}, {5, 30, 200, 38}, {7, 60, 300, 42}, {9, 10, 50, 30}, {13, 5, 10, 0}}}
	want := []string{
		"GNRMC,100000.41,A,4344.30500,N,00725.47800,E,27.002,45.2,271126,,,A",
		"GNGGA,100000.41,4344.30500,N,00725.47800,E,1,04,0.9,52.3,M,,M,,",
		"GNGNS,100000.41,4344.30500,N,00725.47800,E,AN,04,0.9,52.3,,,",
		"GNGLL,4344.30500,N,00725.47800,E,100000.41,A,A",
		"GNGSA,A,3,02,05,07,09,,,,,,,,,1.58,0.93,1.28",
		"GPGSV,2,1,05,02,45,120,40,05,30,200,38,07,60,300,42,09,10,050,30",
		"GPGSV,2,2,05,13,05,010,",
		"GNVTG,45.2,T,,M,27.002,N,50.008,K,A",
		"GNZDA,100000.41,27,11,2026,00,00",
		"GNGST,100000.41,2.3,1.6,1.6,0.0,1.6,1.6,3.2",
	}
	// Listed in another order: the epoch keeps the standard order.
	e := gps.Encode(fix, gps.Format{Talker: "GN", Sentences: []string{"GST", "ZDA", "VTG", "GSV", "GSA", "GLL", "GNS", "GGA", "RMC"}})
	var wantS []string
	for _, b := range want {
		wantS = append(wantS, withChecksum(b))
	}
	if diff := cmp.Diff(wantS, e.Sentences); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if e.Fix.ErrLatM != 1.6 || e.Fix.ErrAltM != 3.2 || e.Fix.Sats != 4 || e.Fix.HDOP != 0.9 || e.Fix.PDOP != 1.58 {
		t.Errorf("parsed back: %+v", e.Fix)
	}
	// Without RMC the date comes from ZDA, the speed from VTG.
	e = gps.Encode(fix, gps.Format{Talker: "GP", Sentences: []string{"GGA", "VTG", "ZDA"}})
	if !e.Fix.Time.Equal(at.Truncate(10*time.Millisecond)) || math.Abs(e.Fix.SpeedMps-27.002*0.514444) > 1e-9 || e.Fix.CourseDeg != 45.2 {
		t.Errorf("GGA, VTG, ZDA parsed back: %+v", e.Fix)
	}
	// No time yet (cold start).
	e = gps.Encode(gps.Fix{NoTime: true}, gps.Format{Sentences: gps.Sentences})
	wantCold := []string{"GPRMC,,V,,,,,,,,,,N", "GPGGA,,,,,,0,00,99.99,,M,,M,,", "GPGNS,,,,,,N,00,99.99,,,,", "GPGLL,,,,,,V,N",
		"GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99", "GPGSV,1,1,00", "GPVTG,,T,,M,,N,,K,N", "GPZDA,,,,,00,00", "GPGST,,,,,,,,"}
	wantS = nil
	for _, b := range wantCold {
		wantS = append(wantS, withChecksum(b))
	}
	if diff := cmp.Diff(wantS, e.Sentences); diff != "" {
		t.Errorf("cold (-want +got):\n%s", diff)
	}
}

func TestFormatValidate(t *testing.T) {
	for _, tt := range []struct {
		f    gps.Format
		want string
	}{
		{gps.Format{}, ""},
		{gps.Format{Talker: "GN", Sentences: gps.Sentences}, ""},
		{gps.Format{Sentences: []string{"GGA", "ZDA"}}, ""},
		{gps.Format{Talker: "XX"}, `talker "XX"`},
		{gps.Format{Sentences: []string{"RMC", "TXT"}}, `sentence "TXT"`},
		{gps.Format{Sentences: []string{"RMC", "RMC"}}, "twice"},
		{gps.Format{Sentences: []string{"GSA", "ZDA"}}, "none carries the position"},
		{gps.Format{Sentences: []string{"GGA", "GSA"}}, "none carries the date"},
	} {
		err := tt.f.Validate()
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.f, err, tt.want)
		}
	}
}
