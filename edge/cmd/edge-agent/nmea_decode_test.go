package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNMEADecode(t *testing.T) {
	in := "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B\r\n" +
		"$GNGGA,001031.00,4404.13993,N,12118.86023,W,1,08,1.01,499.6,M,48.0,M,,*54\r\n" +
		"garbage\r\n$GNRMC,001032.00,V,,,,,,,100117,,,N*65\r\n"
	var stdout, stderr bytes.Buffer
	if code := nmeaDecode(context.Background(), nil, strings.NewReader(in), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, &stderr)
	}
	want := `{"time":"2017-01-10T00:10:31.000Z","lat":44.0689988,"lon":-121.3143372,"alt_m":499.6,"speed_mps":0.075,"quality":1,"sats":8,"hdop":1.01}` + "\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if got := stderr.String(); !strings.Contains(got, "1 fixes from 3 sentences") || !strings.Contains(got, "garbage_bytes 7") || !strings.Contains(got, "no_fix 1") {
		t.Errorf("stderr %q", got)
	}
	stdout.Reset()
	stderr.Reset()
	if code := nmeaDecode(context.Background(), []string{filepath.Join(t.TempDir(), "missing.nmea")}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	if code := nmeaDecode(context.Background(), []string{"-"}, bytes.NewReader([]byte{0, 0xff, '$', '\n'}), &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Errorf("binary input: exit %d, stdout %q; want 0 and nothing", code, &stdout)
	}
}

// gpsdTPV is the part of gpsd's TPV report the comparison reads.
type gpsdTPV struct {
	Class  string   `json:"class"`
	Mode   int      `json:"mode"`
	Time   string   `json:"time"`
	Lat    *float64 `json:"lat"`
	Lon    *float64 `json:"lon"`
	AltMSL *float64 `json:"altMSL"`
	Speed  *float64 `json:"speed"`
	Track  *float64 `json:"track"`
}

// TestNMEADecodeMatchesGpsdecode decodes every recording of edge/gps/testdata
// with nmea-decode and with gpsd's gpsdecode (Debian's gpsd-clients), and
// compares the fixes by time: position within 1e-6°, time to the
// millisecond, altitude, course and mode where both give them. Every fix we
// emit must be one gpsd reports, except for these documented differences:
//
//   - gpsd learns the receiver's cycle in the first epoch and reports that
//     epoch without a time, or not at all; we emit it, so a fix of ours before
//     gpsd's first timed fix matches if gpsd reported its position untimed
//     or reported nothing before.
//   - gpsd infers 3D from an altitude; when the receiver's GSA says 2D we
//     report 2D. It also holds 3D through the first 2D epoch after a 3D fix
//     (it does not downgrade a mode it holds); we report the GSA's 2D.
//   - speed: gpsd derives speed from successive positions when an epoch has
//     no RMC (Trimble: GGA VTG GST ZDA), where we take VTG's; hence a 0.01 m/s
//     tolerance instead of the rounding's 0.001.
//
// A fix gpsd reports and we do not fails the test, but for those listed in
// refusedOnPurpose (epochs the receiver itself says are no fix from the sky,
// which gpsd takes for fixes). So does a recording for which either decoder
// gives no fix (a comparison of nothing proves nothing), and more than one
// epoch of ours before gpsd's first timed fix: an empty or cut gpsdecode
// output cannot pass.
// refusedOnPurpose are the fixes gpsdecode reports that nmea-decode refuses
// by design, by recording and time, with why.
var refusedOnPurpose = map[string]map[string]string{
	"unusable_qualities.nmea": {
		"2026-03-02T10:15:11.000Z": "GGA quality 8: the receiver's simulator",
		"2026-03-02T10:15:12.000Z": "GGA quality 8: the receiver's simulator",
	},
	"gll_second_late.nmea": {
		"2026-03-02T10:15:32.000Z": "the last cycle's GLL, stamped a second late: no cycle of 10:15:32",
	},
}

