package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
)

// Every route the server registers is in the served OpenAPI document with
// the role it needs (x-role), and every operation of the document is a
// route: the two cannot drift apart.
func TestRoutesMatchTheDocument(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.Metrics = http.NotFoundHandler() })
	spec := loadSpec(t, f.ts.URL)
	registered := map[string]cloud.Role{}
	for _, rt := range f.s.Routes() {
		registered[rt.Pattern] = rt.Role
	}
	documented := map[string]string{}
	for path, item := range spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			role, _ := op.Extensions["x-role"].(string)
			documented[method+" "+path] = role
		}
	}
	for pattern, role := range registered {
		want := role.String()
		if got, ok := documented[pattern]; !ok {
			t.Errorf("route %s is not in the OpenAPI document", pattern)
		} else if got != want {
			t.Errorf("route %s needs %s; the document says x-role %q", pattern, want, got)
		}
	}
	for op := range documented {
		if _, ok := registered[op]; !ok {
			t.Errorf("the OpenAPI document has %s, which the server does not serve", op)
		}
	}
	if len(registered) < 20 {
		t.Errorf("only %d routes", len(registered))
	}
	// Every operation but the public ones declares the token's errors.
	for pattern, role := range registered {
		method, path, _ := strings.Cut(pattern, " ")
		op := spec.doc.Paths.Find(path).GetOperation(method)
		if role == cloud.RoleNone {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s is public but the document asks for a token", pattern)
			}
			continue
		}
		codes := slices.Collect(func(yield func(string) bool) {
			for c := range op.Responses.Map() {
				if !yield(c) {
					return
				}
			}
		})
		need := []string{"401", "429"}
		if role > cloud.RoleViewer {
			need = append(need, "403")
		}
		for _, c := range need {
			if !slices.Contains(codes, c) {
				t.Errorf("%s documents no %s", pattern, c)
			}
		}
	}
}

// /docs is a page made from the document: every operation is on it, and it
// needs nothing from elsewhere.
func TestDocsPage(t *testing.T) {
	f := newFixture(t)
	r := newClient(t, f.ts, "").get("/docs")
	page := string(r.raw)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("%d %v", r.status, r.header)
	}
	for _, rt := range f.s.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if !strings.Contains(page, ">"+method+"</span> <code>"+path+"</code>") {
			t.Errorf("/docs lacks %s", rt.Pattern)
		}
	}
	for _, want := range []string{"cloud-server token create", "Schemas", "Vehicle", "Last-Event-ID"} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %q", want)
		}
	}
	for _, external := range []string{"<script", "<link", `href="http`, "src=", "@import"} {
		if strings.Contains(page, external) {
			t.Errorf("/docs contains %q", external)
		}
	}
}
