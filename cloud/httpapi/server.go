// Package httpapi serves the fleet over HTTP with net/http: JSON endpoints for
// vehicles, positions and OBD samples with keyset pagination, /health and
// /ready. Errors are {"error":{"code","message"}} with the status taken from
// the cloud error code in one table.
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

	"github.com/fleetgate/fleetgate/cloud"
)

// Check is one dependency that /ready asks.
type Check struct {
	Name   string // as shown to operators: "PostgreSQL", "Redis", "broker"
	Pinger cloud.Pinger
}

// Server is the HTTP API. Create it with NewServer, set the services, then
// either Run it or mount Handler elsewhere.
type Server struct {
	Addr      string // listen address, e.g. ":8000"
	Vehicles  cloud.VehicleService
	Positions cloud.PositionService
	OBD       cloud.OBDService
	// Statuses adds device health to the vehicles (nil: none); Commands and
	// Publisher serve the command endpoints (nil: 503).
	Statuses  cloud.StatusService
	Commands  cloud.CommandService
	Publisher cloud.CommandPublisher
	Trips     cloud.TripService // serves the trip endpoints (nil: 503)
	Ready     []Check
	Metrics   http.Handler // served at GET /metrics when set (Prometheus)
	Observe   Observer     // sees every request when set (request metrics)
	Logger    *slog.Logger
	Now       func() time.Time

	// ShutdownTimeout bounds how long Run waits for requests in flight after
	// its context is done.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout time.Duration

	mu   sync.Mutex
	addr net.Addr
}

// NewServer returns a Server listening on addr once Run.
func NewServer(addr string) *Server {
	return &Server{Addr: addr, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		ShutdownTimeout: 10 * time.Second, ReadyTimeout: 2 * time.Second}
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /api/v1/vehicles", s.vehicles)
	mux.HandleFunc("GET /api/v1/vehicles/{id}", s.vehicle)
	mux.HandleFunc("GET /api/v1/vehicles/{id}/positions", s.positions)
	mux.HandleFunc("GET /api/v1/vehicles/{id}/obd", s.obd)
	mux.HandleFunc("POST /api/v1/vehicles/{id}/commands", s.createCommand)
	mux.HandleFunc("GET /api/v1/vehicles/{id}/commands/{cmd_id}", s.command)
	s.tripRoutes(mux)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, cloud.Errorf(cloud.ENOTFOUND, "no such endpoint: %s", r.URL.Path))
	})
	if s.Observe != nil {
		return observe(mux, s.Observe)
	}
	return mux
}

// Run listens on Addr and serves until ctx is done, then stops taking
// connections and waits (at most ShutdownTimeout) for requests in flight. It
// returns an error when it cannot listen or serving fails.
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
	cloud.EINVALID:     http.StatusBadRequest,
	cloud.ENOTFOUND:    http.StatusNotFound,
	cloud.EUNAVAILABLE: http.StatusServiceUnavailable,
	cloud.EINTERNAL:    http.StatusInternalServerError,
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
// EUNAVAILABLE errors are logged, not shown to the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := cloud.ErrorCode(err), cloud.ErrorMessage(err)
	switch code {
	case cloud.EINTERNAL:
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	case cloud.EUNAVAILABLE:
		s.Logger.Warn("dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "a service the API depends on is unavailable; retry later"
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
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
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
// answer, else 503 naming those that did not.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	results := make([]error, len(s.Ready))
	var wg sync.WaitGroup
	for i, c := range s.Ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
			defer cancel()
			results[i] = c.Pinger.Ping(ctx)
		}()
	}
	wg.Wait()
	body := readyBody{Status: "ready", Checks: map[string]string{}}
	var down []string
	for i, c := range s.Ready {
		if results[i] != nil {
			body.Checks[c.Name] = results[i].Error()
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
	body.Error = &errorDetail{cloud.EUNAVAILABLE, "not reachable: " + strings.Join(down, ", ")}
	s.json(w, http.StatusServiceUnavailable, body)
}
