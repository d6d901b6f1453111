package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

func writeScenario(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// gone returns nil once nothing is at path, not even a dangling link.
func gone(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s still there (%v)", path, err)
	}
	return nil
}

// bytesSoFar returns what the reader has collected.
func (r *nmeaReader) bytesSoFar() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.bytes)
}

// readTruth reads a truth file as it stands (the last line may be partial).
func readTruth(path string) []truth.Line {
	b, _ := os.ReadFile(path)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	lines, _ := truth.Read(bytes.NewReader(b))
	return lines
}

// hasFault reports whether the truth has the given fault line.
func hasFault(path, fault, device, phase string) bool {
	for _, l := range readTruth(path) {
		if l.Type == "fault" && l.Fault == fault && l.Device == device && l.Phase == phase {
			return true
		}
	}
	return false
}

const determinismScenario = `name: determinism
seed: 42
start: 2026-11-27T10:00:00Z
duration: 3m
defaults:
  gps: {noise: true, cold_start: 20s, talker: GN, sentences: [RMC, GGA, GSA, GSV, VTG, ZDA, GST], rate: 2, baud: 38400}
vehicles:
  - id_prefix: veh-
    count: COUNT
    route: monaco-tunnel
faults:
  - {at: 30s, kind: garbage, device: gps, bytes: 200}
  - {at: 40s, kind: bad_checksum, duration: 5s}
  - {at: 50s, kind: fix_loss, duration: 10s}
  - {at: 70s, kind: clock_jump, offset: 30m, duration: 10s}
  - {at: 90s, kind: week_rollover, duration: 10s}
  - {at: 100s, kind: unplug, device: obd, duration: 10s}
  - {at: 110s, kind: can_error, count: 2}
  - {at: 120s, kind: ignition_off, duration: 30s}
  - {at: 125s, kind: dtc, code: P0301, duration: 20s}
  - {at: 150s, kind: uplink_down, duration: 10s}
`