func TestNMEADecodeMatchesGpsdecode(t *testing.T) {
	gpsdecode, err := exec.LookPath("gpsdecode")
	if err != nil {
		t.Fatalf("gpsdecode (Debian package gpsd-clients) is needed: %v", err)
	}
	files, err := filepath.Glob("../../gps/testdata/*.nmea")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings: %v", err)
	}
	total := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := nmeaDecode(context.Background(), []string{file}, nil, &stdout, &stderr); code != 0 {
				t.Fatalf("nmea-decode exit %d: %s", code, &stderr)
			}
			var ours []fixJSON
			for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				var f fixJSON
				if err := json.Unmarshal([]byte(l), &f); err != nil {
					t.Fatalf("nmea-decode line %q: %v", l, err)
				}
				ours = append(ours, f)
			}
			in, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			cmd := exec.Command(gpsdecode, "-j")
			cmd.Stdin = in
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("gpsdecode: %v", err)
			}
			timed := map[string]gpsdTPV{} // the last TPV of each time: the cycle's report
			var untimed []gpsdTPV
			firstTimed := ""
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				var g gpsdTPV
				if json.Unmarshal(sc.Bytes(), &g) != nil || g.Class != "TPV" || g.Mode < 2 || g.Lat == nil || g.Lon == nil {
					continue
				}
				if g.Time == "" {
					untimed = append(untimed, g)
					continue
				}
				if firstTimed == "" || g.Time < firstTimed {
					firstTimed = g.Time
				}
				timed[g.Time] = g
			}
			if len(ours) == 0 || len(timed) == 0 {
				// Nothing compared is no evidence: every recording has fixes.
				t.Fatalf("nmea-decode gave %d fixes, gpsdecode %d timed ones: the comparison would compare nothing; its output: %.300q", len(ours), len(timed), out)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6 }
			matched := map[string]bool{}
			early := 0
			var prevMode int32
			for _, f := range ours {
				g, ok := timed[f.Time]
				if !ok {
					reported := false
					for _, u := range untimed {
						reported = reported || near(*u.Lat, f.Lat) && near(*u.Lon, f.Lon)
					}
					if f.Time >= firstTimed || (!reported && len(untimed) > 0) {
						t.Errorf("fix %s: gpsdecode reports no fix there", f.Time)
					} else if early++; early > 1 {
						t.Errorf("fix %s: a second epoch before gpsdecode's first timed fix (%s)", f.Time, firstTimed)
					}
					continue
				}
				matched[f.Time] = true
				total++
				if !near(f.Lat, *g.Lat) || !near(f.Lon, *g.Lon) {
					t.Errorf("fix %s: %.7f,%.7f; gpsdecode %.9f,%.9f", f.Time, f.Lat, f.Lon, *g.Lat, *g.Lon)
				}
				if f.AltM != nil && g.AltMSL != nil && math.Abs(*f.AltM-*g.AltMSL) > 0.006 {
					t.Errorf("fix %s: altitude %v, gpsdecode %v", f.Time, *f.AltM, *g.AltMSL)
				}
				if f.CourseDeg != nil && g.Track != nil && math.Abs(*f.CourseDeg-*g.Track) > 0.006 {
					t.Errorf("fix %s: course %v, gpsdecode %v", f.Time, *f.CourseDeg, *g.Track)
				}
				if f.SpeedMps != nil && g.Speed != nil && math.Abs(*f.SpeedMps-*g.Speed) > 0.01 {
					t.Errorf("fix %s: speed %v, gpsdecode %v", f.Time, *f.SpeedMps, *g.Speed)
				}
				if f.Mode != nil && int(*f.Mode) != g.Mode && !(*f.Mode == 2 && g.Mode == 3 && (f.AltM != nil || prevMode == 3)) {
					t.Errorf("fix %s: mode %d, gpsdecode %d", f.Time, *f.Mode, g.Mode)
				}
				prevMode = 0
				if f.Mode != nil {
					prevMode = *f.Mode
				}
			}
			for tm := range timed {
				if why, ok := refusedOnPurpose[filepath.Base(file)][tm]; ok && !matched[tm] {
					t.Logf("gpsdecode reports a fix at %s that nmea-decode refuses: %s", tm, why)
				} else if !matched[tm] {
					t.Errorf("gpsdecode reports a fix at %s that nmea-decode does not", tm)
				}
			}
		})
	}
	if total == 0 {
		t.Fatal("no fix compared")
	}
	t.Logf("%d fixes compared over %d recordings", total, len(files))
}
