package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
)

// pathOf fills a route's pattern with real values.
func pathOf(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	r := strings.NewReplacer("{id}", "veh-001", "{cmd_id}", "nope", "{name}", "nobody")
	return method, r.Replace(path)
}

// Every route that needs a role answers 401 with a Bearer challenge without
// a token or with a bad one, and 403 to a role below its own; the public
// ones answer without a token.
func TestEveryRouteNeedsItsRole(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.RateLimit = 0 })
	ctx := context.Background()
	_, expiredSecret, err := httpapi.NewToken(ctx, f.db, "expired", cloud.RoleAdmin, time.Minute, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, revokedSecret, err := httpapi.NewToken(ctx, f.db, "revoked", cloud.RoleAdmin, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.RevokeToken(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	anonymous := newClient(t, f.ts, "")
	for _, rt := range f.s.Routes() {
		method, path := pathOf(rt.Pattern)
		if rt.Role == cloud.RoleNone {
			if method == "GET" {
				if r := anonymous.get(path); r.status == http.StatusUnauthorized {
					t.Errorf("%s: public, yet 401", rt.Pattern)
				}
			}
			continue
		}
		do := func(c *client) *response {
			if rt.Stream {
				r, _ := c.stream(path)
				return r
			}
			return c.do(method, path, "")
		}
		for name, c := range map[string]*client{
			"no token":           anonymous,
			"not a token":        newClient(t, f.ts, "hunter2"),
			"an unknown token":   newClient(t, f.ts, cloud.NewTokenSecret()),
			"an expired token":   newClient(t, f.ts, expiredSecret),
			"a revoked token":    newClient(t, f.ts, revokedSecret),
			"a lower-case token": newClient(t, f.ts, strings.ToLower(f.tokens[cloud.RoleAdmin])),
		} {
			r := do(c)
			challenge := r.header.Get("WWW-Authenticate")
			if r.status != http.StatusUnauthorized || r.errorCode() != "EUNAUTHORIZED" || !strings.HasPrefix(challenge, `Bearer realm="fleetgate"`) {
				t.Errorf("%s with %s: %d %q %s", rt.Pattern, name, r.status, challenge, r.raw)
			}
			if name != "no token" && !strings.Contains(challenge, `error="invalid_token"`) {
				t.Errorf("%s with %s: challenge %q lacks invalid_token", rt.Pattern, name, challenge)
			}
		}
		for role := cloud.RoleViewer; role < rt.Role; role++ {
			r := do(f.as(role))
			if r.status != http.StatusForbidden || r.errorCode() != "EFORBIDDEN" {
				t.Errorf("%s as %s: %d %s, want 403", rt.Pattern, role, r.status, r.raw)
			}
		}
		r := do(f.as(rt.Role))
		if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
			t.Errorf("%s as %s: %d %s", rt.Pattern, rt.Role, r.status, r.raw)
		}
	}
	// A scheme other than Bearer is refused.
	r := anonymous.get("/api/v1/vehicles", "Authorization: Basic dXNlcjpwYXNz")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.errorMessage(), "Bearer") {
		t.Errorf("Basic auth: %s", r)
	}
	// A token's use is recorded.
	ts, err := f.db.FindTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range ts {
		if tok.Name == "test-admin" && !tok.LastUsed.Equal(now) {
			t.Errorf("test-admin last used %v, want %v", tok.LastUsed, now)
		}
	}
}

