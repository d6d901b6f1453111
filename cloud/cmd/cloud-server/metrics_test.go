package main

import (
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/cloud/mqtt"
)

// TestMetricsAreDocumented: every fleetgate_ metric served is listed in the
// Metrics section of cloud/README.md, and every one listed there is served.
func TestMetricsAreDocumented(t *testing.T) {
	m := newMetrics(ingest.New(nil, nil), mqtt.NewSession("tcp://127.0.0.1:1", "id"), httpapi.NewHub(nil))
	m.reg.MustRegister(newJobMetrics())
	m.Observe("GET /health", 200, time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (fleetgate_\w+) `).FindAllStringSubmatch(string(body), -1) {
		served = append(served, m[1])
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "\n## Metrics\n"); i >= 0 {
		section = section[i+1:]
	} else {
		t.Fatal("cloud/README.md has no Metrics section")
	}
	if i := strings.Index(section[3:], "\n## "); i >= 0 {
		section = section[:i+3]
	}
	var documented []string
	for _, m := range regexp.MustCompile("`(fleetgate_\\w+)`").FindAllStringSubmatch(section, -1) {
		if !slices.Contains(documented, m[1]) {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if len(served) < 20 || !slices.Equal(served, documented) {
		t.Errorf("served metrics:\n  %s\ndocumented in cloud/README.md:\n  %s", strings.Join(served, "\n  "), strings.Join(documented, "\n  "))
	}
}