// Same seed, same output, byte for byte. The guarantee: for each vehicle,
// its NMEA bytes and its fix, fault and end lines, in their order, depend
// only on the scenario and the seed — not on the machine, the --speed, the
// other vehicles or who reads. Each vehicle's --truth-dir file is therefore
// identical from run to run (OBD lines, written when an agent asks, are the
// only lines that can differ; nobody asks here). In the single --truth file
// vehicles running side by side interleave as they happen; each vehicle's
// lines in it are its --truth-dir file.
func TestSameSeedSameOutput(t *testing.T) {
	type output struct {
		perVehicle map[string][]byte // --truth-dir files
		combined   []byte
		nmea       map[string][]byte
	}
	run := func(vehicles int, speed, seed string) output {
		dir := t.TempDir()
		sc := writeScenario(t, dir, strings.Replace(determinismScenario, "COUNT", fmt.Sprint(vehicles), 1))
		all, perDir := filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "truth")
		s := startSim(t, "--scenario", sc, "--speed", speed, "--seed", seed, "--truth", all, "--truth-dir", perDir, "--link-dir", dir)
		out := output{perVehicle: map[string][]byte{}, nmea: map[string][]byte{}}
		readers := map[string]*nmeaReader{}
		for i := 1; i <= vehicles; i++ {
			id := fmt.Sprintf("veh-%03d", i)
			readers[id] = readNMEA(simtest.OpenPort(t, s.ports[id+" gps"]))
		}
		waitForEnds(t, all, vehicles)
		for id, r := range readers {
			// The last epoch, 10:02:59.50, ends with its GST sentence.
			testenv.Eventually(t, time.Minute, id+"'s last epoch", func() error { return testenv.True(bytes.Contains(r.bytesSoFar(), []byte("$GNGST,100259.50,"))) })
			b := r.bytesSoFar()
			out.nmea[id] = b[:bytes.Index(b, []byte("$GNGST,100259.50,"))]
		}
		s.stop(t)
		var err error
		if out.combined, err = os.ReadFile(all); err != nil {
			t.Fatal(err)
		}
		for id := range readers {
			if out.perVehicle[id], err = os.ReadFile(filepath.Join(perDir, id+".jsonl")); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	a := run(2, "100", "42")
	b := run(2, "300", "42")
	alone := run(1, "200", "42")
	other := run(2, "100", "43")

	for _, id := range []string{"veh-001", "veh-002"} {
		if !bytes.Equal(a.perVehicle[id], b.perVehicle[id]) {
			t.Errorf("%s: same seed, different truth:\n%s\n---\n%s", id, a.perVehicle[id], b.perVehicle[id])
		}
		if !bytes.Equal(a.nmea[id], b.nmea[id]) || len(a.nmea[id]) < 20000 {
			t.Errorf("%s: same seed, different NMEA bytes (%d and %d)", id, len(a.nmea[id]), len(b.nmea[id]))
		}
		if bytes.Equal(a.nmea[id], other.nmea[id]) {
			t.Errorf("%s: seeds 42 and 43 gave the same NMEA", id)
		}
		// The combined file holds each vehicle's lines in its order.
		var mine []byte
		for _, l := range bytes.SplitAfter(a.combined, []byte("\n")) {
			if bytes.Contains(l, []byte(`"vehicle":"`+id+`"`)) {
				mine = append(mine, l...)
			}
		}
		if !bytes.Equal(mine, a.perVehicle[id]) {
			t.Errorf("%s: its lines in --truth differ from its --truth-dir file", id)
		}
	}
	if !bytes.Equal(alone.perVehicle["veh-001"], a.perVehicle["veh-001"]) || !bytes.Equal(alone.nmea["veh-001"], a.nmea["veh-001"]) {
		t.Error("vehicle 1 of a fleet drives differently from the same scenario with one vehicle")
	}
	if bytes.Equal(a.nmea["veh-001"], a.nmea["veh-002"]) {
		t.Error("two vehicles of a fleet emit the same NMEA")
	}
	// Every fault is in the truth, at its time.
	lines, err := truth.Read(bytes.NewReader(a.perVehicle["veh-002"]))
	if err != nil {
		t.Fatal(err)
	}
	var faults []string
	for _, l := range lines {
		if l.Type == "fault" {
			faults = append(faults, fmt.Sprintf("%s %s %s %s", l.Time.Format("15:04:05"), l.Fault, l.Device, l.Phase))
		}
	}
	want := []string{"10:00:30 garbage gps instant", "10:00:40 bad_checksum gps begin", "10:00:45 bad_checksum gps end",
		"10:00:50 fix_loss gps begin", "10:01:00 fix_loss gps end", "10:01:10 clock_jump gps begin", "10:01:20 clock_jump gps end",
		"10:01:30 week_rollover gps begin", "10:01:40 week_rollover gps end", "10:01:40 unplug obd begin", "10:01:50 unplug obd end",
		"10:01:50 can_error obd instant", "10:02:00 ignition_off vehicle begin", "10:02:05 dtc vehicle begin", "10:02:25 dtc vehicle end",
		"10:02:30 ignition_off vehicle end", "10:02:30 uplink_down uplink begin", "10:02:40 uplink_down uplink end"}
	if strings.Join(faults, "\n") != strings.Join(want, "\n") {
		t.Errorf("fault lines:\n%s\nwant\n%s", strings.Join(faults, "\n"), strings.Join(want, "\n"))
	}
	// The trip boundaries: the engine on at the start, the ignition_off
	// halt, the engine off at the end; the distance the model drove.
	var bounds []string
	var dist []float64
	for _, l := range lines {
		switch l.Type {
		case "ignition":
			bounds = append(bounds, fmt.Sprintf("%s ignition %s", l.Time.Format("15:04:05"), l.State))
			dist = append(dist, l.DistanceM)
		case "stop":
			bounds = append(bounds, fmt.Sprintf("%s stop %s engine_off=%v", l.Time.Format("15:04:05"), l.Phase, l.EngineOff))
		}
	}
	want = []string{"10:00:00 ignition on", "10:02:00 stop begin engine_off=true", "10:02:00 ignition off", "10:02:30 ignition on",
		"10:02:30 stop end engine_off=true", "10:03:00 ignition off"}
	if strings.Join(bounds, "\n") != strings.Join(want, "\n") {
		t.Errorf("boundary lines:\n%s\nwant\n%s", strings.Join(bounds, "\n"), strings.Join(want, "\n"))
	}
	if len(dist) == 4 && (dist[0] != 0 || dist[1] < 500 || dist[1] != dist[2] || dist[3] <= dist[2]) {
		t.Errorf("distances at the ignition lines %v: want 0, then growing, the same across the halt", dist)
	}
	tr := truth.Trips(truth.Vehicles(lines)["veh-002"], truth.DefaultTripRules())
	if len(tr) != 1 || !tr[0].Start.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) || !tr[0].End.Equal(time.Date(2026, 11, 27, 10, 3, 0, 0, time.UTC)) {
		t.Errorf("trips of the truth: %v (a 30 s stop does not end a trip)", tr)
	}
}

