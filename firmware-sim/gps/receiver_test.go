package gps_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
)

var start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// run is the output of a receiver run.
type run struct {
	out     []byte
	fixes   []gps.Fix
	reports []gps.Report
	marks   []firmwaresim.Mark
}

// drive runs r (Vehicle and Clock filled in here) over d of simulated time.
func drive(t *testing.T, r gps.Receiver, seed uint64, d time.Duration, w interface{ Write([]byte) (int, error) }) run {
	t.Helper()
	return driveRoute(t, r, "monaco-loop", seed, d, w)
}

func driveRoute(t *testing.T, r gps.Receiver, route string, seed uint64, d time.Duration, w interface{ Write([]byte) (int, error) }) run {
	t.Helper()
	rt, err := firmwaresim.RouteByName(route)
	if err != nil {
		t.Fatal(err)
	}
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: rt, Seed: seed, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	r.Vehicle, r.Clock, r.Until = v, &simtest.Clock{T: start}, start.Add(d)
	if r.Rate == 0 {
		r.Rate = 1
	}
	var res run
	r.OnEpoch = func(rep gps.Report) { res.reports = append(res.reports, rep) }
	r.OnFault = func(m firmwaresim.Mark) { res.marks = append(res.marks, m) }
	var buf bytes.Buffer
	if w == nil {
		w = &buf
	}
	if err := r.Run(context.Background(), w, func(f gps.Fix) { res.fixes = append(res.fixes, f) }); err != nil {
		t.Fatal(err)
	}
	res.out = buf.Bytes()
	return res
}

// sentences splits a stream into its sentences and checks every checksum.
func sentences(t *testing.T, stream []byte) []string {
	t.Helper()
	var out []string
	for _, s := range strings.Split(strings.TrimSuffix(string(stream), "\r\n"), "\r\n") {
		if !checksumOK(s) {
			t.Fatalf("bad sentence %q", s)
		}
		out = append(out, s)
	}
	return out
}

func checksumOK(s string) bool {
	star := strings.LastIndexByte(s, '*')
	if !strings.HasPrefix(s, "$") || star < 0 || len(s) != star+3 {
		return false
	}
	return withChecksum(s[1:star]) == s
}

func TestReceiverEpochs(t *testing.T) {
	for _, rate := range []int{1, 5, 25} {
		res := drive(t, gps.Receiver{Rate: rate}, 2, 10*time.Second, nil)
		if len(res.fixes) != 10*rate {
			t.Errorf("rate %d: %d fixes in 10 s, want %d", rate, len(res.fixes), 10*rate)
		}
		if n := len(sentences(t, res.out)); n != 3*len(res.fixes) {
			t.Errorf("rate %d: %d sentences for %d epochs", rate, n, len(res.fixes))
		}
		for i, f := range res.fixes {
			if want := gps.EpochTime(start, rate, i); !f.Time.Equal(want) {
				t.Errorf("rate %d: fix %d at %v, want %v", rate, i, f.Time, want)
			}
		}
	}
}

// everything is a receiver with every feature on.
var everything = gps.Receiver{Rate: 2, Format: gps.Format{Talker: "GN", Sentences: gps.Sentences}, Noise: true, ColdStart: 30 * time.Second,
	Faults: []firmwaresim.Fault{
		{Kind: firmwaresim.FaultGarbage, Device: firmwaresim.DeviceGPS, At: time.Minute, Bytes: 100},
		{Kind: firmwaresim.FaultBadChecksum, Device: firmwaresim.DeviceGPS, At: 70 * time.Second, Duration: 5 * time.Second},
		{Kind: firmwaresim.FaultFixLoss, Device: firmwaresim.DeviceGPS, At: 80 * time.Second, Duration: 10 * time.Second},
		{Kind: firmwaresim.FaultClockJump, Device: firmwaresim.DeviceGPS, At: 100 * time.Second, Duration: 10 * time.Second, Offset: time.Hour},
		{Kind: firmwaresim.FaultWeekRollover, Device: firmwaresim.DeviceGPS, At: 120 * time.Second, Duration: 10 * time.Second},
	}}

