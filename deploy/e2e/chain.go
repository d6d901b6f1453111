// Package e2e runs Fleetgate's whole chain as a user would — the simulator on real
// pseudo-terminals, the edge agent, the real Mosquitto, the cloud server, real
// PostgreSQL and Redis — and compares what the HTTP API returns with the
// simulator's ground truth. The helpers here start the programs; the tests are in
// the _test files.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a program started for a test. Its output goes to a log file that is
// printed when the test fails.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// Start runs bin with args and env (added to the test's environment). The process
// is stopped (SIGTERM, then SIGKILL after 10 s) when the test ends.
func Start(t testing.TB, dir, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("---- %s log (%s) ----\n%s", name, logPath, tail(out, 200))
		}
	})
	return p
}

// Stop sends SIGTERM and waits for the process to exit, killing it after 10 s.
// It returns the exit error (nil for a clean exit).
func (p *Proc) Stop(t testing.TB) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10 s of SIGTERM; killing it", p.Name)
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func tail(b []byte, lines int) string {
	s := strings.Split(string(b), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// Eventually polls cond every 100 ms until it returns nil or the deadline passes,
// then fails the test with cond's last error. The procs are checked for an
// early exit on every round, so a crash fails fast with its log.
func Eventually(t testing.TB, within time.Duration, what string, cond func() error, procs ...*Proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		for _, p := range procs {
			if done, perr := p.Exited(); done {
				t.Fatalf("waiting for %s: %s exited early (%v)", what, p.Name, perr)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not true after %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Truth is the simulator's ground truth, split by type.
type Truth struct {
	Fixes []TruthFix
	OBD   []TruthOBD
	Ends  map[string]bool // vehicles whose end line was written
}

// TruthFix is a fix line of the ground truth.
type TruthFix struct {
	Vehicle  string    `json:"vehicle"`
	Time     time.Time `json:"time"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	SpeedMps *float64  `json:"speed_mps"`
}

// TruthOBD is an obd line of the ground truth.
type TruthOBD struct {
	Vehicle string    `json:"vehicle"`
	Time    time.Time `json:"time"`
	PID     string    `json:"pid"`
	Mode    string    `json:"mode"`
	Value   float64   `json:"value"`
}

// ReadTruth parses a ground-truth file. A line of an unknown type is an error;
// a partial last line (still being written) is ignored.
func ReadTruth(path string) (*Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := &Truth{Ends: map[string]bool{}}
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return tr, nil
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			Type    string `json:"type"`
			Vehicle string `json:"vehicle"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		switch head.Type {
		case "fix":
			var fx TruthFix
			if err := json.Unmarshal(line, &fx); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			tr.Fixes = append(tr.Fixes, fx)
		case "obd":
			var o TruthOBD
			if err := json.Unmarshal(line, &o); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			tr.OBD = append(tr.OBD, o)
		case "end":
			tr.Ends[head.Vehicle] = true
		case "fault":
		default:
			return nil, fmt.Errorf("%s:%d: unknown type %q", path, n, head.Type)
		}
	}
}

// APIPosition is a position as GET /api/v1/vehicles/{id}/positions returns it.
type APIPosition struct {
	StreamID string    `json:"stream_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	SpeedMps *float64  `json:"speed_mps"`
}

// APIOBD is a sample as GET /api/v1/vehicles/{id}/obd returns it.
type APIOBD struct {
	StreamID string    `json:"stream_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	PID      string    `json:"pid"`
	Mode     string    `json:"mode"`
	Value    float64   `json:"value"`
}

// API is a client of the cloud server's HTTP API.
type API struct {
	Base string // e.g. http://127.0.0.1:8000
}

// Get decodes the JSON answer of GET path into v; a status other than 200 is an
// error carrying the body.
func (a API) Get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	return nil
}

// Positions returns every position of a vehicle in [from, to], following the
// pagination cursor.
func (a API) Positions(ctx context.Context, vehicle string, from, to time.Time) ([]APIPosition, error) {
	return pages(ctx, a, vehicle, "positions", from, to, func(p *page[APIPosition]) []APIPosition { return p.Positions })
}

// OBD returns every OBD sample of a vehicle in [from, to], following the cursor.
func (a API) OBD(ctx context.Context, vehicle string, from, to time.Time) ([]APIOBD, error) {
	return pages(ctx, a, vehicle, "obd", from, to, func(p *page[APIOBD]) []APIOBD { return p.Samples })
}

// page is one answer of a paginated history endpoint.
type page[T any] struct {
	Positions []T    `json:"positions"`
	Samples   []T    `json:"samples"`
	Next      string `json:"next"`
}

// pages GETs /api/v1/vehicles/{vehicle}/{what} page by page and returns the
// rows that rows picks out of each page.
func pages[T any](ctx context.Context, a API, vehicle, what string, from, to time.Time, rows func(*page[T]) []T) ([]T, error) {
	var all []T
	after := ""
	for {
		q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var p page[T]
		if err := a.Get(ctx, "/api/v1/vehicles/"+url.PathEscape(vehicle)+"/"+what+"?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		got := rows(&p)
		all = append(all, got...)
		if p.Next == "" || len(got) == 0 {
			return all, nil
		}
		after = p.Next
	}
}