// echoes reports whether a connection through addr echoes.
func echoes(addr string) bool {
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	b := make([]byte, 4)
	_, err = io.ReadFull(c, b)
	return err == nil && string(b) == "ping"
}

// Faults show on the real ports: the OBD port gets garbage; unplugged, a
// device's link and pty vanish and the client's reads fail; replugged, a new
// pty answers at the same link (a fresh adapter); the uplink proxy cuts the
// connection and refuses new ones for the length of uplink_down; replies
// are replaced while an OBD reply fault lasts.
func TestFaultsOnTheRealPorts(t *testing.T) {
	dir := t.TempDir()
	sc := writeScenario(t, dir, fmt.Sprintf(`name: wire
seed: 7
start: 2026-11-27T10:00:00Z
duration: 10m
uplink:
  upstream: %s
vehicles:
  - id: veh-001
faults:
  - {at: 20s, kind: garbage, device: obd, bytes: 50}
  - {at: 40s, kind: unplug, device: obd, duration: 20s}
  - {at: 90s, kind: unplug, device: gps, duration: 20s}
  - {at: 140s, kind: uplink_down, duration: 60s}
  - {at: 220s, kind: can_error, duration: 1h}
`, testenv.EchoServer(t)))
	truthPath := filepath.Join(dir, "truth.jsonl")
	s := startSim(t, "--scenario", sc, "--speed", "20", "--truth", truthPath, "--link-dir", dir)
	obdLink, gpsLink, uplink := s.ports["veh-001 obd"], s.ports["veh-001 gps"], s.ports["veh-001 uplink"]

	// Garbage on the OBD port: nobody asked anything, so all that arrives is it.
	obd := simtest.OpenPort(t, obdLink)
	obdBytes := readNMEA(obd)
	gps := readNMEA(simtest.OpenPort(t, gpsLink))
	testenv.Eventually(t, time.Minute, "the garbage", func() error { return testenv.True(len(obdBytes.bytesSoFar()) >= 52) })
	if g := obdBytes.bytesSoFar(); len(g) != 52 || !bytes.HasSuffix(g, []byte("\r\n")) || bytes.ContainsAny(g[:50], "$!>") {
		t.Errorf("OBD garbage %q: want 50 bytes of noise, no '$', '!' or '>', then CR LF", g)
	}

	// OBD unplugged: link and device gone, the client's reads fail.
	testenv.Eventually(t, time.Minute, "the OBD link removed", func() error { return gone(obdLink) })
	testenv.Eventually(t, time.Minute, "the OBD client's reads fail", func() error {
		obdBytes.mu.Lock()
		defer obdBytes.mu.Unlock()
		return testenv.True(obdBytes.err != nil)
	})
	// Replugged: a new pty at the link, answering as a freshly powered adapter.
	testenv.Eventually(t, time.Minute, "the OBD link back", func() error { _, err := os.Stat(obdLink); return err })
	obd2 := simtest.OpenPort(t, obdLink)
	if got := ask(t, obd2, "ATI"); got != "ATI\rELM327 v1.5\r\r>" {
		t.Errorf("ATI after replug (echo on again) → %q", got)
	}

	// GPS unplugged and replugged: no epoch of the gap reached anyone.
	testenv.Eventually(t, time.Minute, "the GPS link removed", func() error { return gone(gpsLink) })
	testenv.Eventually(t, time.Minute, "the GPS link back", func() error { _, err := os.Stat(gpsLink); return err })
	gps2 := readNMEA(simtest.OpenPort(t, gpsLink))
	testenv.Eventually(t, time.Minute, "NMEA after the replug", func() error { return testenv.True(bytes.Count(gps2.bytesSoFar(), []byte("\r\n")) >= 3) })
	for _, r := range append(parseRMC(t, completeSentences(gps.bytesSoFar())), parseRMC(t, completeSentences(gps2.bytesSoFar()))...) {
		if r.time >= "2026-11-27T10:01:30.000Z" && r.time < "2026-11-27T10:01:50.000Z" {
			t.Errorf("an epoch at %s went out while the GPS was unplugged", r.time)
		}
	}

	// The uplink: through the proxy until uplink_down, then cut, then back.
	if !echoes(uplink) {
		t.Fatal("the uplink proxy does not relay before the fault")
	}
	testenv.Eventually(t, time.Minute, "uplink_down in the truth", func() error { return testenv.True(hasFault(truthPath, "uplink_down", "uplink", "begin")) })
	testenv.Eventually(t, time.Minute, "the uplink cut", func() error { return testenv.True(!echoes(uplink)) })
	if hasFault(truthPath, "uplink_down", "uplink", "end") {
		t.Fatal("the 60 s outage (3 s real) ended before it was seen; the test machine is too slow for this check")
	}
	testenv.Eventually(t, time.Minute, "the uplink back", func() error {
		return testenv.True(echoes(uplink) && hasFault(truthPath, "uplink_down", "uplink", "end"))
	})

	// CAN ERROR for good from +220 s.
	testenv.Eventually(t, time.Minute, "can_error in the truth", func() error { return testenv.True(hasFault(truthPath, "can_error", "obd", "begin")) })
	if _, ok := any(elm327.NewAdapter(nil)).(faultSetter); ok {
		ask(t, obd2, "ATE0")
		testenv.Eventually(t, time.Minute, "CAN ERROR replies", func() error { return testenv.True(strings.Contains(ask(t, obd2, "010C"), "CAN ERROR")) })
	} else {
		t.Log("this build's ELM327 emulator has no SetFault: the reply fault is only in the truth (the OBD helper adds it)")
	}
	s.stop(t)
	for _, l := range readTruth(truthPath) {
		if l.Type == "fix" && !l.Time.Before(time.Date(2026, 11, 27, 10, 1, 30, 0, time.UTC)) && l.Time.Before(time.Date(2026, 11, 27, 10, 1, 50, 0, time.UTC)) {
			t.Errorf("the truth has a fix at %v, while the GPS was unplugged", l.Time)
		}
	}
}

