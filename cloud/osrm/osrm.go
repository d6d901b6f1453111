// Package osrm snaps trips to roads with OSRM's match service
// (GET /match/v1/{profile}/{coordinates}). A track longer than the
// server's coordinate limit goes in overlapping chunks whose matched legs
// are stitched into one geometry; timestamps, per-fix radiuses from the
// fix accuracy and gaps=split go with each request. Each request has a
// timeout, and a circuit breaker (github.com/sony/gobreaker) stops calling
// a server that keeps failing, so that the trips wait unmatched instead of
// each waiting for its timeout. OSRM cannot run on the development
// machines: the tests answer from an httptest server in the response
// format of OSRM's HTTP API documentation.
package osrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fleetgate/fleetgate/cloud"
)

// Defaults.
const (
	// DefaultMaxCoordinates is osrm-routed's default --max-matching-size.
	DefaultMaxCoordinates = 100
	// DefaultOverlap is how many coordinates consecutive chunks share.
	DefaultOverlap = 10
	// DefaultUERE is the user equivalent range error (m) that turns HDOP
	// into a 1-sigma horizontal error when the receiver sent no error
	// estimates.
	DefaultUERE = 5.0
	// DefaultMinRadius and DefaultMaxRadius bound the radiuses sent (m):
	// below, a fix would be trusted more than any receiver deserves; above,
	// the search area (and OSRM's work) grows for little gain.
	DefaultMinRadius = 3.0
	DefaultMaxRadius = 50.0
	// DefaultTimeout bounds one request.
	DefaultTimeout = 10 * time.Second
	// DefaultBreakerFailures consecutive failures (unreachable, timeout,
	// 5xx) open the circuit for DefaultBreakerOpen, after which one
	// request probes the server.
	DefaultBreakerFailures = 3
	DefaultBreakerOpen     = 30 * time.Second
	// DefaultProfile is the profile in the URL; osrm-routed serves the one
	// its data was prepared with whatever the URL says.
	DefaultProfile = "driving"
)

// minChunk is the smallest chunk a TooBig answer may shrink the chunks to.
const minChunk = 8

// Client calls an OSRM server's match service. Create it with NewClient
// and set the fields before the first Match; it is then safe for
// concurrent use.
type Client struct {
	URL            string // base URL, e.g. http://127.0.0.1:5000
	Profile        string
	MaxCoordinates int // per request, at most the server's --max-matching-size
	Overlap        int // coordinates shared by consecutive chunks
	UERE           float64
	MinRadius      float64
	MaxRadius      float64
	Timeout        time.Duration
	// BreakerFailures consecutive failures open the circuit for
	// BreakerOpen.
	BreakerFailures int
	BreakerOpen     time.Duration
	HTTP            *http.Client

	once    sync.Once
	breaker *gobreaker.CircuitBreaker[*response]
}

var _ cloud.Matcher = (*Client)(nil)

// NewClient returns a client of the server at baseURL with the defaults.
func NewClient(baseURL string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/"), Profile: DefaultProfile, MaxCoordinates: DefaultMaxCoordinates,
		Overlap: DefaultOverlap, UERE: DefaultUERE, MinRadius: DefaultMinRadius, MaxRadius: DefaultMaxRadius,
		Timeout: DefaultTimeout, BreakerFailures: DefaultBreakerFailures, BreakerOpen: DefaultBreakerOpen,
		HTTP: &http.Client{}}
}

// Validate returns an error naming the first unusable setting.
func (c *Client) Validate() error {
	switch u, err := url.Parse(c.URL); {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("osrm: URL %q: want http://host:port", c.URL)
	case c.Profile == "" || strings.ContainsAny(c.Profile, "/?#;, "):
		return fmt.Errorf("osrm: profile %q: want a name such as driving", c.Profile)
	case c.Overlap < 2:
		return fmt.Errorf("osrm: overlap %d: want at least 2", c.Overlap)
	case c.MaxCoordinates < 2*c.Overlap+2:
		return fmt.Errorf("osrm: max coordinates %d: want at least twice the overlap (%d) and 2", c.MaxCoordinates, c.Overlap)
	case !(c.UERE > 0) || !(c.MinRadius > 0) || !(c.MaxRadius >= c.MinRadius):
		return fmt.Errorf("osrm: UERE %g and radiuses %g to %g: want positive, min ≤ max", c.UERE, c.MinRadius, c.MaxRadius)
	case c.Timeout <= 0 || c.BreakerOpen <= 0 || c.BreakerFailures < 1:
		return errors.New("osrm: timeout, breaker open time and failures must be positive")
	}
	return nil
}

