package httpapi

import (
	"net/http"
	"time"
)

// Observer records one served request: its route pattern (as registered,
// e.g. "GET /api/v1/vehicles/{id}"; "unmatched" when no route matched), its
// status code and how long it took. It must be safe for concurrent use.
type Observer func(route string, status int, took time.Duration)

// observe wraps h so that obs sees every request it serves.
func observe(h http.Handler, obs Observer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern // set by the ServeMux on r
		if route == "" {
			route = "unmatched"
		}
		obs(route, sw.status, time.Since(start))
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush
// for streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
