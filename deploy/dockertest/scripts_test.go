package dockertest

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// fakeTool writes an executable shell script named name into dir.
func fakeTool(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runScript runs a deployment script with sh (or bash) and env, PATH
// starting with bin; it returns the output and the exit status.
func runScript(t *testing.T, shell, script, bin string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(shell, filepath.Join(moduleRoot(t), script))
	cmd.Env = append(os.Environ(), append(env, "PATH="+bin+":"+os.Getenv("PATH"))...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatalf("%s did not run: %v", script, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func TestOSRMFetch(t *testing.T) {
	const pbf = "fake OSM extract"
	sum := md5.Sum([]byte(pbf))
	for _, tc := range []struct {
		name   string
		md5    string // what the publisher's .md5 says; "" = none published
		code   int
		stored bool
	}{
		{"verified", hex.EncodeToString(sum[:]), 0, true},
		{"corrupt download", strings.Repeat("0", 32), 1, false},
		{"no checksum published", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, data := t.TempDir(), t.TempDir()
			calls := filepath.Join(bin, "calls")
			// curl -fsSL ... -o FILE URL: the extract, or its .md5.
			md5Reply := "exit 22"
			if tc.md5 != "" {
				md5Reply = fmt.Sprintf("printf '%%s  monaco-latest.osm.pbf\\n' %s >\"$out\"", tc.md5)
			}
			fakeTool(t, bin, "curl", fmt.Sprintf(`echo "$*" >>%q
while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done
case $1 in
  *.md5) %s ;;
  *) printf '%%s' %q >"$out" ;;
esac
`, calls, md5Reply, pbf))
			env := []string{"OSRM_DATA=" + data, "OSRM_NAME=monaco", "OSRM_PBF_URL=https://example.invalid/monaco-latest.osm.pbf"}
			out, code := runScript(t, "sh", "deploy/osrm/fetch.sh", bin, env...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			got, err := os.ReadFile(filepath.Join(data, "monaco.osm.pbf"))
			if tc.stored != (err == nil && string(got) == pbf) {
				t.Errorf("extract stored = %v (%q, %v), want %v", err == nil, got, err, tc.stored)
			}
			if left, _ := filepath.Glob(filepath.Join(data, "*.part")); len(left) > 0 {
				t.Errorf("leftovers: %v", left)
			}
			if !tc.stored {
				return
			}
			before, _ := os.ReadFile(calls)
			out, code = runScript(t, "sh", "deploy/osrm/fetch.sh", bin, env...)
			after, _ := os.ReadFile(calls)
			if code != 0 || string(after) != string(before) {
				t.Errorf("second run: exit %d, curl called again (%q):\n%s", code, after[len(before):], out)
			}
		})
	}
}

func TestOSRMPrepare(t *testing.T) {
	bin, data := t.TempDir(), t.TempDir()
	calls := filepath.Join(bin, "calls")
	for _, tool := range []string{"osrm-extract", "osrm-partition", "osrm-customize"} {
		fakeTool(t, bin, tool, fmt.Sprintf("echo \"%s $*\" >>%q\n[ ! -e %q ] || exit 3\n", tool, calls, filepath.Join(bin, "fail-"+tool)))
	}
	env := []string{"OSRM_DATA=" + data, "OSRM_NAME=monaco"}

	if out, code := runScript(t, "sh", "deploy/osrm/prepare.sh", bin, env...); code != 1 || !strings.Contains(out, "missing") {
		t.Errorf("without the extract: exit %d, %q; want 1 naming it", code, out)
	}
	writeFile(t, filepath.Join(data, "monaco.osm.pbf"), "pbf")
	writeFile(t, filepath.Join(bin, "fail-osrm-partition"), "")
	if out, code := runScript(t, "sh", "deploy/osrm/prepare.sh", bin, env...); code == 0 {
		t.Errorf("a failing osrm-partition: exit 0:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, "monaco.prepared")); err == nil {
		t.Error("a failed preparation was marked done")
	}
	os.Remove(filepath.Join(bin, "fail-osrm-partition"))
	os.Remove(calls)
	if out, code := runScript(t, "sh", "deploy/osrm/prepare.sh", bin, env...); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := fmt.Sprintf("osrm-extract -p /opt/car.lua %[1]s/monaco.osm.pbf\nosrm-partition %[1]s/monaco.osrm\nosrm-customize %[1]s/monaco.osrm\n", data)
	if got := readFile(t, calls); got != want {
		t.Errorf("calls:\n%s\nwant (MLD: extract, partition, customize):\n%s", got, want)
	}
	if out, code := runScript(t, "sh", "deploy/osrm/prepare.sh", bin, env...); code != 0 || readFile(t, calls) != want {
		t.Errorf("second run: exit %d, prepared again:\n%s", code, out)
	}
}

// TestOSRMHealthcheck runs deploy/osrm/healthcheck.sh against a server that
// answers as osrm-routed documents /nearest (HTTP API, "Nearest service").
func TestOSRMHealthcheck(t *testing.T) {
	var mu sync.Mutex
	var status int
	var body any
	answer := func(s int, b any) { mu.Lock(); status, body = s, b; mu.Unlock() }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		status, body := status, body
		mu.Unlock()
		if r.URL.Path != "/nearest/v1/driving/7.4246,43.7384" {
			status, body = http.StatusBadRequest, map[string]string{"code": "InvalidUrl", "message": "URL string malformed"}
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	bin := t.TempDir()
	run := func(args ...string) int {
		cmd := exec.Command("bash", append([]string{filepath.Join(moduleRoot(t), "deploy/osrm/healthcheck.sh")}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		cmd.Run()
		return cmd.ProcessState.ExitCode()
	}
	answer(http.StatusOK, map[string]any{"code": "Ok", "waypoints": []map[string]any{
		{"nodes": []int{2264199819, 0}, "hint": "KSoKADRYroqUBAEAEAAAABkAAAAGAAAAAAAAABhnCQCLtwAA_0vMAKlYIQM8TMwArVghAwEAAQH1a66g", "distance": 4.152629, "name": "Boulevard Albert 1er", "location": []float64{7.424604, 43.738369}},
	}})
	if code := run(host, port); code != 0 {
		t.Errorf("healthy OSRM: exit %d", code)
	}
	answer(http.StatusBadRequest, map[string]string{"code": "NoSegment", "message": "Could not find a matching segment for any coordinate."})
	if code := run(host, port); code == 0 {
		t.Error("an OSRM without the Monaco dataset passed")
	}
	if code := run(host, fmt.Sprint(testenv.FreePort(t))); code == 0 {
		t.Error("nobody listening passed")
	}
}