func (c *Client) init() {
	c.once.Do(func() {
		c.breaker = gobreaker.NewCircuitBreaker[*response](gobreaker.Settings{
			Name:        "osrm",
			MaxRequests: 1,
			Timeout:     c.BreakerOpen,
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(c.BreakerFailures) },
			// Only an unreachable or failing server counts against it; an
			// answer, even NoMatch, shows it works.
			IsSuccessful: func(err error) bool { return cloud.ErrorCode(err) != cloud.EUNAVAILABLE },
			// The caller giving up says nothing about the server.
			IsExcluded: func(err error) bool {
				var e *cloud.Error
				return !errors.As(err, &e) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
			},
		})
	})
}

// Open reports whether the circuit is open: the server failed
// BreakerFailures times in a row and is left alone for now.
func (c *Client) Open() bool {
	c.init()
	return c.breaker.State() == gobreaker.StateOpen
}

// point is a fix as sent: [lon, lat], a whole-second timestamp and a
// radius (0: none, OSRM's default).
type point struct {
	lon, lat float64
	ts       int64
	radius   float64
}

// Match snaps track (positions in time order) to roads; see cloud.Matcher.
// Fixes sharing a second with the previous one sent are left out (OSRM
// wants increasing whole-second timestamps). The track goes in chunks of
// at most MaxCoordinates sharing Overlap fixes; a chunk OSRM finds no
// match for (NoMatch, NoSegment) leaves a break in the geometry. When the
// server says TooBig the chunks are halved and the track sent again.
func (c *Client) Match(ctx context.Context, track []*cloud.Position) (*cloud.TripMatch, error) {
	c.init()
	pts := c.points(track)
	if len(pts) < 2 {
		return nil, cloud.Errorf(cloud.EINVALID, "a track of %d distinct seconds cannot be matched", len(pts))
	}
	for size := c.MaxCoordinates; ; size /= 2 {
		m, err := c.match(ctx, pts, size, min(c.Overlap, size/4))
		if !errors.Is(err, errTooBig) {
			return m, err
		}
		if size/2 < minChunk {
			return nil, cloud.Errorf(cloud.EINTERNAL, "OSRM at %s says TooBig even for %d coordinates: check --max-matching-size", c.URL, size)
		}
	}
}

// points thins the track to increasing whole seconds and gives each fix
// its radius: the RMS of the receiver's 1-sigma latitude and longitude
// errors (NMEA GST) when it sent them, else HDOP × UERE, else none;
// clamped to [MinRadius, MaxRadius].
func (c *Client) points(track []*cloud.Position) []point {
	var out []point
	for _, p := range track {
		ts := p.Time.Unix()
		if n := len(out); n > 0 && ts <= out[n-1].ts {
			continue
		}
		r := 0.0
		switch {
		case p.ErrLatM != nil && p.ErrLonM != nil:
			r = math.Sqrt((*p.ErrLatM**p.ErrLatM + *p.ErrLonM**p.ErrLonM) / 2)
		case p.HDOP != nil:
			r = *p.HDOP * c.UERE
		}
		if p.ErrLatM != nil || p.HDOP != nil {
			r = max(c.MinRadius, min(c.MaxRadius, r))
		}
		out = append(out, point{lon: p.Lon, lat: p.Lat, ts: ts, radius: r})
	}
	return out
}

// span is a matched leg between two fixes of the whole track (indices).
type span struct {
	a, b       int
	distance   float64
	confidence float64
	line       [][2]float64
}

var errTooBig = errors.New("osrm: TooBig")

