package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/cloud/httpapi"
)

// The dashboard (Server.Web) answers / and /assets/ without a token; every
// other path stays the API's, and without Web / is the API's JSON 404.
func TestWebMount(t *testing.T) {
	web := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard "+r.URL.Path) })
	do := func(h http.Handler, method, path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w.Code, w.Body.String()
	}
	s := httpapi.NewServer("")
	s.Web = web
	h := s.Handler()
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 200, "dashboard /"},
		{"HEAD", "/", 200, "dashboard /"},
		{"GET", "/assets/app-ABCD1234.js", 200, "dashboard /assets/app-ABCD1234.js"},
		{"GET", "/favicon.ico", 200, "dashboard /favicon.ico"},
		{"GET", "/index.html", 404, `"code":"ENOTFOUND"`},
		{"POST", "/", 405, `"code":"EMETHOD"`},
		{"GET", "/api/v1/vehicles", 503, `"code":"EUNAVAILABLE"`}, // no token store: the API's own answer
	} {
		status, body := do(h, c.method, c.path)
		if c.method == "HEAD" {
			body = "dashboard /" // a HEAD answer has no body to compare
		}
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, status, body, c.status, c.body)
		}
	}
	status, body := do(httpapi.NewServer("").Handler(), "GET", "/")
	if status != 404 || !strings.Contains(body, `"code":"ENOTFOUND"`) {
		t.Errorf("without Web, GET /: %d %q", status, body)
	}
}