func TestReceiverSameSeedSameBytes(t *testing.T) {
	for _, r := range []gps.Receiver{{Rate: 1}, everything} {
		a := drive(t, withSeed(r, 11), 11, 3*time.Minute, nil)
		b := drive(t, withSeed(r, 11), 11, 3*time.Minute, nil)
		c := drive(t, withSeed(r, 12), 12, 3*time.Minute, nil)
		if !bytes.Equal(a.out, b.out) {
			t.Error("the same seed gave different NMEA bytes")
		}
		if bytes.Equal(a.out, c.out) {
			t.Error("different seeds gave the same NMEA bytes")
		}
	}
}

func withSeed(r gps.Receiver, seed uint64) gps.Receiver {
	r.Seed = seed
	return r
}

// tpv is the part of gpsd's TPV report the test compares.
type tpv struct {
	Class  string   `json:"class"`
	Mode   int      `json:"mode"`
	Time   string   `json:"time"`
	Lat    float64  `json:"lat"`
	Lon    float64  `json:"lon"`
	AltMSL *float64 `json:"altMSL"`
	Speed  *float64 `json:"speed"`
	Track  *float64 `json:"track"`
}

// The sentences decoded by an independent decoder (gpsd's gpsdecode) carry the
// same values as the fixes the receiver reports for the ground truth, for
// every talker and sentence set, with noise, a cold start and the tunnel.
func TestGpsdecodeAgreesWithReportedFixes(t *testing.T) {
	if _, err := exec.LookPath("gpsdecode"); err != nil {
		t.Fatal("gpsdecode not found (Debian package gpsd-clients): ", err)
	}
	formats := []gps.Format{
		{Talker: "GP"},
		{Talker: "GN", Sentences: []string{"RMC", "GGA", "GSA", "GSV", "VTG", "ZDA"}},
		{Talker: "GP", Sentences: []string{"GGA", "GSA", "GSV", "VTG", "ZDA"}},
		{Talker: "GN", Sentences: []string{"GNS", "VTG", "ZDA", "GST"}},
		{Talker: "GL", Sentences: []string{"RMC", "GLL", "GST"}},
		{Talker: "GA", Sentences: []string{"RMC", "GGA"}},
		{Talker: "GB", Sentences: []string{"RMC", "GGA", "GSA"}},
		{Talker: "BD", Sentences: []string{"RMC", "GNS"}},
		{Talker: "GN", Sentences: gps.Sentences},
	}
	for _, format := range formats {
		for _, rate := range []int{1, 5} {
			name := fmt.Sprintf("%s %s %d Hz", format.Talker, strings.Join(format.Sentences, ","), rate)
			// Seed 12 drives through the Boulevard Louis II tunnel in the first minute.
			r := gps.Receiver{Rate: rate, Format: format, Noise: true, ColdStart: 20 * time.Second, Seed: 5}
			res := drive(t, r, 12, 3*time.Minute, nil)
			checkGpsdecode(t, name, format, res)
		}
	}
}