// match sends pts in chunks of size sharing overlap and stitches the legs.
func (c *Client) match(ctx context.Context, pts []point, size, overlap int) (*cloud.TripMatch, error) {
	var all []span
	covered, answered := 0, false
	var lastNoMatch error
	for start := 0; ; start += size - overlap {
		end := min(start+size, len(pts))
		resp, err := c.request(ctx, pts[start:end])
		switch {
		case errors.Is(err, errNoMatch):
			lastNoMatch = err
		case err != nil:
			return nil, err
		default:
			answered = true
			// A chunk owns the legs starting before the middle of its
			// overlap with the next one; the next one those after.
			limit := len(pts)
			if end < len(pts) {
				limit = end - overlap/2
			}
			for _, s := range resp.spans(start) {
				if s.a >= covered && s.a < limit {
					all = append(all, s)
					covered = s.b
				}
			}
		}
		if end == len(pts) {
			break
		}
	}
	if !answered {
		return nil, cloud.Errorf(cloud.EINVALID, "%v", lastNoMatch)
	}
	return stitch(all), nil
}

// stitch joins consecutive spans into lines; distance is their sum,
// confidence their matchings' confidence weighted by distance.
func stitch(spans []span) *cloud.TripMatch {
	m := &cloud.TripMatch{Status: cloud.MatchMatched}
	weighted, plain := 0.0, 0.0
	for i, s := range spans {
		m.DistanceM += s.distance
		weighted += s.confidence * s.distance
		plain += s.confidence
		if i == 0 || spans[i-1].b != s.a || len(m.Geometry) == 0 {
			m.Geometry = append(m.Geometry, nil)
		}
		line := &m.Geometry[len(m.Geometry)-1]
		for _, p := range s.line {
			if n := len(*line); n == 0 || (*line)[n-1] != p {
				*line = append(*line, p)
			}
		}
	}
	switch {
	case m.DistanceM > 0:
		m.Confidence = weighted / m.DistanceM
	case len(spans) > 0:
		m.Confidence = plain / float64(len(spans))
	}
	// A line of one point (a leg of zero length alone) draws nothing.
	for i := 0; i < len(m.Geometry); i++ {
		if len(m.Geometry[i]) < 2 {
			m.Geometry = append(m.Geometry[:i], m.Geometry[i+1:]...)
			i--
		}
	}
	return m
}

var errNoMatch = errors.New("osrm: no match")

// request sends one chunk through the breaker.
func (c *Client) request(ctx context.Context, pts []point) (*response, error) {
	resp, err := c.breaker.Execute(func() (*response, error) { return c.get(ctx, pts) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM at %s: circuit open after %d failures in a row", c.URL, c.BreakerFailures)
	}
	return resp, err
}

// requestURL returns the match request for pts.
func (c *Client) requestURL(pts []point) string {
	var coords, stamps, radiuses strings.Builder
	for i, p := range pts {
		if i > 0 {
			coords.WriteByte(';')
			stamps.WriteByte(';')
			radiuses.WriteByte(';')
		}
		coords.WriteString(strconv.FormatFloat(p.lon, 'f', 7, 64) + "," + strconv.FormatFloat(p.lat, 'f', 7, 64))
		stamps.WriteString(strconv.FormatInt(p.ts, 10))
		if p.radius > 0 {
			radiuses.WriteString(strconv.FormatFloat(p.radius, 'f', 1, 64))
		}
	}
	q := "timestamps=" + stamps.String() + "&radiuses=" + radiuses.String() +
		"&gaps=split&geometries=geojson&overview=false&steps=true&annotations=false&tidy=false"
	return fmt.Sprintf("%s/match/v1/%s/%s?%s", c.URL, url.PathEscape(c.Profile), coords.String(), q)
}

// get sends one request and decodes the answer.
func (c *Client) get(ctx context.Context, pts []point) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.requestURL(pts), nil)
	if err != nil {
		return nil, cloud.Errorf(cloud.EINTERNAL, "OSRM request: %w", err)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the caller gave up: not the server's fault
		}
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM at %s: %w", c.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM at %s: read the answer: %w", c.URL, err)
	}
	resp, err := decode(res.StatusCode, body)
	if err != nil {
		return nil, err
	}
	if n := len(resp.Tracepoints); n != len(pts) {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM at %s: %d tracepoints for %d coordinates", c.URL, n, len(pts))
	}
	return resp, nil
}

