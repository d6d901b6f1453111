package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrUnknownRoute is returned by RouteByName for a name no built-in route has.
var ErrUnknownRoute = errors.New("unknown route")

// Waypoint is one point of a route's centre line.
type Waypoint struct {
	Lat, Lon float64 // WGS-84 degrees
	AltM     float64 // metres above mean sea level
	// LimitKmh is the speed limit from this waypoint to the next; 0 keeps the
	// limit of the waypoint before (or the route's default on the first).
	LimitKmh float64
	// Stop marks a traffic light or junction at this waypoint where the vehicle
	// may have to stop.
	Stop bool
	// Tunnel marks the stretch from this waypoint to the next as covered: no
	// satellite is in view there, and the GPS receiver loses its fix.
	Tunnel bool
	// Street names the street the waypoint is on, for people reading the table.
	Street string
}

// Route is a path of waypoints the vehicle drives for ever: a closed loop
// (after the last waypoint it drives back to the first), or, with OutAndBack,
// a line driven to its end, turned round (the vehicle stops at each end) and
// driven back.
type Route struct {
	Name        string
	Description string
	// DefaultLimitKmh is the speed limit where no waypoint sets one.
	DefaultLimitKmh float64
	OutAndBack      bool
	Waypoints       []Waypoint
}

// Routes returns the built-in routes, sorted by name. The caller may modify the
// returned slice but not the routes' waypoints.
func Routes() []*Route {
	rs := []*Route{monacoLoop, monacoHarbour, monacoTunnel}
	slices.SortFunc(rs, func(a, b *Route) int { return strings.Compare(a.Name, b.Name) })
	return rs
}

