package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// decodeBody reads r's body as exactly one JSON object into v: unknown
// fields, trailing data after it and bodies over maxBody are EINVALID.
func decodeBody(r *http.Request, what string, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return cloud.Errorf(cloud.EINVALID, "%s: empty body, want a JSON object", what)
		}
		return cloud.Errorf(cloud.EINVALID, "%s: %v", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return cloud.Errorf(cloud.EINVALID, "%s: data after the JSON object", what)
	}
	return nil
}

type sessionRequest struct {
	Token string `json:"token"`
}

type sessionJSON struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Expires *Time  `json:"expires,omitempty"`
	Via     string `json:"via"`
}

func toSessionJSON(t *cloud.Token, via string) sessionJSON {
	out := sessionJSON{Name: t.Name, Role: t.Role.String(), Via: via}
	if !t.ExpiresAt.IsZero() {
		e := Time(t.ExpiresAt)
		out.Expires = &e
	}
	return out
}

// signIn is POST /api/v1/session {"token": "fgt_…"}: it checks the token
// and sets it as the session cookie (HttpOnly, SameSite=Strict, Secure when
// configured), for browsers: the dashboard and its live stream then need no
// token in a URL or in script.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "session: send the token as JSON (Content-Type: application/json)"))
		return
	}
	var req sessionRequest
	if err := decodeBody(r, "session", &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if s.Tokens == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "tokens are not configured"))
		return
	}
	t, err := s.lookup(r.Context(), req.Token)
	if err != nil {
		s.unauthorized(w, r, err)
		return
	}
	maxAge := s.SessionMaxAge
	if !t.ExpiresAt.IsZero() {
		maxAge = min(maxAge, t.ExpiresAt.Sub(s.Now()))
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: req.Token, Path: "/", MaxAge: max(1, int(maxAge.Seconds())),
		HttpOnly: true, Secure: s.SecureCookie, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	s.json(w, http.StatusOK, toSessionJSON(t, "cookie"))
}

// session is GET /api/v1/session: the token the request carries.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	p := who(r)
	via := "bearer"
	if p.cookie {
		via = "cookie"
	}
	s.json(w, http.StatusOK, toSessionJSON(p.token, via))
}

// signOut is DELETE /api/v1/session: it clears the session cookie.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.SecureCookie, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

type tokenJSON struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Created  Time   `json:"created"`
	Expires  *Time  `json:"expires,omitempty"`
	LastUsed *Time  `json:"last_used,omitempty"`
	Token    string `json:"token,omitempty"` // only when created
}

func toTokenJSON(t *cloud.Token) tokenJSON {
	out := tokenJSON{Name: t.Name, Role: t.Role.String(), Created: Time(t.CreatedAt)}
	out.Expires, out.LastUsed = optionalTime(t.ExpiresAt), optionalTime(t.LastUsed)
	return out
}

func optionalTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	v := Time(t)
	return &v
}

// tokens is GET /api/v1/tokens: the tokens not revoked (never a secret).
func (s *Server) tokens(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	ts, err := s.Tokens.FindTokens(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		Tokens []tokenJSON `json:"tokens"`
	}{Tokens: make([]tokenJSON, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, toTokenJSON(t))
	}
	s.json(w, http.StatusOK, out)
}

type tokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	TTLs *int64 `json:"ttl_s"`
}

// MaxTokenTTL bounds a token's life when one is given.
const MaxTokenTTL = 10 * 365 * 24 * time.Hour

// NewToken makes a token named name with role and a life of ttl (0: no
// expiry), stores its hash with ts and returns it with its secret, which is
// shown once and never stored. It is what both `cloud-server token create`
// and POST /api/v1/tokens do.
func NewToken(ctx context.Context, ts cloud.TokenService, name string, role cloud.Role, ttl time.Duration, now time.Time) (*cloud.Token, string, error) {
	if err := cloud.ValidTokenName(name); err != nil {
		return nil, "", err
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return nil, "", cloud.Errorf(cloud.EINVALID, "token life %s: want 1s to %s, or none", ttl, MaxTokenTTL)
	}
	secret := cloud.NewTokenSecret()
	t := &cloud.Token{Name: name, Role: role, Hash: cloud.HashToken(secret), CreatedAt: now.UTC()}
	if ttl > 0 {
		t.ExpiresAt = now.UTC().Add(ttl)
	}
	if err := ts.CreateToken(ctx, t); err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

// createToken is POST /api/v1/tokens {"name","role","ttl_s"}: 201 with the
// token, its secret shown this once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	var req tokenRequest
	if err := decodeBody(r, "token", &req); err != nil {
		s.Error(w, r, err)
		return
	}
	role, err := cloud.ParseRole(req.Role)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var ttl time.Duration
	if req.TTLs != nil {
		if *req.TTLs < 1 || *req.TTLs > int64(MaxTokenTTL/time.Second) {
			s.Error(w, r, cloud.Errorf(cloud.EINVALID, "ttl_s %d: must be 1 to %d, or left out for no expiry", *req.TTLs, int64(MaxTokenTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLs) * time.Second
	}
	t, secret, err := NewToken(r.Context(), s.Tokens, req.Name, role, ttl, s.Now())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.Logger.Info("token created", "name", t.Name, "role", t.Role.String(), "by", who(r).token.Name)
	out := toTokenJSON(t)
	out.Token = secret
	w.Header().Set("Cache-Control", "no-store")
	s.json(w, http.StatusCreated, out)
}

// revokeToken is DELETE /api/v1/tokens/{name}.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := s.Tokens.RevokeToken(r.Context(), name); err != nil {
		s.Error(w, r, err)
		return
	}
	s.Logger.Info("token revoked", "name", name, "by", who(r).token.Name)
	w.WriteHeader(http.StatusNoContent)
}

type deadLetterJSON struct {
	ID           int64  `json:"id"`
	Topic        string `json:"topic"`
	VehicleID    string `json:"vehicle_id,omitempty"`
	StreamID     string `json:"stream_id,omitempty"`
	Reason       string `json:"reason"`
	PayloadBytes int    `json:"payload_bytes"`
	Received     Time   `json:"received"`
}

// deadLetters is GET /api/v1/dead-letters?vehicle=&reason=&limit=&after=,
// newest first.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, []string{"vehicle", "reason", "limit", "after"}); err != nil {
		s.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	f := cloud.DeadLetterFilter{VehicleID: q.Get("vehicle"), Reason: q.Get("reason")}
	scope := "dead-letters " + f.VehicleID + " " + f.Reason
	var err error
	if f.Limit, f.After, err = parsePage(q, scope); err != nil {
		s.Error(w, r, err)
		return
	}
	if s.DeadLetters == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "dead letters are not configured"))
		return
	}
	ds, next, err := s.DeadLetters.FindDeadLetters(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
		Next        string           `json:"next,omitempty"`
	}{DeadLetters: make([]deadLetterJSON, 0, len(ds)), Next: cursorString(next, scope)}
	for _, d := range ds {
		j := deadLetterJSON{ID: d.ID, Topic: d.Topic, VehicleID: d.VehicleID, Reason: d.Reason, PayloadBytes: d.PayloadBytes, Received: Time(d.ReceivedAt)}
		if d.StreamID != 0 {
			j.StreamID = streamHex(d.StreamID)
		}
		out.DeadLetters = append(out.DeadLetters, j)
	}
	s.json(w, http.StatusOK, out)
}
