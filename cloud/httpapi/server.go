// Package httpapi serves the fleet over HTTP with net/http: the operator API
// of vehicles, their history, events, device health and commands, a live
// stream (Server-Sent Events), token and session handling, and /health,
// /ready, /openapi.json and /docs. Every route is declared once, in
// routes.go, with the role it needs; the OpenAPI document (openapi.yaml,
// embedded) describes each of them, and a test holds the two together.
// Errors are {"error":{"code","message"}} with the status taken from the
// cloud error code in one table.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fleetgate/fleetgate/cloud"
)

// Check is one dependency that /ready asks.
type Check struct {
	Name   string // as shown to operators: "PostgreSQL", "Redis", "broker"
	Pinger cloud.Pinger
}

// Sender sends a new command to its vehicle (dispatch.Dispatcher).
type Sender interface {
	// Send publishes c and marks it sent; an error leaves it pending (to
	// be retried by the sender's own loop).
	Send(ctx context.Context, c *cloud.Command) error
}

// Defaults of a Server (NewServer).
const (
	DefaultRequestTimeout    = 30 * time.Second
	DefaultRateLimit         = 50 // requests per second per token
	DefaultRateBurst         = 100
	DefaultMaxStreams        = 10 // live streams per token
	DefaultHeartbeat         = 15 * time.Second
	DefaultSessionMaxAge     = 12 * time.Hour
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultReadyTimeout      = 2 * time.Second
	DefaultVehiclesPageLimit = 1000
	DefaultListCacheTTL      = time.Second
)

// Server is the HTTP API. Create it with NewServer, set the services, then
// either Run it or mount Handler elsewhere. A service left nil makes its
// endpoints answer 503.
type Server struct {
	Addr        string // listen address, e.g. ":8000"
	Vehicles    cloud.VehicleService
	Positions   cloud.PositionService
	OBD         cloud.OBDService
	Events      cloud.EventService
	Statuses    cloud.StatusService
	Commands    cloud.CommandService
	Sender      Sender
	DeadLetters cloud.DeadLetterService
	Tokens      cloud.TokenService
	Trips       cloud.TripService // serves the trip endpoints (nil: 503)
	// Live gives the latest positions and the geographic filters from the
	// live store (Redis); nil, or when it fails, they come from PostgreSQL
	// and the answer says so.
	Live cloud.LiveReader
	// Hub serves the live stream; Slots caps the streams per token (nil:
	// no cap across replicas).
	Hub     *Hub
	Slots   cloud.LiveSlots
	Ready   []Check
	Metrics http.Handler // served at GET /metrics when set (Prometheus)
	Observe Observer     // sees every request when set (request metrics)
	// Web, when set, serves the dashboard: GET /, /assets/ and
	// /favicon.ico (its page and bundle, public like /docs; the data it
	// shows comes from the API's routes, signed in).
	Web    http.Handler
	Logger *slog.Logger
	Now    func() time.Time

	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call the API with a token; none by default.
	CORSOrigins []string
	// SecureCookie marks the session cookie Secure (HTTPS only): set it
	// when the API is served over TLS or behind a TLS proxy.
	SecureCookie bool
	// SessionMaxAge bounds a session cookie's life (and the token's expiry
	// bounds it too).
	SessionMaxAge time.Duration
	// RequestTimeout bounds every request but the live stream's.
	RequestTimeout time.Duration
	// RateLimit and RateBurst limit each token's requests (a token bucket
	// per token and replica); a RateLimit of 0 turns it off.
	RateLimit rate.Limit
	RateBurst int
	// MaxStreams caps the live streams one token holds at once.
	MaxStreams int
	// ListCacheTTL is how long a replica keeps the PostgreSQL part of a
	// vehicle list (vehicles, device statuses, trouble codes) to answer the
	// same list again; never longer, 0 not at all. Positions are always
	// read afresh from the live store, and without one nothing is cached.
	ListCacheTTL time.Duration
	// Heartbeat is how often an idle live stream gets a comment line.
	Heartbeat time.Duration
	// ShutdownTimeout bounds how long Run waits for requests in flight after
	// its context is done.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout time.Duration

	mu      sync.Mutex
	addr    net.Addr
	limits  limiters
	touched touches
	lists   listCache
	ending  chan struct{} // closed when Run shuts down: live streams end
	endOnce sync.Once
}

// NewServer returns a Server listening on addr once Run, with the defaults
// above.
func NewServer(addr string) *Server {
	return &Server{Addr: addr, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		SessionMaxAge: DefaultSessionMaxAge, RequestTimeout: DefaultRequestTimeout,
		RateLimit: DefaultRateLimit, RateBurst: DefaultRateBurst, MaxStreams: DefaultMaxStreams,
		ListCacheTTL: DefaultListCacheTTL,
		Heartbeat:    DefaultHeartbeat, ShutdownTimeout: DefaultShutdownTimeout, ReadyTimeout: DefaultReadyTimeout}
}

// Handler returns the API: every route of routes.go behind its checks
// (timeout, token and role, CSRF, rate limit), the dashboard (Web) at /
// and /assets/, CORS, and JSON answers for unknown paths (404) and wrong
// methods (405 with Allow).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.guard(rt))
	}
	if s.Web != nil {
		mux.Handle("GET /{$}", s.Web)
		mux.Handle("GET /assets/", s.Web)
		mux.Handle("GET /favicon.ico", s.Web)
	}
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if s.cors(w, r) {
			return // a preflight, answered
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			s.unmatched(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	})
	if s.Observe != nil {
		return observe(root, s.Observe)
	}
	return root
}