// completeSentences drops a partial last sentence.
func completeSentences(b []byte) []byte {
	if i := bytes.LastIndex(b, []byte("\r\n")); i >= 0 {
		b = b[:i+2]
	} else {
		return nil
	}
	if i := bytes.IndexByte(b, '$'); i > 0 {
		b = b[i:] // a sentence cut by the unplug
	}
	return b
}

func TestTCPTransport(t *testing.T) {
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	s := startSim(t, "--transport", "tcp", "--duration", "30s", "--speed", "30", "--truth", truthPath, "--start", "2026-11-27T10:00:00Z", "--seed", "7")
	gpsAddr, obdAddr := s.ports["veh-001 gps"], s.ports["veh-001 obd"]
	if !strings.HasPrefix(gpsAddr, "tcp://127.0.0.1:") || !strings.HasPrefix(obdAddr, "tcp://127.0.0.1:") {
		t.Fatalf("ports %v", s.ports)
	}
	g, err := net.Dial("tcp", strings.TrimPrefix(gpsAddr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	o, err := net.Dial("tcp", strings.TrimPrefix(obdAddr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := o.Write([]byte("ATZ\r")); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(o).ReadString('>')
	if err != nil || reply != "ATZ\r\r\rELM327 v1.5\r\r>" {
		t.Errorf("ATZ over TCP → %q, %v", reply, err)
	}
	g.SetDeadline(time.Now().Add(60 * time.Second))
	sc := bufio.NewScanner(g)
	n := 0
	for n < 90 && sc.Scan() {
		n++
	}
	if n < 90 {
		t.Fatalf("%d NMEA lines over TCP, want 90: %v", n, sc.Err())
	}
	lines := waitForEnds(t, truthPath, 1)
	fixes := 0
	for _, l := range lines {
		if l.Type == "fix" {
			fixes++
		}
	}
	if fixes != 30 {
		t.Errorf("%d fixes in the truth, want 30", fixes)
	}
	s.stop(t)
}

func TestValidateAndScenariosCommands(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	good := writeScenario(t, dir, "duration: 1h\nvehicles:\n  - id: a\n")
	out, err := exec.Command(bin, "validate", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: scenario") {
		t.Errorf("validate good: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("duration: 1h\nvehicles:\n  - id: a\n    gps: {rate: 99}\nfaults:\n  - {at: 5m, kind: meteor}\n"), 0o600)
	cmd := exec.Command(bin, "validate", bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("validate bad: %v", err)
	}
	for _, want := range []string{bad + `:4:17: vehicles[0].gps.rate "99"`, bad + `:6:20: faults[0].kind "meteor"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("validate bad: stderr %q lacks %q", stderr.String(), want)
		}
	}
	// run refuses a bad scenario with the same errors.
	cmd = exec.Command(bin, "run", "--scenario", bad)
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), bad+":4:17:") {
		t.Errorf("run --scenario bad: %v\n%s", err, stderr.String())
	}

	out, err = exec.Command(bin, "scenarios").Output()
	if err != nil || !regexp.MustCompile(`(?m)^tunnel-unplug-outage\s+\S`).Match(out) || !regexp.MustCompile(`(?m)^gps-torture\s`).Match(out) {
		t.Errorf("scenarios: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "scenarios", "obd-faults").Output()
	if err != nil || !strings.Contains(string(out), "kind: can_error") {
		t.Errorf("scenarios obd-faults: %v\n%s", err, out)
	}
	for _, name := range []string{"tunnel-unplug-outage", "gps-torture", "obd-faults", "fleet", "tcp-devices"} {
		if out, err := exec.Command(bin, "validate", name).CombinedOutput(); err != nil {
			t.Errorf("validate %s: %v\n%s", name, err, out)
		}
	}
}

// A person at a terminal sees a live progress line on stderr; the logs
// print above it.
func TestProgressLineOnATerminal(t *testing.T) {
	bin := buildBinary(t)
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	cmd := exec.Command(bin, "run", "--duration", "20s", "--speed", "20")
	cmd.Stderr = tty
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var got []byte
	buf := make([]byte, 4096)
	master.SetReadDeadline(time.Now().Add(60 * time.Second))
	for !bytes.Contains(got, []byte("drive ended")) || !bytes.Contains(got[bytes.Index(got, []byte("drive ended")):], []byte("firmware-sim: 1 vehicles")) {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatalf("stderr so far %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !regexp.MustCompile(`\r\x1b\[Kfirmware-sim: 1 vehicles, \d+ fixes, \d+ OBD samples, 0/0 fault marks, sim \d\d:\d\d:\d\d \+\S+/20s \(x20\)`).Match(got) {
		t.Errorf("no progress line on the terminal:\n%q", got)
	}
	if !bytes.Contains(got, []byte("\r\x1b[Ktime=")) {
		t.Errorf("log lines do not clear the progress line before printing:\n%q", got)
	}
}
