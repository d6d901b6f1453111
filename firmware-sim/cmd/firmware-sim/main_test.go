package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/internal/simtest"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// These tests run the real binary on real pseudo-terminals, as an agent and
// a tester would. Deadlines only guard against hangs; nothing asserts timing.

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

func buildBinary(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "./firmware-sim/cmd/firmware-sim")
}

// sim is a running firmware-sim.
type sim struct {
	cmd    *exec.Cmd
	ports  map[string]string // "veh-001 gps" → link or device
	stderr *bytes.Buffer
	done   chan error
}

// startSim runs `firmware-sim run args...` and waits for "ready".
func startSim(t *testing.T, args ...string) *sim {
	t.Helper()
	cmd := exec.Command(buildBinary(t), append([]string{"run"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{cmd: cmd, ports: map[string]string{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.done <- cmd.Wait()
	}()
	portLine := regexp.MustCompile(`^(\S+) (gps|obd|uplink) (/dev/pts/\d+|tcp://\S+)(?: -> (\S+))?$`)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("firmware-sim exited before ready; stderr:\n%s", s.stderr)
			}
			if l == "ready" {
				go func() {
					for range lines {
					}
				}()
				return s
			}
			m := portLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected stdout line %q", l)
			}
			s.ports[m[1]+" "+m[2]] = m[3]
			if m[4] != "" && m[2] != "uplink" {
				s.ports[m[1]+" "+m[2]] = m[4]
			}
		case <-deadline:
			t.Fatal("no ready line within 30 s")
		}
	}
}

// stop sends SIGTERM and requires exit status 0.
func (s *sim) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("firmware-sim exited with %v; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("firmware-sim did not exit within 30 s of SIGTERM")
	}
}

// nmeaReader collects the sentences of a GPS port in the background.
type nmeaReader struct {
	mu    sync.Mutex
	bytes []byte
	err   error // why reading stopped
}