// response is a match service answer (OSRM HTTP API: Response, Waypoint
// with matchings_index and waypoint_index, Route with confidence,
// RouteLeg, RouteStep with a GeoJSON LineString geometry).
type response struct {
	Code        string        `json:"code"`
	Message     string        `json:"message"`
	Tracepoints []*tracepoint `json:"tracepoints"`
	Matchings   []matching    `json:"matchings"`
}

type tracepoint struct {
	Location      [2]float64 `json:"location"`
	MatchingsIdx  int        `json:"matchings_index"`
	WaypointIndex int        `json:"waypoint_index"`
}

type matching struct {
	Confidence float64 `json:"confidence"`
	Distance   float64 `json:"distance"`
	Legs       []leg   `json:"legs"`
}

type leg struct {
	Distance float64 `json:"distance"`
	Steps    []step  `json:"steps"`
}

type step struct {
	Geometry struct {
		Type        string       `json:"type"`
		Coordinates [][2]float64 `json:"coordinates"`
	} `json:"geometry"`
}

// decode reads an answer of HTTP status code status: the response of a
// 200 with code Ok; errNoMatch for NoMatch and NoSegment (no road near a
// chunk); errTooBig; an EINVALID error for InvalidValue (OSRM refuses
// this track); an EUNAVAILABLE error for a server error or an answer that
// is not OSRM's; an EINTERNAL one for the other codes (the request or the
// server's setup is wrong).
func decode(status int, body []byte) (*response, error) {
	var r response
	err := json.Unmarshal(body, &r)
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM answered %d: %s %s", status, r.Code, r.Message)
	case err != nil || r.Code == "":
		// Not OSRM speaking: a proxy's error page, a wrong URL.
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM answered %d with no OSRM response (%.80q)", status, body)
	case r.Code == "Ok" && status == http.StatusOK:
		if err := r.check(); err != nil {
			return nil, cloud.Errorf(cloud.EUNAVAILABLE, "OSRM answer: %v", err)
		}
		return &r, nil
	case r.Code == "NoMatch" || r.Code == "NoSegment":
		return nil, fmt.Errorf("%w: %s %s", errNoMatch, r.Code, r.Message)
	case r.Code == "TooBig":
		return nil, errTooBig
	case r.Code == "InvalidValue":
		return nil, cloud.Errorf(cloud.EINVALID, "OSRM refused the track: %s %s", r.Code, r.Message)
	}
	return nil, cloud.Errorf(cloud.EINTERNAL, "OSRM answered %d: %s %s", status, r.Code, r.Message)
}

// check verifies that the indices of an Ok answer hold together.
func (r *response) check() error {
	for i, tp := range r.Tracepoints {
		if tp == nil {
			continue
		}
		if tp.MatchingsIdx < 0 || tp.MatchingsIdx >= len(r.Matchings) {
			return fmt.Errorf("tracepoint %d: matchings_index %d of %d", i, tp.MatchingsIdx, len(r.Matchings))
		}
		if legs := len(r.Matchings[tp.MatchingsIdx].Legs); tp.WaypointIndex < 0 || tp.WaypointIndex > legs {
			return fmt.Errorf("tracepoint %d: waypoint_index %d with %d legs", i, tp.WaypointIndex, legs)
		}
	}
	return nil
}

// spans returns the legs of r as spans between the track's fixes, the
// chunk starting at fix offset.
func (r *response) spans(offset int) []span {
	// Per matching, the fix of each waypoint.
	fixes := make([]map[int]int, len(r.Matchings))
	for i := range fixes {
		fixes[i] = map[int]int{}
	}
	for i, tp := range r.Tracepoints {
		if tp != nil {
			fixes[tp.MatchingsIdx][tp.WaypointIndex] = offset + i
		}
	}
	var out []span
	for mi, m := range r.Matchings {
		for li, l := range m.Legs {
			a, okA := fixes[mi][li]
			b, okB := fixes[mi][li+1]
			if !okA || !okB || b <= a {
				continue
			}
			s := span{a: a, b: b, distance: l.Distance, confidence: m.Confidence}
			for _, st := range l.Steps {
				s.line = append(s.line, st.Geometry.Coordinates...)
			}
			out = append(out, s)
		}
	}
	// In track order (matchings follow the track).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].a < out[j-1].a; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