// unmatched answers a request no route takes: 405 with Allow when the path
// has routes for other methods, else 404, as JSON.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	h, _ := mux.Handler(r)
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.Error(w, r, cloud.Errorf(cloud.EMETHOD, "method %s is not allowed on %s: use %s", r.Method, r.URL.Path, allow))
		return
	}
	s.Error(w, r, cloud.Errorf(cloud.ENOTFOUND, "no such endpoint: %s (see /docs)", r.URL.Path))
}

// headerRecorder keeps what the ServeMux's own 404 and 405 handlers write.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.status = code }

// Run listens on Addr and serves until ctx is done, then stops taking
// connections and waits (at most ShutdownTimeout) for requests in flight
// (live streams end at once). It returns an error when it cannot listen or
// serving fails.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "listen on %s: %w", s.Addr, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(s.endStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.Logger.Info("HTTP API listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ListenAddr returns the address Run listens on, nil before it does.
func (s *Server) ListenAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// codes maps each cloud error code to its HTTP status: the one table.
var codes = map[string]int{
	cloud.EINVALID:         http.StatusBadRequest,
	cloud.EUNAUTHORIZED:    http.StatusUnauthorized,
	cloud.EFORBIDDEN:       http.StatusForbidden,
	cloud.ENOTFOUND:        http.StatusNotFound,
	cloud.EMETHOD:          http.StatusMethodNotAllowed,
	cloud.ECONFLICT:        http.StatusConflict,
	cloud.ETOOMANYREQUESTS: http.StatusTooManyRequests,
	cloud.EINTERNAL:        http.StatusInternalServerError,
	cloud.EUNAVAILABLE:     http.StatusServiceUnavailable,
	cloud.ETIMEOUT:         http.StatusServiceUnavailable,
}

// ErrorStatus returns the HTTP status for err's cloud error code.
func ErrorStatus(err error) int {
	if st, ok := codes[cloud.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error writes err as the JSON error envelope. Details of EINTERNAL and
// EUNAVAILABLE errors are logged, not shown to the client; a request that
// ran out of time says so.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) && cloud.ErrorCode(err) != cloud.ETIMEOUT {
		err = cloud.Errorf(cloud.ETIMEOUT, "the request took longer than %s: ask for less (a shorter time range, a smaller page)", s.RequestTimeout)
	}
	code, msg := cloud.ErrorCode(err), cloud.ErrorMessage(err)
	switch code {
	case cloud.EINTERNAL:
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	case cloud.EUNAVAILABLE:
		s.Logger.Warn("dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "a service the API depends on is unavailable; retry later"
	case cloud.ETIMEOUT:
		s.Logger.Warn("request timed out", "method", r.Method, "path", r.URL.Path, "err", err)
		if !strings.HasPrefix(msg, "the request took longer") {
			msg = "the request took longer than the database allows: ask for less (a shorter time range, a smaller page)"
		}
	}
	s.json(w, ErrorStatus(err), errorBody{errorDetail{code, msg}})
}

func (s *Server) json(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.Logger.Error("encode response", "err", err)
		http.Error(w, `{"error":{"code":"EINTERNAL","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	s.writeJSON(w, status, b)
}

// writeJSON writes the JSON document b and a line feed.
func (s *Server) writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// withoutCause returns err's message without the error it wraps: for a
// cloud error made as "what failed: %w", what failed; "not reachable" for
// any other error.
func withoutCause(err error) string {
	var e *cloud.Error
	if !errors.As(err, &e) {
		return "not reachable"
	}
	if e.Err == nil {
		return e.Message
	}
	msg, found := strings.CutSuffix(e.Message, e.Err.Error())
	if !found {
		return "not reachable"
	}
	return strings.TrimSuffix(strings.TrimSpace(msg), ":")
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	s.json(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *errorDetail      `json:"error,omitempty"`
}

// ready asks every Check at once, each within ReadyTimeout: 200 when all
// answer, else 503 naming those that did not and why, in the server's own
// words: the underlying errors (a driver's, which may name the database's
// user, host and name) go to the log only.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	results := make([]error, len(s.Ready))
	var wg sync.WaitGroup
	for i, c := range s.Ready {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
			defer cancel()
			results[i] = c.Pinger.Ping(ctx)
		})
	}
	wg.Wait()
	body := readyBody{Status: "ready", Checks: map[string]string{}}
	var down []string
	for i, c := range s.Ready {
		if results[i] != nil {
			s.Logger.Warn("not ready", "check", c.Name, "err", results[i])
			body.Checks[c.Name] = "unavailable: " + withoutCause(results[i])
			down = append(down, c.Name)
			continue
		}
		body.Checks[c.Name] = "ok"
	}
	if len(down) == 0 {
		s.json(w, http.StatusOK, body)
		return
	}
	body.Status = "unavailable"
	body.Error = &errorDetail{cloud.EUNAVAILABLE, "not reachable: " + strings.Join(down, ", ") + " (details in the server's log)"}
	s.json(w, http.StatusServiceUnavailable, body)
}