// RouteByName returns the built-in route called name, or an error wrapping
// ErrUnknownRoute.
func RouteByName(name string) (*Route, error) {
	for _, r := range Routes() {
		if r.Name == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("route %q: %w", name, ErrUnknownRoute)
}

// Length returns the length of the loop in metres (there and back for an
// out-and-back route), or 0 if the route cannot be driven.
func (r *Route) Length() float64 {
	t, err := newTrack(r)
	if err != nil {
		return 0
	}
	return t.length
}

// Validate checks that r can be driven and returns an error naming the
// first problem.
func (r *Route) Validate() error {
	_, err := newTrack(r)
	return err
}

func (r *Route) validate() error {
	if need := 3 - btoi(r.OutAndBack); len(r.Waypoints) < need {
		return fmt.Errorf("route %q: %d waypoints, need at least %d", r.Name, len(r.Waypoints), need)
	}
	if r.DefaultLimitKmh <= 0 {
		return fmt.Errorf("route %q: default speed limit %v km/h must be positive", r.Name, r.DefaultLimitKmh)
	}
	for i, w := range r.Waypoints {
		if math.IsNaN(w.Lat) || math.IsNaN(w.Lon) || math.Abs(w.Lat) > 85 || math.Abs(w.Lon) > 180 {
			return fmt.Errorf("route %q: waypoint %d: bad position %v,%v", r.Name, i, w.Lat, w.Lon)
		}
		if w.LimitKmh < 0 {
			return fmt.Errorf("route %q: waypoint %d: negative speed limit", r.Name, i)
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// driven returns the waypoints of the loop the vehicle drives: the route's
// own for a loop; for an out-and-back route, there and back, with the limits
// and tunnels of each stretch carried onto the way back and a stop at each
// end for the turn.
func (r *Route) driven() []Waypoint {
	if !r.OutAndBack {
		return r.Waypoints
	}
	n := len(r.Waypoints)
	limits := make([]float64, n) // of the stretch from waypoint i to i+1
	lim := r.DefaultLimitKmh
	for i, w := range r.Waypoints {
		if w.LimitKmh > 0 {
			lim = w.LimitKmh
		}
		limits[i] = lim
	}
	out := make([]Waypoint, 0, 2*n-2)
	for i, w := range r.Waypoints {
		w.LimitKmh = limits[i]
		if i == 0 || i == n-1 {
			w.Stop = true
			w.LimitKmh = limits[max(i-1, 0)]
		}
		if i == n-1 {
			w.Tunnel = r.Waypoints[i-1].Tunnel // the turn, then back along the last stretch
		}
		out = append(out, w)
	}
	for i := n - 2; i >= 1; i-- {
		w := r.Waypoints[i]
		w.LimitKmh = limits[i-1]
		w.Tunnel = r.Waypoints[i-1].Tunnel
		out = append(out, w)
	}
	return out
}

const earthRadiusM = 6371008.8

// track is a route prepared for driving: waypoints in a local plane (metres
// east and north of the first waypoint), cumulative distances, and the speed a
// careful driver can hold at each metre of the loop.
type track struct {
	route  *Route
	lat0   float64 // radians, of the projection's origin
	lon0   float64
	x, y   []float64  // metres east, north; len(waypoints)+1, the last = the first
	wps    []Waypoint // the waypoints driven (see Route.driven)
	cum    []float64  // distance from waypoint 0 to waypoint i; cum[n] = length
	length float64
	limit  []float64 // per segment, m/s
	tunnel []bool    // per segment
	stops  []float64 // distances of stop lines, ascending
	always []bool    // per stop: the vehicle always stops there (a turn)
	// profile[i] is the highest speed (m/s) at distance i metres that respects
	// the limits, the bends ahead and a planning deceleration.
	profile []float64
}

// Driving constants, shared by the planner and the vehicle.
const (
	latAccel   = 2.2  // m/s², the lateral acceleration a calm driver accepts in bends
	planDecel  = 1.6  // m/s², braking used to plan for bends and limits ahead
	bendWindow = 12.0 // m, half the window over which curvature is measured
)

func newTrack(r *Route) (*track, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	wps := r.driven()
	n := len(wps)
	t := &track{
		route:  r,
		wps:    wps,
		lat0:   wps[0].Lat * math.Pi / 180,
		lon0:   wps[0].Lon * math.Pi / 180,
		x:      make([]float64, n+1),
		y:      make([]float64, n+1),
		cum:    make([]float64, n+1),
		limit:  make([]float64, n),
		tunnel: make([]bool, n),
	}
	lim := r.DefaultLimitKmh
	for i := 0; i <= n; i++ {
		w := wps[i%n]
		t.x[i], t.y[i] = t.project(w.Lat, w.Lon)
		if i > 0 {
			d := math.Hypot(t.x[i]-t.x[i-1], t.y[i]-t.y[i-1])
			if d < 0.01 {
				return nil, fmt.Errorf("route %q: waypoints %d and %d coincide", r.Name, i-1, i%n)
			}
			t.cum[i] = t.cum[i-1] + d
		}
		if i < n {
			if w.LimitKmh > 0 {
				lim = w.LimitKmh
			}
			t.limit[i] = lim / 3.6
			t.tunnel[i] = w.Tunnel
			if w.Stop {
				t.stops = append(t.stops, t.cum[i])
				t.always = append(t.always, r.OutAndBack && (i == 0 || i == len(r.Waypoints)-1))
			}
		}
	}
	t.length = t.cum[n]
	t.planProfile()
	return t, nil
}

// project maps a position to metres east and north of the first waypoint
// (equirectangular; exact enough over a few kilometres).
func (t *track) project(lat, lon float64) (x, y float64) {
	x = (lon*math.Pi/180 - t.lon0) * math.Cos(t.lat0) * earthRadiusM
	y = (lat*math.Pi/180 - t.lat0) * earthRadiusM
	return x, y
}

// wrap maps a distance along the route into [0, length).
func (t *track) wrap(s float64) float64 {
	s = math.Mod(s, t.length)
	if s < 0 {
		s += t.length
	}
	return s
}

// segment returns the index of the segment holding distance s (in [0, length)).
func (t *track) segment(s float64) int {
	i, _ := slices.BinarySearch(t.cum, s)
	// cum[i] >= s; the segment starts at cum[i-1] unless s sits on a waypoint.
	if i < len(t.cum) && t.cum[i] == s {
		return min(i, len(t.limit)-1)
	}
	return max(i-1, 0)
}

// at returns the position, altitude and heading (degrees true) at distance s,
// and whether s is in a tunnel.
func (t *track) at(s float64) (lat, lon, alt, heading float64, tunnel bool) {
	s = t.wrap(s)
	i := t.segment(s)
	n := len(t.wps)
	a, b := t.wps[i], t.wps[(i+1)%n]
	f := (s - t.cum[i]) / (t.cum[i+1] - t.cum[i])
	lat = a.Lat + (b.Lat-a.Lat)*f
	lon = a.Lon + (b.Lon-a.Lon)*f
	alt = a.AltM + (b.AltM-a.AltM)*f
	heading = t.heading(i)
	return lat, lon, alt, heading, t.tunnel[i]
}

// heading returns the bearing of segment i in degrees true, in [0, 360).
func (t *track) heading(i int) float64 {
	h := math.Atan2(t.x[i+1]-t.x[i], t.y[i+1]-t.y[i]) * 180 / math.Pi
	if h < 0 {
		h += 360
	}
	return h
}

// planProfile fills profile: for each metre, the lower of the speed limit and
// the speed the bend allows, then lowered so that a planning deceleration
// reaches every lower speed ahead in time.
func (t *track) planProfile() {
	n := int(math.Ceil(t.length))
	p := make([]float64, n)
	for i := range p {
		s := float64(i)
		v := t.limit[t.segment(t.wrap(s))]
		h1 := t.heading(t.segment(t.wrap(s - bendWindow)))
		h2 := t.heading(t.segment(t.wrap(s + bendWindow)))
		turn := math.Abs(math.Remainder(h2-h1, 360)) * math.Pi / 180
		if k := turn / (2 * bendWindow); k > 1e-6 {
			v = min(v, math.Sqrt(latAccel/k))
		}
		p[i] = v
	}
	// Backward pass, twice round the loop so that bends just after the seam
	// constrain the metres just before it.
	for pass := 0; pass < 2; pass++ {
		for i := n - 1; i >= 0; i-- {
			next := p[(i+1)%n]
			p[i] = min(p[i], math.Sqrt(next*next+2*planDecel))
		}
	}
	t.profile = p
}

// speedAt returns the planned speed at distance s.
func (t *track) speedAt(s float64) float64 {
	i := int(t.wrap(s))
	if i >= len(t.profile) {
		i = len(t.profile) - 1
	}
	return t.profile[i]
}

// nextStop returns the distance along the route (possibly beyond length, i.e.
// on the next lap) of the first stop line at or after s, whether the vehicle
// always stops there, and false if the route has none.
func (t *track) nextStop(s float64) (float64, bool, bool) {
	if len(t.stops) == 0 {
		return 0, false, false
	}
	lap := math.Floor(s / t.length)
	in := s - lap*t.length
	for i, st := range t.stops {
		if st >= in {
			return lap*t.length + st, t.always[i], true
		}
	}
	return (lap+1)*t.length + t.stops[0], t.always[0], true
}
