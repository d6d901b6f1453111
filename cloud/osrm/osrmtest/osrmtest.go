// Package osrmtest is a stand-in for an OSRM server's match service, for
// tests: OSRM cannot run on the development machines. It answers
// GET /match/v1/{profile}/{coordinates} in the response format of OSRM's
// HTTP API documentation (code, tracepoints with matchings_index and
// waypoint_index, matchings with confidence, legs, steps with GeoJSON
// geometries), including its error answers (400 with NoMatch, TooBig,
// InvalidUrl, InvalidOptions, InvalidValue). Its road network is ideal: a
// road runs under every fix, so a fix snaps to itself and a leg is the
// straight line between two fixes, except for fixes in the OffRoad box,
// which it drops as outliers (null tracepoints), as OSRM does. Like OSRM
// it splits a trace where the timestamps jump by more than 60 s
// (gaps=split). Faults are set with Down, Fail and Delay.
package osrmtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GapSplit is the timestamp jump above which a trace is split.
const GapSplit = 60

// Request is a match request as the server read it.
type Request struct {
	Profile    string
	Coords     [][2]float64 // [lon, lat]
	Timestamps []int64
	Radiuses   []string // as sent; "" for the default
	Query      map[string]string
}

// Server is a fake OSRM. Its fields may be changed while it runs.
type Server struct {
	*httptest.Server
	// MaxMatchingSize is osrm-routed's --max-matching-size (100 by default):
	// more coordinates get TooBig.
	MaxMatchingSize int
	// Confidence is what each matching reports (0.95 by default).
	Confidence float64
	// OffRoad, when set, says which fixes have no road near them.
	OffRoad func(lon, lat float64) bool

	mu       sync.Mutex
	requests []Request
	fail     string // an error code or "500" or "garbage" answered to every request
	delay    time.Duration
	down     bool
}

