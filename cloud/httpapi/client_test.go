package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// spec is the OpenAPI document as the server serves it, loaded and checked
// once, with a router to find each response's operation.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specOnce sync.Once
	specVal  *spec
	specErr  error
)

func init() {
	openapi3filter.RegisterBodyDecoder("application/geo+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// loadSpec fetches /openapi.json from the server at base (the document a
// client sees), validates it as OpenAPI and makes its router.
func loadSpec(t *testing.T, base string) *spec {
	t.Helper()
	specOnce.Do(func() {
		resp, err := http.Get(base + "/openapi.json")
		if err != nil {
			specErr = err
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			specErr = err
			return
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(raw)
		if err != nil {
			specErr = fmt.Errorf("load the served document: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("the served document is not valid OpenAPI: %w", err)
			return
		}
		doc.Servers = nil // match paths on any host
		r, err := legacy.NewRouter(doc)
		if err != nil {
			specErr = err
			return
		}
		specVal = &spec{doc: doc, router: r}
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return specVal
}

// client calls the API under test and validates every response it gets
// against the served OpenAPI document: a response of a documented operation
// against that operation (status, headers, body), any other (an unknown
// path, a wrong method) against the Error schema. There is no other way for
// a test to reach the server, so no response escapes validation.
type client struct {
	t      *testing.T
	base   string // the server's URL
	spec   *spec
	hc     *http.Client
	token  string
	header http.Header // added to every request
}

// newClient returns a client of ts with token ("" for none) and its own
// cookie jar.
func newClient(t *testing.T, ts *httptest.Server, token string) *client {
	return clientOf(t, ts.URL, token)
}

// clientOf returns a client of the server at base.
func clientOf(t *testing.T, base, token string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, spec: loadSpec(t, base), hc: &http.Client{Jar: jar}, token: token, header: http.Header{}}
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // the JSON object, nil when the body is not one
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// errorCode returns error.code of a JSON error body.
func (r *response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r *response) errorMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// do sends a request (body: JSON text or "") with extra headers as
// "Name: value" strings and returns the validated response.
func (c *client) do(method, path, body string, headers ...string) *response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	json.Unmarshal(raw, &out.body)
	c.validate(req, resp, raw)
	return out
}

func (c *client) get(path string, headers ...string) *response {
	c.t.Helper()
	return c.do(http.MethodGet, path, "", headers...)
}

func (c *client) post(path, body string, headers ...string) *response {
	c.t.Helper()
	return c.do(http.MethodPost, path, body, headers...)
}

// validate checks one response against the document.
func (c *client) validate(req *http.Request, resp *http.Response, raw []byte) {
	c.t.Helper()
	validate(c.t, c.spec, req, resp.StatusCode, resp.Header, raw)
}

// validate checks a response against the document; a nil raw is a stream
// whose body is not checked (it never ends).
func validate(t *testing.T, s *spec, req *http.Request, status int, header http.Header, raw []byte) {
	t.Helper()
	ctx := context.Background()
	route, params, err := s.router.FindRoute(req)
	if err != nil && req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && status == http.StatusNoContent {
		// A CORS preflight the server answered: CORS's own protocol, on
		// every path, not an operation of the API. It has no body.
		if len(raw) != 0 {
			t.Errorf("OPTIONS %s: a preflight answer with a body: %s", req.URL.Path, raw)
		}
		return
	}
	if err != nil {
		// No operation: an unknown path (404) or a method the path does not
		// have (405). The body must be the documented Error.
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d for no documented operation (%v)", req.Method, req.URL.Path, status, err)
			return
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("%s %s: %d body is not JSON: %s", req.Method, req.URL.Path, status, raw)
			return
		}
		if err := s.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
			t.Errorf("%s %s: %d body is not an Error: %v\n%s", req.Method, req.URL.Path, status, err, raw)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: raw == nil},
	}
	in.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		t.Errorf("%s %s: the %d response does not match the document: %v\nbody: %s", req.Method, req.URL.RequestURI(), status, err, truncate(raw))
	}
}

func truncate(b []byte) []byte {
	if len(b) > 2000 {
		return append(bytes.Clone(b[:2000]), "…"...)
	}
	return b
}

// stream opens a streaming GET (the live stream) and returns its validated
// head and a reader of its body, closed when the test ends. A response that
// is not a stream is read whole and validated as do does; then the reader
// is nil.
func (c *client) stream(path string, headers ...string) (*response, *bufio.Reader) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	out := &response{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		out.raw, _ = io.ReadAll(resp.Body)
		json.Unmarshal(out.raw, &out.body)
		validate(c.t, c.spec, req, resp.StatusCode, resp.Header, out.raw)
		return out, nil
	}
	validate(c.t, c.spec, req, resp.StatusCode, resp.Header, nil)
	return out, bufio.NewReader(resp.Body)
}