func readNMEA(f *os.File) *nmeaReader {
	r := &nmeaReader{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			r.mu.Lock()
			r.bytes = append(r.bytes, buf[:n]...)
			r.err = err
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitSentences waits until n whole sentences have arrived and returns the bytes.
func (r *nmeaReader) waitSentences(t *testing.T, n int) []byte {
	t.Helper()
	var b []byte
	testenv.Eventually(t, time.Minute, fmt.Sprintf("%d sentences", n), func() error {
		r.mu.Lock()
		b = bytes.Clone(r.bytes)
		r.mu.Unlock()
		if got := bytes.Count(b, []byte("\r\n")); got < n {
			return fmt.Errorf("%d sentences so far", got)
		}
		return nil
	})
	return b
}

// ask sends an ELM327 command and returns the reply up to the prompt.
func ask(t *testing.T, f *os.File, cmd string) string {
	t.Helper()
	if _, err := f.Write([]byte(cmd + "\r")); err != nil {
		t.Fatal(err)
	}
	f.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	buf := make([]byte, 256)
	for !bytes.HasSuffix(got, []byte(">")) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("%s: read: %v (so far %q)", cmd, err, got)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// waitForEnds polls the truth file until it holds n end lines.
func waitForEnds(t *testing.T, path string, n int) []truth.Line {
	t.Helper()
	var lines []truth.Line
	testenv.Eventually(t, time.Minute, fmt.Sprintf("%d end lines in %s", n, path), func() error {
		var err error
		if lines, err = truth.ReadFile(path); err != nil {
			return err
		}
		ends := 0
		for _, l := range lines {
			if l.Type == "end" {
				ends++
			}
		}
		if ends != n {
			return fmt.Errorf("%d end lines", ends)
		}
		return nil
	})
	return lines
}

// rmc is what a test reads out of an RMC sentence itself.
type rmc struct {
	time     string // 2026-11-27T10:00:00.000Z
	lat, lon float64
	knots    float64
}

// parseRMC checks the checksum and reads the RMC sentences of a GPS stream.
func parseRMC(t *testing.T, stream []byte) []rmc {
	t.Helper()
	var out []rmc
	for _, s := range strings.Split(strings.TrimSuffix(string(stream), "\r\n"), "\r\n") {
		star := strings.LastIndexByte(s, '*')
		if !strings.HasPrefix(s, "$") || star < 0 {
			t.Fatalf("not a sentence: %q", s)
		}
		var x byte
		for _, c := range []byte(s[1:star]) {
			x ^= c
		}
		if want := fmt.Sprintf("%02X", x); s[star+1:] != want {
			t.Fatalf("%q: checksum %s, want %s", s, s[star+1:], want)
		}
		f := strings.Split(s[1:star], ",")
		if f[0] != "GPRMC" {
			continue
		}
		deg := func(v string, digits int, neg bool) float64 {
			d, _ := strconv.ParseFloat(v[:digits], 64)
			m, _ := strconv.ParseFloat(v[digits:], 64)
			if neg {
				return -(d + m/60)
			}
			return d + m/60
		}
		knots, _ := strconv.ParseFloat(f[7], 64)
		hms, date := f[1], f[9]
		out = append(out, rmc{
			time: fmt.Sprintf("20%s-%s-%sT%s:%s:%s.%s0Z", date[4:6], date[2:4], date[0:2], hms[0:2], hms[2:4], hms[4:6], hms[7:9]),
			lat:  deg(f[3], 2, f[4] == "S"), lon: deg(f[5], 3, f[6] == "W"), knots: knots,
		})
	}
	return out
}

func TestRunServesGPSAndELM327AndWritesTheTruth(t *testing.T) {
	dir := t.TempDir()
	truthPath, links := filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "links")
	s := startSim(t, "--duration", "30s", "--speed", "30", "--truth", truthPath, "--link-dir", links,
		"--start", "2026-11-27T10:00:00Z", "--seed", "7")
	if s.ports["veh-001 gps"] != filepath.Join(links, "veh-001-gps") || s.ports["veh-001 obd"] != filepath.Join(links, "veh-001-obd") {
		t.Fatalf("ports %v", s.ports)
	}
	gpsPort := simtest.OpenPort(t, s.ports["veh-001 gps"])
	nmea := readNMEA(gpsPort)
	obd := simtest.OpenPort(t, s.ports["veh-001 obd"])

	if got := ask(t, obd, "ATZ"); got != "ATZ\r\r\rELM327 v1.5\r\r>" {
		t.Errorf("ATZ → %q", got)
	}
	if got := ask(t, obd, "ATE0"); got != "ATE0\rOK\r\r>" {
		t.Errorf("ATE0 → %q", got)
	}
	replies := map[string]string{}
	for i, pid := range []string{"0C", "0D", "05"} {
		got := ask(t, obd, "01"+pid)
		re := `^41 ` + pid + ` ((?:[0-9A-F]{2} )+)\r\r>$`
		if i == 0 {
			re = `^SEARCHING...\r` + re[1:]
		}
		m := regexp.MustCompile(re).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("01%s → %q", pid, got)
		}
		replies[pid] = "41 " + pid + " " + strings.TrimSpace(m[1])
	}

	stream := nmea.waitSentences(t, 30*3)
	lines := waitForEnds(t, truthPath, 1)

	// After the drive: the engine is off, the adapter still answers.
	if got := ask(t, obd, "010C"); got != "NO DATA\r\r>" {
		t.Errorf("010C after the end → %q", got)
	}
	if got := ask(t, obd, "ATRV"); !regexp.MustCompile(`^1[0-9]\.[0-9]V\r\r>$`).MatchString(got) {
		t.Errorf("ATRV after the end → %q", got)
	}
	s.stop(t)
	for _, l := range []string{"veh-001-gps", "veh-001-obd"} {
		if _, err := os.Lstat(filepath.Join(links, l)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("link %s left behind: %v", l, err)
		}
	}
	final, err := os.ReadFile(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	if lines, err = truth.Read(bytes.NewReader(final)); err != nil {
		t.Fatal(err)
	}

	// The truth holds exactly the 30 fixes on the wire, with their values.
	sentences := parseRMC(t, stream)
	var fixes, obds []truth.Line
	for _, l := range lines {
		switch l.Type {
		case "fix":
			fixes = append(fixes, l)
		case "obd":
			obds = append(obds, l)
		case "end":
			if want := time.Date(2026, 11, 27, 10, 0, 30, 0, time.UTC); !l.Time.Equal(want) || l.Vehicle != "veh-001" {
				t.Errorf("end line %+v, want veh-001 at %v", l, want)
			}
		}
	}
	if len(fixes) != 30 || len(sentences) != 30 {
		t.Fatalf("%d fix lines and %d RMC sentences, want 30 each", len(fixes), len(sentences))
	}
	for i, f := range fixes {
		r := sentences[i]
		if want := time.Date(2026, 11, 27, 10, 0, i, 0, time.UTC); !f.Time.Equal(want) || f.Time.Format(truth.TimeFormat) != r.time {
			t.Errorf("fix %d at %v, sentence at %s, want %v", i, f.Time, r.time, want)
		}
		if f.Vehicle != "veh-001" || math.Abs(f.Lat-r.lat) > 1e-9 || math.Abs(f.Lon-r.lon) > 1e-9 || math.Abs(f.SpeedMps-r.knots*0.514444) > 1e-9 {
			t.Errorf("fix %d: truth %+v, sentence %+v", i, f, r)
		}
	}

	// The OBD lines hold what the replies decode to (SAE J1979).
	decode := map[string]func(b []int) float64{
		"0C": func(b []int) float64 { return float64(256*b[0]+b[1]) / 4 },
		"0D": func(b []int) float64 { return float64(b[0]) },
		"05": func(b []int) float64 { return float64(b[0] - 40) },
	}
	if len(obds) != 3 {
		t.Fatalf("%d obd lines, want 3: %+v", len(obds), obds)
	}
	for _, o := range obds {
		if o.Reply != replies[o.PID] || o.Mode != "01" || o.Vehicle != "veh-001" {
			t.Errorf("obd line %+v, reply sent %q", o, replies[o.PID])
			continue
		}
		var b []int
		for _, h := range strings.Fields(o.Reply)[2:] {
			v, _ := strconv.ParseUint(h, 16, 8)
			b = append(b, int(v))
		}
		if want := decode[o.PID](b); o.Value != want {
			t.Errorf("obd %s value %v, reply decodes to %v", o.PID, o.Value, want)
		}
		if o.Time.Before(fixes[0].Time) || o.Time.After(fixes[29].Time.Add(time.Second)) {
			t.Errorf("obd %s at %v, outside the drive", o.PID, o.Time)
		}
	}
}

func TestHelpAndUsage(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"routes", "--help"}, {"scenarios", "--help"}, {"validate", "--help"}, {"faults", "--help"}, {"load", "--help"}, {"diff", "--help"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || !strings.Contains(string(out), "Usage") {
			t.Errorf("firmware-sim %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "routes").Output()
	if err != nil || !strings.Contains(string(out), "\nmonaco-loop ") {
		t.Errorf("routes: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "faults").Output()
	if err != nil || !strings.Contains(string(out), "\nuplink_down ") || !strings.Contains(string(out), "baud (required)") {
		t.Errorf("faults: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--rate", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "--rate") {
		t.Errorf("run --rate 0: %v, stderr %q", err, stderr.String())
	}
}

func TestLoadCommand(t *testing.T) {
	bin := buildBinary(t)
	url := testenv.StartMosquitto(t, testenv.MosquittoOptions{}).URL()
	cmd := exec.Command(bin, "load", "--vehicles", "5", "--rate", "2", "--duration", "2s", "--mqtt", url, "--namespace", "t/fleet/v1",
		"--obd-pids", "0C,0D", "--inflight", "1000", "--ack-timeout", "1h", "--min-batch-age", "200ms", "--no-delay")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`rate achieved: [0-9.]+ sample instants/s of 10.0 asked, ([0-9.]+) records/s published \(no position without a fix\); CPU: [0-9.]+ s per second`).FindSubmatch(out)
	if m == nil || !strings.Contains(string(out), "5 connected at the end") {
		t.Fatalf("load printed:\n%s", out)
	}
	if rate, _ := strconv.ParseFloat(string(m[1]), 64); rate == 0 {
		t.Errorf("nothing published:\n%s", out)
	}
	cmd = exec.Command(bin, "load", "--obd-pids", "0C,ZZ")
	if err := cmd.Run(); err == nil {
		t.Error("load accepted --obd-pids ZZ")
	}
}
