package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		listen, want string
	}{
		{"127.0.0.1:9100", "http://127.0.0.1:9100/health"},
		{":9100", "http://127.0.0.1:9100/health"},
		{"0.0.0.0:9100", "http://127.0.0.1:9100/health"},
		{"[::]:9100", "http://[::1]:9100/health"},
		{"[::1]:9101", "http://[::1]:9101/health"},
		{"10.0.0.5:9100", "http://10.0.0.5:9100/health"},
		{"gateway.local:9100", "http://gateway.local:9100/health"},
	} {
		got, err := HealthURL(tc.listen)
		if err != nil || got != tc.want {
			t.Errorf("HealthURL(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "9100", "host"} {
		if got, err := HealthURL(bad); err == nil {
			t.Errorf("HealthURL(%q) = %q, want an error", bad, got)
		}
	}
}

// healthServer answers /health with status and counts the requests.
func healthServer(t *testing.T, status int) (srv *httptest.Server, hits *int) {
	t.Helper()
	hits = new(int)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		*hits++
		w.WriteHeader(status)
		fmt.Fprint(w, `{"status":"test"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

// configFor writes an agent configuration whose http.listen is listen.
func configFor(t *testing.T, listen string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	body := fmt.Sprintf("vehicle_id: veh-hc\ngps:\n  port: /dev/ttyUSB0\nhttp:\n  listen: %q\n", listen)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHealthcheckCommand(t *testing.T) {
	ok, okHits := healthServer(t, http.StatusOK)
	sick, _ := healthServer(t, http.StatusServiceUnavailable)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	okAddr := ok.Listener.Addr().(*net.TCPAddr)

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"url answers 200", []string{"--url", ok.URL + "/health"}, 0, ""},
		{"config's http.listen answers 200", []string{"--config", configFor(t, okAddr.String())}, 0, ""},
		{"unspecified listen host is asked on loopback", []string{"--config", configFor(t, fmt.Sprintf("0.0.0.0:%d", okAddr.Port))}, 0, ""},
		{"503 is unhealthy", []string{"--url", sick.URL + "/health"}, 1, "503"},
		{"nobody listening is unhealthy", []string{"--url", closedURL + "/health"}, 1, "GET"},
		{"no flag", nil, 2, "usage"},
		{"both flags", []string{"--url", ok.URL, "--config", "x.yaml"}, 2, "usage"},
		{"extra argument", []string{"--url", ok.URL + "/health", "more"}, 2, "usage"},
		{"not an http URL", []string{"--url", "tcp://127.0.0.1:1"}, 2, "want http"},
		{"missing config file", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, 2, "read config"},
		{"health endpoint disabled", []string{"--config", configFor(t, "")}, 2, "disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"healthcheck"}, tc.args...), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q in stderr", code, stderr.String(), tc.code, tc.inStderr)
			}
		})
	}
	if *okHits != 3 {
		t.Errorf("the healthy server got %d requests, want 3", *okHits)
	}
}
