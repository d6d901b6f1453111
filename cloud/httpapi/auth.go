package httpapi

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fleetgate/fleetgate/cloud"
)

// SessionCookie is the name of the cookie that holds a browser session's
// token.
const SessionCookie = "fleetgate_session"

// principal is who makes a request: the token it carries.
type principal struct {
	token  *cloud.Token
	cookie bool // the token came in the session cookie, not a header
}

type principalKey struct{}

// who returns the principal of an authenticated request.
func who(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// guard wraps a route's handler in its checks: the request timeout, then
// for routes that need a role the token (401), the role (403), CSRF for a
// cookie's unsafe requests (403) and the token's rate (429).
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.Stream && s.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), s.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if rt.Role > cloud.RoleNone {
			p, err := s.authenticate(r)
			if err != nil {
				s.unauthorized(w, r, err)
				return
			}
			if p.token.Role < rt.Role {
				s.Error(w, r, cloud.Errorf(cloud.EFORBIDDEN, "token %q has role %s; %s needs %s", p.token.Name, p.token.Role, rt.Pattern, rt.Role))
				return
			}
			if p.cookie && unsafe(r.Method) && !csrfSafe(r) {
				s.Error(w, r, cloud.Errorf(cloud.EFORBIDDEN, "a request signed in by cookie that changes something must be sent by script: with Content-Type: application/json or an X-Requested-With header"))
				return
			}
			if wait := s.limits.take(p.token.ID, s.RateLimit, s.RateBurst, s.Now()); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				s.Error(w, r, cloud.Errorf(cloud.ETOOMANYREQUESTS, "token %q is over its rate of %v requests a second; retry after %s", p.token.Name, float64(s.RateLimit), wait.Round(time.Millisecond)))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		rt.handler(w, r)
	})
}

// authenticate finds the token of r: "Authorization: Bearer fgt_…", else
// the session cookie. It returns an EUNAUTHORIZED error for no token, an
// unknown, revoked or expired one, and the store's error when it fails.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if s.Tokens == nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "tokens are not configured")
	}
	secret, cookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "the Authorization header must be Bearer and a token: Authorization: Bearer fgt_…")
		}
		secret = strings.TrimSpace(tok)
	} else if c, err := r.Cookie(SessionCookie); err == nil {
		secret, cookie = c.Value, true
	} else {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "this endpoint needs a token: send Authorization: Bearer fgt_… (cloud-server token create makes one)")
	}
	t, err := s.lookup(r.Context(), secret)
	if err != nil {
		return nil, err
	}
	return &principal{token: t, cookie: cookie}, nil
}

// lookup returns the live token of secret, recording its use.
func (s *Server) lookup(ctx context.Context, secret string) (*cloud.Token, error) {
	if !cloud.WellFormedToken(secret) {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "invalid token: not one cloud-server made")
	}
	t, err := s.Tokens.FindTokenByHash(ctx, cloud.HashToken(secret))
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "invalid token: unknown or revoked")
	}
	if err != nil {
		return nil, err
	}
	now := s.Now()
	if t.Expired(now) {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(timeFormat))
	}
	if s.touched.due(t.ID, now) {
		if err := s.Tokens.TouchToken(ctx, t.ID, now.UTC()); err != nil {
			s.Logger.Warn("could not record a token's use", "token", t.Name, "err", err)
		}
	}
	return t, nil
}

// unauthorized answers 401 with the WWW-Authenticate challenge (RFC 6750),
// or the store's error.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if cloud.ErrorCode(err) != cloud.EUNAUTHORIZED {
		s.Error(w, r, err)
		return
	}
	challenge := `Bearer realm="fleetgate"`
	if r.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	s.Error(w, r, err)
}

func unsafe(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// csrfSafe reports whether a cookie-authenticated request that changes
// something was made by a script of the API's own origin: another site's
// form can send neither a JSON content type nor a custom header without a
// CORS preflight, which the allow-list refuses (and SameSite=Strict keeps
// the cookie off cross-site requests in the first place).
func csrfSafe(r *http.Request) bool {
	return r.Header.Get("X-Requested-With") != "" || isJSON(r.Header.Get("Content-Type"))
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// limiters are the rate limiters of the tokens seen, by token id. Idle ones
// are forgotten.
type limiters struct {
	mu    sync.Mutex
	byID  map[int64]*limiter
	swept time.Time
}

type limiter struct {
	lim  *rate.Limiter
	used time.Time
}

// take takes one request from token id's bucket at now and returns 0, or
// how long to wait when the bucket is empty (nothing is taken then).
func (l *limiters) take(id int64, r rate.Limit, burst int, now time.Time) time.Duration {
	if r <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[int64]*limiter{}
	}
	if now.Sub(l.swept) > time.Minute {
		for k, v := range l.byID {
			if now.Sub(v.used) > 10*time.Minute {
				delete(l.byID, k)
			}
		}
		l.swept = now
	}
	e := l.byID[id]
	if e == nil {
		e = &limiter{lim: rate.NewLimiter(r, max(burst, 1))}
		l.byID[id] = e
	}
	e.used = now
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// touches remembers when each token's use was last recorded, so that it is
// written at most once a minute per replica.
type touches struct {
	mu   sync.Mutex
	last map[int64]time.Time
}

func (t *touches) due(id int64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[int64]time.Time{}
	}
	if prev, ok := t.last[id]; ok && now.Sub(prev) < time.Minute {
		return false
	}
	t.last[id] = now
	return true
}

// cors adds the CORS headers for an allowed origin and answers its
// preflight requests; it reports whether it answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.CORSOrigins, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Location, Retry-After, Idempotent-Replayed")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Requested-With")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