// A browser signs in with a token: the cookie is HttpOnly, SameSite=Strict
// (Secure when configured); with it reads work, and a request that changes
// something must be sent by script (JSON or X-Requested-With).
func TestSessionCookie(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.SecureCookie = true })
	c := newClient(t, f.ts, "")
	if r := c.post("/api/v1/session", `{"token":"fgt_nope"}`); r.status != http.StatusUnauthorized {
		t.Errorf("sign in with a bad token: %s", r)
	}
	if r := c.post("/api/v1/session", `token=x`, "Content-Type: application/x-www-form-urlencoded"); r.status != http.StatusBadRequest {
		t.Errorf("sign in with a form: %s", r)
	}
	r := c.post("/api/v1/session", `{"token":"`+f.tokens[cloud.RoleOperator]+`"}`)
	cookie := r.header.Get("Set-Cookie")
	if r.status != http.StatusOK || r.body["role"] != "operator" || r.body["via"] != "cookie" {
		t.Fatalf("sign in: %s", r)
	}
	for _, want := range []string{"fleetgate_session=fgt_", "Path=/", "HttpOnly", "SameSite=Strict", "Secure", "Max-Age=43200"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	// httptest serves plain HTTP: a Secure cookie would not be sent back by
	// the jar, so send it as a browser on HTTPS would.
	value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "fleetgate_session=")
	browser := newClient(t, f.ts, "")
	browser.header.Set("Cookie", "fleetgate_session="+value)
	if r := browser.get("/api/v1/session"); r.status != 200 || r.body["via"] != "cookie" || r.body["name"] != "test-operator" {
		t.Errorf("session by cookie: %s", r)
	}
	if r := browser.get("/api/v1/vehicles"); r.status != 200 {
		t.Errorf("a read by cookie: %s", r)
	}
	// A cross-site form post (no JSON, no custom header) is refused.
	r = browser.post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`, "Content-Type: text/plain")
	if r.status != http.StatusForbidden || !strings.Contains(r.errorMessage(), "X-Requested-With") {
		t.Errorf("a form-like post by cookie: %s", r)
	}
	if r := browser.do("POST", "/api/v1/vehicles/veh-001/commands/x/cancel", ""); r.status != http.StatusForbidden {
		t.Errorf("a cancel by cookie without the header: %s", r)
	}
	if r := browser.post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`); r.status != http.StatusAccepted || r.body["token"] != "test-operator" {
		t.Errorf("a JSON post by cookie: %s", r)
	}
	if r := browser.do("POST", "/api/v1/vehicles/veh-001/commands/x/cancel", "", "X-Requested-With: fetch"); r.status != http.StatusNotFound {
		t.Errorf("a cancel by cookie with the header: %s", r)
	}
	// A bearer token needs neither.
	if r := f.as(cloud.RoleOperator).post("/api/v1/vehicles/veh-001/commands", `{"type":"read_dtcs"}`, "Content-Type: text/plain"); r.status != http.StatusAccepted {
		t.Errorf("a post by bearer token: %s", r)
	}
	r = browser.do("DELETE", "/api/v1/session", "")
	if r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("sign out: %d %q", r.status, r.header.Get("Set-Cookie"))
	}
}

// A session of a token that expires soon lasts no longer than the token.
func TestSessionEndsWithTheToken(t *testing.T) {
	f := newFixture(t)
	_, secret, err := httpapi.NewToken(context.Background(), f.db, "short", cloud.RoleViewer, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	r := newClient(t, f.ts, "").post("/api/v1/session", `{"token":"`+secret+`"}`)
	if r.status != 200 || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=3600") || r.body["expires"] != "2026-11-27T13:00:00.000Z" {
		t.Errorf("sign in: %s %q", r, r.header.Get("Set-Cookie"))
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.RateLimit, s.RateBurst = 1, 3 })
	c := f.as(cloud.RoleViewer)
	var last *response
	for range 4 {
		last = c.get("/api/v1/vehicles/veh-001")
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") != "1" || last.errorCode() != "ETOOMANYREQUESTS" {
		t.Errorf("fourth request of a burst of 3: %s Retry-After %q", last, last.header.Get("Retry-After"))
	}
	// Another token has its own bucket.
	if r := f.as(cloud.RoleAdmin).get("/api/v1/vehicles/veh-001"); r.status != 200 {
		t.Errorf("another token: %s", r)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, func(s *httpapi.Server) { s.CORSOrigins = []string{"https://dash.example.com"} })
	c := f.as(cloud.RoleViewer)
	r := c.do("OPTIONS", "/api/v1/vehicles", "", "Origin: https://dash.example.com", "Access-Control-Request-Method: GET",
		"Access-Control-Request-Headers: authorization")
	h := r.header
	if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://dash.example.com" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from an allowed origin: %d %v", r.status, h)
	}
	if r := c.get("/api/v1/vehicles", "Origin: https://dash.example.com"); r.header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
		t.Errorf("a request from an allowed origin: %v", r.header)
	}
	r = c.do("OPTIONS", "/api/v1/vehicles", "", "Origin: https://evil.example.com", "Access-Control-Request-Method: GET")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.status == http.StatusNoContent {
		t.Errorf("preflight from another origin: %d %v", r.status, r.header)
	}
	if r := c.get("/api/v1/vehicles", "Origin: https://evil.example.com"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a request from another origin: %v", r.header)
	}
}