func checkGpsdecode(t *testing.T, name string, format gps.Format, res run) {
	t.Helper()
	cmd := exec.Command("gpsdecode", "-j")
	cmd.Stdin = bytes.NewReader(res.out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	js, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: gpsdecode: %v\n%s", name, err, stderr.String())
	}
	byTime := map[string]gps.Fix{}
	for _, f := range res.fixes {
		byTime[f.Time.Format("2006-01-02T15:04:05.000Z")] = f
	}
	set := format.Sentences
	if len(set) == 0 {
		set = gps.DefaultSentences
	}
	has := func(s ...string) bool {
		return slices.ContainsFunc(set, func(x string) bool { return slices.Contains(s, x) })
	}
	matched := 0
	sc := bufio.NewScanner(bytes.NewReader(js))
	for sc.Scan() {
		var r tpv
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: gpsdecode output %q: %v", name, sc.Text(), err)
		}
		if r.Class != "TPV" || r.Mode < 2 {
			continue
		}
		f, ok := byTime[r.Time]
		if !ok {
			t.Errorf("%s: gpsdecode reports a fix at %q that the receiver did not", name, r.Time)
			continue
		}
		matched++
		if math.Abs(r.Lat-f.Lat) > 1e-6 || math.Abs(r.Lon-f.Lon) > 1e-6 {
			t.Errorf("%s %s: gpsdecode %.9f,%.9f, fix %.9f,%.9f", name, r.Time, r.Lat, r.Lon, f.Lat, f.Lon)
		}
		if has("GGA", "GNS") && (r.AltMSL == nil || math.Abs(*r.AltMSL-f.AltM) > 1e-3) {
			t.Errorf("%s %s: altitude %v, fix %.1f", name, r.Time, r.AltMSL, f.AltM)
		}
		// gpsd prints speed with 3 decimals and may use 1852/3600 for the
		// knot. gpsdecode 3.22 reports speed and track from RMC; from VTG alone
		// it reports neither (it derives a speed from successive positions),
		// so VTG's values are checked against the standard in TestEncodeEverySentence.
		if has("RMC") && (r.Speed == nil || math.Abs(*r.Speed-f.SpeedMps) > 2e-3) {
			t.Errorf("%s %s: speed %v, fix %.4f", name, r.Time, deref(r.Speed), f.SpeedMps)
		}
		if has("RMC") && (r.Track == nil || math.Abs(*r.Track-f.CourseDeg) > 1e-3) {
			t.Errorf("%s %s: track %v, fix %.1f", name, r.Time, deref(r.Track), f.CourseDeg)
		}
	}
	// gpsd reports an epoch when the next one begins: the last before each
	// outage is reported late or not at all, and the first may be held back
	// while it learns the cycle.
	if matched < len(res.fixes)*9/10 || len(res.fixes) < 100 {
		t.Errorf("%s: gpsdecode reported %d of %d fixes", name, matched, len(res.fixes))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A cold receiver knows no time at first, then has time but no fix.
func TestColdStart(t *testing.T) {
	res := drive(t, gps.Receiver{Rate: 1, ColdStart: 45 * time.Second, Format: gps.Format{Sentences: []string{"RMC", "GGA", "GSV"}}}, 2, time.Minute, nil)
	for _, rep := range res.reports {
		off := rep.Time.Sub(start)
		switch {
		case off < 15*time.Second:
			if !rep.Fix.NoTime || rep.Fix.Valid || len(rep.Fix.InView) != 0 {
				t.Errorf("+%v: time known %v, fix %v, %d in view; want nothing yet", off, !rep.Fix.NoTime, rep.Fix.Valid, len(rep.Fix.InView))
			}
		case off < 45*time.Second:
			if rep.Fix.NoTime || rep.Fix.Valid || !rep.Fix.Time.Equal(rep.Time) {
				t.Errorf("+%v: time %v (known %v), fix %v; want the time and no fix", off, rep.Fix.Time, !rep.Fix.NoTime, rep.Fix.Valid)
			}
		default:
			if !rep.Fix.Valid {
				t.Errorf("+%v: no fix after the cold start", off)
			}
		}
	}
	lines := sentences(t, res.out)
	if lines[0] != withChecksum("GPRMC,,V,,,,,,,,,,N") || lines[1] != withChecksum("GPGGA,,,,,,0,00,99.99,,M,,M,,") || lines[2] != withChecksum("GPGSV,1,1,00") {
		t.Errorf("first epoch of a cold receiver: %q", lines[:3])
	}
	if len(res.fixes) != 15 {
		t.Errorf("%d fixes in the minute, want 15", len(res.fixes))
	}
}

// In the tunnel the fix is lost, and it comes back one to three seconds
// after the sky does.
func TestTunnelLosesTheFix(t *testing.T) {
	res := drive(t, gps.Receiver{Rate: 5, Seed: 1}, 12, 3*time.Minute, nil) // in the tunnel at about +30 s
	var lost, regained int
	var skyBack time.Time
	for i, rep := range res.reports {
		if rep.State.Tunnel && rep.Fix.Valid {
			t.Fatalf("%v: a fix in the tunnel", rep.Time)
		}
		if i == 0 {
			continue
		}
		prev := res.reports[i-1]
		if prev.Fix.Valid && !rep.Fix.Valid {
			lost++
		}
		if prev.State.Tunnel && !rep.State.Tunnel {
			skyBack = rep.Time
		}
		if !prev.Fix.Valid && rep.Fix.Valid {
			regained++
			if d := rep.Time.Sub(skyBack); d < time.Second || d > 3200*time.Millisecond {
				t.Errorf("fix back %v after leaving the tunnel, want 1-3 s", d)
			}
		}
	}
	if lost != 1 || regained != 1 {
		t.Errorf("fix lost %d times and regained %d times; want once through the tunnel", lost, regained)
	}
}

// The noise follows the DOP and wanders; the positions stay on the road
// within a few sigma and never teleport.
func TestNoiseFollowsTheDOP(t *testing.T) {
	res := drive(t, gps.Receiver{Rate: 1, Noise: true, Seed: 3}, 3, 30*time.Minute, nil)
	var sumSq, n float64
	var prevErr, maxStep float64
	var prev *gps.Report
	for i := range res.reports {
		rep := &res.reports[i]
		if !rep.Fix.Valid {
			prev = nil
			continue
		}
		s := rep.State
		e := simtest.HaversineM(rep.Fix.Lat, rep.Fix.Lon, s.Lat, s.Lon)
		sigma := gps.UERE * s.HDOP
		if e > 5*sigma {
			t.Errorf("%v: %.1f m off the road at HDOP %.2f", rep.Time, e, s.HDOP)
		}
		sumSq += (e / s.HDOP) * (e / s.HDOP)
		n++
		if dv := math.Abs(rep.Fix.SpeedMps - s.SpeedMps); dv > 5*0.05*s.HDOP+Knot5 {
			t.Errorf("%v: GPS speed %.3f m/s, model %.3f m/s", rep.Time, rep.Fix.SpeedMps, s.SpeedMps)
		}
		if math.Abs(rep.Fix.AltM-s.AltM) > 5*gps.UERE*s.VDOP {
			t.Errorf("%v: altitude %.1f m, model %.1f m", rep.Time, rep.Fix.AltM, s.AltM)
		}
		if prev != nil {
			// No teleports: a noisy fix moves at most what the vehicle drove
			// plus the change of the (slowly wandering) error.
			moved := simtest.HaversineM(prev.Fix.Lat, prev.Fix.Lon, rep.Fix.Lat, rep.Fix.Lon)
			drove := simtest.HaversineM(prev.State.Lat, prev.State.Lon, s.Lat, s.Lon)
			maxStep = max(maxStep, math.Abs(moved-drove))
			if moved > drove+2*sigma {
				t.Errorf("%v: fix moved %.1f m while the vehicle drove %.1f m", rep.Time, moved, drove)
			}
		}
		prevErr = e
		prev = rep
	}
	_ = prevErr
	// The horizontal error over HDOP is UERE on average (root mean square).
	if rms := math.Sqrt(sumSq / n); rms < 0.4*gps.UERE || rms > 1.6*gps.UERE {
		t.Errorf("rms error / HDOP = %.2f m, want about UERE = %.1f m", rms, gps.UERE)
	}
	clean := drive(t, gps.Receiver{Rate: 1, Seed: 3}, 3, time.Minute, nil)
	for _, rep := range clean.reports {
		if rep.Fix.Valid && simtest.HaversineM(rep.Fix.Lat, rep.Fix.Lon, rep.State.Lat, rep.State.Lon) > 0.02 {
			t.Fatalf("without noise the fix is %.3f m off the model", simtest.HaversineM(rep.Fix.Lat, rep.Fix.Lon, rep.State.Lat, rep.State.Lon))
		}
	}
}

// Knot5 is half the resolution of a speed in knots with three decimals.
const Knot5 = 0.0005 * gps.Knot

// timedWriter records the simulated time of each write.
type timedWriter struct {
	clock *simtest.Clock
	at    []time.Time
	bytes [][]byte
	baud  int // what the client reads at; 0: no line speed
	down  bool
	plugs []string
}

func (w *timedWriter) Write(b []byte) (int, error) {
	if w.down {
		return 0, fmt.Errorf("unplugged: %w", firmwaresim.ErrLinkDown)
	}
	w.at = append(w.at, w.clock.T)
	w.bytes = append(w.bytes, bytes.Clone(b))
	return len(b), nil
}

func (w *timedWriter) Baud() (int, bool) { return w.baud, w.baud > 0 }
func (w *timedWriter) Unplug() error     { w.down = true; w.plugs = append(w.plugs, "unplug"); return nil }
func (w *timedWriter) Replug() error     { w.down = false; w.plugs = append(w.plugs, "replug"); return nil }

// runTimed runs r writing to a timedWriter on the same clock.
func runTimed(t *testing.T, r gps.Receiver, d time.Duration, clientBaud int) (*timedWriter, run) {
	t.Helper()
	rt, _ := firmwaresim.RouteByName("monaco-loop")
	v, err := firmwaresim.NewVehicle(firmwaresim.Config{Route: rt, Seed: 2, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	clock := &simtest.Clock{T: start}
	w := &timedWriter{clock: clock, baud: clientBaud}
	r.Vehicle, r.Clock, r.Until = v, clock, start.Add(d)
	var res run
	r.OnEpoch = func(rep gps.Report) { res.reports = append(res.reports, rep) }
	r.OnFault = func(m firmwaresim.Mark) { res.marks = append(res.marks, m) }
	if err := r.Run(context.Background(), w, func(f gps.Fix) { res.fixes = append(res.fixes, f) }); err != nil {
		t.Fatal(err)
	}
	return w, res
}

// Without StrictBaud the line is a pty's: a client at another speed reads
// the sentences all the same.
func TestSpeedMismatchGarblesOnlyAStrictLine(t *testing.T) {
	for _, strict := range []bool{false, true} {
		w, res := runTimed(t, gps.Receiver{Rate: 1, Baud: 9600, StrictBaud: strict}, 5*time.Second, 4800)
		clean := bytes.HasPrefix(w.bytes[0], []byte("$GPRMC,"))
		if clean == strict || len(res.fixes) != map[bool]int{false: 5, true: 0}[strict] {
			t.Errorf("strict %v, client at 4800 for a 9600-baud receiver: read %q, %d fixes reported", strict, w.bytes[0], len(res.fixes))
		}
	}
}

// Output is paced to the baud rate: each sentence leaves when its last byte
// would have, and an epoch that does not fit is skipped.
func TestPacedToTheBaudRate(t *testing.T) {
	w, res := runTimed(t, gps.Receiver{Rate: 1, Baud: 4800}, 5*time.Second, 4800)
	if len(w.at) != 15 {
		t.Fatalf("%d writes in 5 s, want one per sentence, 15", len(w.at))
	}
	for i, at := range w.at {
		epoch := start.Add(time.Duration(i/3) * time.Second)
		sent := 0
		for j := i - i%3; j <= i; j++ {
			sent += len(w.bytes[j])
		}
		if want := epoch.Add(time.Duration(sent) * 10 * time.Second / 4800); !at.Equal(want) {
			t.Errorf("sentence %d written at %v, want %v (%d bytes at 4800 baud)", i, at.Sub(start), want.Sub(start), sent)
		}
	}
	// Five epochs a second of RMC, GGA, GSA (about 220 bytes) need 11,000
	// baud: at 9600 some are skipped, at 19200 none.
	_, res = runTimed(t, gps.Receiver{Rate: 5, Baud: 9600}, 10*time.Second, 9600)
	if skipped := countSkipped(res, "overrun"); skipped == 0 || skipped == len(res.reports) || len(res.fixes)+skipped != 50 {
		t.Errorf("5 Hz at 9600 baud: %d of %d epochs skipped, %d fixes", skipped, len(res.reports), len(res.fixes))
	}
	_, res = runTimed(t, gps.Receiver{Rate: 5, Baud: 19200}, 10*time.Second, 19200)
	if skipped := countSkipped(res, "overrun"); skipped != 0 || len(res.fixes) != 50 {
		t.Errorf("5 Hz at 19200 baud: %d epochs skipped, %d fixes", skipped, len(res.fixes))
	}
	if n := (gps.Format{}).EpochBytes(); n < 200 || n > 300 {
		t.Errorf("EpochBytes of the default set = %d", n)
	}
}

func countSkipped(res run, why string) int {
	n := 0
	for _, r := range res.reports {
		if r.Skipped == why {
			n++
		}
	}
	return n
}

// Each GPS fault shows on the wire as it should, and nothing else does.
func TestFaultsOnTheWire(t *testing.T) {
	at := func(s int) time.Duration { return time.Duration(s) * time.Second }
	faults := []firmwaresim.Fault{
		{Kind: firmwaresim.FaultGarbage, Device: firmwaresim.DeviceGPS, At: at(10) + 500*time.Millisecond, Bytes: 200},
		{Kind: firmwaresim.FaultBadChecksum, Device: firmwaresim.DeviceGPS, At: at(20), Duration: at(3)},
		{Kind: firmwaresim.FaultFixLoss, Device: firmwaresim.DeviceGPS, At: at(30), Duration: at(5)},
		{Kind: firmwaresim.FaultClockJump, Device: firmwaresim.DeviceGPS, At: at(40), Duration: at(2), Offset: -90 * time.Minute},
		{Kind: firmwaresim.FaultWeekRollover, Device: firmwaresim.DeviceGPS, At: at(50), Duration: at(2)},
		{Kind: firmwaresim.FaultUnplug, Device: firmwaresim.DeviceGPS, At: at(60), Duration: at(4)},
		{Kind: firmwaresim.FaultBaudChange, Device: firmwaresim.DeviceGPS, At: at(70), Duration: at(3), Baud: 4800},
		{Kind: firmwaresim.FaultCANError, Device: firmwaresim.DeviceOBD, At: at(75), Count: 2}, // not the receiver's: only reported
	}
	w, res := runTimed(t, gps.Receiver{Rate: 1, Baud: 9600, Faults: faults, StrictBaud: true}, 80*time.Second, 9600)

	var all []byte
	for _, b := range w.bytes {
		all = append(all, b...)
	}
	garbage := 0
	for i, b := range w.bytes {
		off := w.at[i].Sub(start)
		switch {
		case off > at(10) && off < at(11) && b[0] != '$':
			if len(b) != 202 || !bytes.HasSuffix(b, []byte("\r\n")) || bytes.ContainsAny(b[:200], "$!>") {
				t.Errorf("garbage burst %q", b)
			}
			garbage++
		case off > at(20) && off < at(23):
			if s := strings.TrimSuffix(string(b), "\r\n"); checksumOK(s) || !checksumOK(fixChecksum(s)) {
				t.Errorf("+%v: %q: want a sentence whose only fault is its checksum", off, s)
			}
		case off > at(70) && off < at(73):
			// A UART at 9600 baud samples a 4800-baud byte as two.
			if bytes.ContainsAny(b, "$") || len(b) < 400 {
				t.Errorf("+%v: a 9600-baud client read %q from a 4800-baud receiver; want twice as many bytes of garbage", off, b)
			}
		default:
			if s := strings.TrimSuffix(string(b), "\r\n"); !checksumOK(s) {
				t.Errorf("+%v: unexpected %q", off, s)
			}
		}
	}
	if garbage != 1 {
		t.Errorf("%d garbage bursts, want 1", garbage)
	}
	want := map[int]string{} // second → what its epoch is
	for s := range 80 {
		switch {
		case s >= 20 && s < 23:
			want[s] = "garbled"
		case s >= 30 && s < 35:
			want[s] = "no fix"
		case s >= 35 && s < 38:
			want[s] = "fix or reacquiring"
		case s >= 40 && s < 42:
			want[s] = "time -1h30m"
		case s >= 50 && s < 52:
			want[s] = "time -1024 weeks"
		case s >= 60 && s < 64:
			want[s] = "unplugged"
		case s >= 70 && s < 73:
			want[s] = "garbled"
		default:
			want[s] = "fix"
		}
	}
	byTime := map[time.Time]gps.Fix{}
	for _, f := range res.fixes {
		byTime[f.Time] = f
	}
	for _, rep := range res.reports {
		s := int(rep.Time.Sub(start) / time.Second)
		_, reported := byTime[rep.Fix.Time]
		switch want[s] {
		case "garbled":
			if !rep.Garbled || !rep.Sent || reported {
				t.Errorf("+%ds: garbled %v, sent %v, reported as a fix %v", s, rep.Garbled, rep.Sent, reported)
			}
		case "no fix":
			if rep.Fix.Valid || reported {
				t.Errorf("+%ds: a fix during fix loss", s)
			}
		case "time -1h30m", "time -1024 weeks":
			shift := -90 * time.Minute
			if want[s] == "time -1024 weeks" {
				shift = -firmwaresim.WeekRollover
			}
			if !rep.Fix.Time.Equal(rep.Time.Add(shift)) || !reported {
				t.Errorf("+%ds: the wire says %v; want %v", s, rep.Fix.Time, rep.Time.Add(shift))
			}
		case "unplugged":
			if rep.Sent || rep.Skipped != "unplugged" || reported {
				t.Errorf("+%ds: sent %v (%s) while unplugged", s, rep.Sent, rep.Skipped)
			}
		case "fix":
			if !rep.Sent || !rep.Fix.Valid || !reported || !rep.Fix.Time.Equal(rep.Time) {
				t.Errorf("+%ds: sent %v, fix %v, reported %v, time %v", s, rep.Sent, rep.Fix.Valid, reported, rep.Fix.Time)
			}
		}
	}
	if strings.Join(w.plugs, ",") != "unplug,replug" {
		t.Errorf("plug calls %v", w.plugs)
	}
	var kinds []string
	for _, m := range res.marks {
		kinds = append(kinds, fmt.Sprintf("%s %s %v", m.Fault.Kind, m.Phase, m.At))
	}
	wantMarks := []string{"garbage instant 10.5s", "bad_checksum begin 20s", "bad_checksum end 23s", "fix_loss begin 30s", "fix_loss end 35s",
		"clock_jump begin 40s", "clock_jump end 42s", "week_rollover begin 50s", "week_rollover end 52s", "unplug begin 1m0s", "unplug end 1m4s",
		"baud_change begin 1m10s", "baud_change end 1m13s", "can_error instant 1m15s"}
	if !slices.Equal(kinds, wantMarks) {
		t.Errorf("marks reported:\n%s\nwant\n%s", strings.Join(kinds, "\n"), strings.Join(wantMarks, "\n"))
	}
}

// fixChecksum replaces the checksum of s with the right one.
func fixChecksum(s string) string {
	star := strings.LastIndexByte(s, '*')
	if star < 1 {
		return s
	}
	return withChecksum(s[1:star])
}

// A write that finds the link down loses the epoch, and the receiver goes on.
func TestLinkDownLosesTheEpochOnly(t *testing.T) {
	rt, _ := firmwaresim.RouteByName("monaco-loop")
	v, _ := firmwaresim.NewVehicle(firmwaresim.Config{Route: rt, Seed: 2, Start: start})
	clock := &simtest.Clock{T: start}
	w := &flakyWriter{fail: map[int]bool{3: true, 4: true}}
	var fixes []gps.Fix
	r := gps.Receiver{Vehicle: v, Clock: clock, Rate: 1, Until: start.Add(10 * time.Second)}
	if err := r.Run(context.Background(), w, func(f gps.Fix) { fixes = append(fixes, f) }); err != nil {
		t.Fatal(err)
	}
	if len(fixes) != 8 {
		t.Errorf("%d fixes reported, want the 8 delivered", len(fixes))
	}
	w = &flakyWriter{fail: map[int]bool{2: true}, err: errors.New("disk on fire")}
	v, _ = firmwaresim.NewVehicle(firmwaresim.Config{Route: rt, Seed: 2, Start: start})
	r = gps.Receiver{Vehicle: v, Clock: &simtest.Clock{T: start}, Rate: 1, Until: start.Add(10 * time.Second)}
	if err := r.Run(context.Background(), w, nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("another write error: Run returned %v", err)
	}
}

type flakyWriter struct {
	n    int
	fail map[int]bool
	err  error
}

func (w *flakyWriter) Write(b []byte) (int, error) {
	defer func() { w.n++ }()
	if w.fail[w.n] {
		if w.err != nil {
			return 0, w.err
		}
		return 0, fmt.Errorf("client gone: %w", firmwaresim.ErrLinkDown)
	}
	return len(b), nil
}