// NewServer starts a fake OSRM on a free loopback port.
func NewServer() *Server {
	s := &Server{MaxMatchingSize: 100, Confidence: 0.95}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Requests returns the match requests served so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Fail makes every request get answer: an OSRM code ("NoMatch",
// "InvalidValue", ...) with status 400, "500" for an internal server
// error, "garbage" for a 200 that is not JSON; "" serves again.
func (s *Server) Fail(answer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = answer
}

// Delay makes every answer wait d.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Down cuts every connection at once (the server looks dead); Down(false)
// serves again.
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

type waypoint struct {
	Hint          string     `json:"hint"`
	Distance      float64    `json:"distance"`
	Name          string     `json:"name"`
	Location      [2]float64 `json:"location"`
	MatchingsIdx  int        `json:"matchings_index"`
	WaypointIndex int        `json:"waypoint_index"`
	Alternatives  int        `json:"alternatives_count"`
}

type geometry struct {
	Type        string       `json:"type"`
	Coordinates [][2]float64 `json:"coordinates"`
}

type step struct {
	Geometry geometry       `json:"geometry"`
	Maneuver map[string]any `json:"maneuver"`
	Mode     string         `json:"mode"`
	Name     string         `json:"name"`
	Distance float64        `json:"distance"`
	Duration float64        `json:"duration"`
	Weight   float64        `json:"weight"`
}

type leg struct {
	Distance float64 `json:"distance"`
	Duration float64 `json:"duration"`
	Weight   float64 `json:"weight"`
	Summary  string  `json:"summary"`
	Steps    []step  `json:"steps"`
}

type route struct {
	Confidence float64 `json:"confidence"`
	Distance   float64 `json:"distance"`
	Duration   float64 `json:"duration"`
	Weight     float64 `json:"weight"`
	WeightName string  `json:"weight_name"`
	Legs       []leg   `json:"legs"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fail, delay, down := s.fail, s.delay, s.down
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				return
			}
		}
	}
	time.Sleep(delay)
	switch fail {
	case "":
	case "500":
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case "garbage":
		w.Write([]byte("<html>502 Bad Gateway</html>"))
		return
	default:
		answer(w, 400, map[string]any{"code": fail, "message": "injected by the test"})
		return
	}
	req, code, msg := parse(r)
	if code == "" && len(req.Coords) > s.MaxMatchingSize {
		code, msg = "TooBig", "Too many trace coordinates"
	}
	if code != "" {
		answer(w, 400, map[string]any{"code": code, "message": msg})
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	body := s.match(req)
	if body["code"] != "Ok" {
		answer(w, 400, body)
		return
	}
	answer(w, 200, body)
}

func answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// parse reads a match request as osrm-routed checks it.
func parse(r *http.Request) (Request, string, string) {
	var req Request
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "match" {
		return req, "InvalidService", "Service " + parts[0] + " not found!"
	}
	if parts[1] != "v1" {
		return req, "InvalidVersion", "Service version " + parts[1] + " not found!"
	}
	req.Profile = parts[2]
	for i, c := range strings.Split(parts[3], ";") {
		ll := strings.Split(c, ",")
		if len(ll) != 2 {
			return req, "InvalidUrl", fmt.Sprintf("URL string malformed close to coordinate %d", i)
		}
		lon, err1 := strconv.ParseFloat(ll[0], 64)
		lat, err2 := strconv.ParseFloat(ll[1], 64)
		if err1 != nil || err2 != nil {
			return req, "InvalidUrl", fmt.Sprintf("URL string malformed close to coordinate %d", i)
		}
		if math.Abs(lat) > 90 || math.Abs(lon) > 180 {
			return req, "InvalidValue", fmt.Sprintf("Invalid coordinate value at %d", i)
		}
		req.Coords = append(req.Coords, [2]float64{lon, lat})
	}
	// OSRM's lists are separated by ';', which Go's query parser refuses:
	// the raw query is split by hand, as osrm-routed does.
	req.Query = map[string]string{}
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			req.Query[k] = v
		}
	}
	if len(req.Coords) < 2 {
		return req, "InvalidOptions", "Number of coordinates needs to be at least two."
	}
	if ts, ok := req.Query["timestamps"]; ok {
		for _, t := range strings.Split(ts, ";") {
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return req, "InvalidQuery", "Query string malformed close to timestamps"
			}
			if k := len(req.Timestamps); k > 0 && n < req.Timestamps[k-1] {
				return req, "InvalidValue", "Timestamps need to be monotonically increasing"
			}
			req.Timestamps = append(req.Timestamps, n)
		}
		if len(req.Timestamps) != len(req.Coords) {
			return req, "InvalidOptions", "Number of timestamps does not match number of coordinates"
		}
	}
	if rs, ok := req.Query["radiuses"]; ok {
		req.Radiuses = strings.Split(rs, ";")
		if len(req.Radiuses) != len(req.Coords) {
			return req, "InvalidOptions", "Number of radiuses does not match number of coordinates"
		}
		for _, r := range req.Radiuses {
			if f, err := strconv.ParseFloat(r, 64); r != "" && (err != nil || f < 0) {
				return req, "InvalidValue", "Radius must be a non-negative number"
			}
		}
	}
	if g := req.Query["geometries"]; g != "" && g != "geojson" && g != "polyline" && g != "polyline6" {
		return req, "InvalidOptions", "geometries must be polyline, polyline6 or geojson"
	}
	return req, "", ""
}

// match snaps the trace to the ideal roads.
func (s *Server) match(req Request) map[string]any {
	n := len(req.Coords)
	onRoad := make([]bool, n)
	for i, c := range req.Coords {
		onRoad[i] = s.OffRoad == nil || !s.OffRoad(c[0], c[1])
	}
	// Sub-traces: split at timestamp jumps over GapSplit.
	var traces [][]int
	var cur []int
	for i := range n {
		if !onRoad[i] {
			continue
		}
		if len(cur) > 0 && req.Timestamps != nil && req.Timestamps[i]-req.Timestamps[cur[len(cur)-1]] > GapSplit {
			traces = append(traces, cur)
			cur = nil
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		traces = append(traces, cur)
	}
	tracepoints := make([]*waypoint, n)
	var matchings []route
	for _, tr := range traces {
		if len(tr) < 2 {
			continue // a lone fix matches nothing
		}
		mi := len(matchings)
		rt := route{Confidence: s.Confidence, WeightName: "routability"}
		for wi, i := range tr {
			tracepoints[i] = &waypoint{Hint: "AAAA", Name: "Boulevard Albert 1er", Location: req.Coords[i], MatchingsIdx: mi, WaypointIndex: wi}
			if wi == 0 {
				continue
			}
			a, b := req.Coords[tr[wi-1]], req.Coords[i]
			d := haversine(a, b)
			dur := 0.0
			if req.Timestamps != nil {
				dur = float64(req.Timestamps[i] - req.Timestamps[tr[wi-1]])
			}
			rt.Legs = append(rt.Legs, leg{Distance: d, Duration: dur, Weight: dur, Steps: []step{
				{Geometry: geometry{"LineString", [][2]float64{a, b}}, Maneuver: map[string]any{"type": "depart", "location": a},
					Mode: "driving", Name: "Boulevard Albert 1er", Distance: d, Duration: dur, Weight: dur},
				{Geometry: geometry{"LineString", [][2]float64{b, b}}, Maneuver: map[string]any{"type": "arrive", "location": b},
					Mode: "driving", Name: "Boulevard Albert 1er"},
			}})
			rt.Distance += d
			rt.Duration += dur
		}
		rt.Weight = rt.Duration
		matchings = append(matchings, rt)
	}
	if len(matchings) == 0 {
		return map[string]any{"code": "NoMatch", "message": "Could not match the trace."}
	}
	return map[string]any{"code": "Ok", "tracepoints": tracepoints, "matchings": matchings}
}

// haversine returns the distance in metres between two [lon, lat] points.
func haversine(a, b [2]float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dLat, dLon := (b[1]-a[1])*rad, (b[0]-a[0])*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a[1]*rad)*math.Cos(b[1]*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}