// No CORS without an allow-list.
func TestNoCORSByDefault(t *testing.T) {
	f := newFixture(t)
	r := f.as(cloud.RoleViewer).get("/api/v1/vehicles", "Origin: http://localhost:3000")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without an allow-list: %v", r.header)
	}
}

func TestTokensAPI(t *testing.T) {
	f := newFixture(t)
	c := f.as(cloud.RoleAdmin)
	r := c.post("/api/v1/tokens", `{"name":"dash","role":"viewer","ttl_s":3600}`)
	secret, _ := r.body["token"].(string)
	if r.status != http.StatusCreated || !cloud.WellFormedToken(secret) || r.body["expires"] != "2026-11-27T13:00:00.000Z" {
		t.Fatalf("create: %s", r)
	}
	if r := newClient(t, f.ts, secret).get("/api/v1/session"); r.status != 200 || r.body["name"] != "dash" {
		t.Errorf("the new token: %s", r)
	}
	for _, bad := range []string{`{"name":"dash","role":"viewer"}`, `{"name":"x","role":"root"}`, `{"name":"","role":"viewer"}`,
		`{"name":"x","role":"viewer","ttl_s":0}`, `{"name":"x","role":"viewer","ttl_s":36028797018964028}`, `{"name":"x","role":"viewer"} {}`} {
		if r := c.post("/api/v1/tokens", bad); r.status != http.StatusBadRequest && r.status != http.StatusConflict {
			t.Errorf("create %s: %s", bad, r)
		}
	}
	r = c.get("/api/v1/tokens")
	if r.status != 200 || strings.Contains(string(r.raw), secret) || !strings.Contains(string(r.raw), `"name":"dash"`) {
		t.Errorf("list: %s", r)
	}
	if r := c.do("DELETE", "/api/v1/tokens/dash", ""); r.status != http.StatusNoContent {
		t.Errorf("revoke: %s", r)
	}
	if r := newClient(t, f.ts, secret).get("/api/v1/session"); r.status != http.StatusUnauthorized {
		t.Errorf("a revoked token: %s", r)
	}
	if r := c.do("DELETE", "/api/v1/tokens/dash", ""); r.status != http.StatusNotFound {
		t.Errorf("revoke again: %s", r)
	}
}

func TestDeadLettersForAdmins(t *testing.T) {
	f := newFixture(t)
	if _, err := f.db.Commit(context.Background(), &cloud.Commit{DeadLetters: []cloud.DeadLetter{
		{Topic: "fleet/v1/veh-001/up/batch", VehicleID: "veh-001", StreamID: 7, Payload: []byte{1, 2, 3}, Reason: "decode: truncated", ReceivedAt: now},
		{Topic: "junk", Payload: []byte{}, Reason: "topic: not the protocol's", ReceivedAt: now.Add(time.Second)},
	}}); err != nil {
		t.Fatal(err)
	}
	c := f.as(cloud.RoleAdmin)
	r := c.get("/api/v1/dead-letters")
	same(t, "dead letters", `{"dead_letters":[
		{"id":2,"topic":"junk","reason":"topic: not the protocol's","payload_bytes":0,"received":"2026-11-27T12:00:01.000Z"},
		{"id":1,"topic":"fleet/v1/veh-001/up/batch","vehicle_id":"veh-001","stream_id":"0000000000000007","reason":"decode: truncated","payload_bytes":3,"received":"2026-11-27T12:00:00.000Z"}]}`, r.body)
	r = c.get("/api/v1/dead-letters?reason=decode&vehicle=veh-001&limit=1")
	if r.status != 200 || len(r.body["dead_letters"].([]any)) != 1 || r.body["next"] != nil {
		t.Errorf("filtered: %s", r)
	}
}
