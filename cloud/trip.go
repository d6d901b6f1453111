package cloud

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Trip detection: the rules, in the words the operators' documentation
// uses (cloud/README.md, "Trips").
//
// The timeline of a vehicle is cut into intervals between consecutive
// records (positions and ignition events). An interval is active when the
// engine is known to run (the last ignition event before it says on) or
// the vehicle moves across it (see moved); otherwise it is a rest. A trip
// is a run of active intervals in which no rest lasts StopDuration or
// more: a stop of StopDuration with the engine off (or, without ignition
// data, standing still) ends a trip, a shorter one does not. A gap in the
// data while the engine was on is active, so it never ends a trip (the
// agent records through coverage gaps and uplink outages and sends later);
// without ignition data a gap is active when the vehicle is elsewhere
// after it (StationaryRadius). A run whose distance is under MinDistance
// (the engine run without driving, a car moved a few metres) is not a
// trip.

// Trip detection defaults.
const (
	DefaultStopDuration     = 5 * time.Minute
	DefaultMovingSpeed      = 1.0   // m/s, 3.6 km/h
	DefaultStationaryRadius = 100.0 // m
	DefaultMinTripDistance  = 100.0 // m
)

// TripGapInterval is how long an interval between two positions must be
// for it to count as a data gap, across which a vehicle found more than
// StationaryRadius away moved (shorter intervals are judged by speed).
const TripGapInterval = 30 * time.Second

// FuelSampleGap is the longest interval between two OBD samples (or
// between a trip's start or end and the nearest sample) over which fuel
// is integrated; a trip with a longer gap in its fuel data gets no value
// from that PID.
const FuelSampleGap = 60 * time.Second

// Petrol at the stoichiometric air-fuel ratio, for fuel from air flow.
const (
	PetrolAFR          = 14.7  // g of air per g of fuel
	PetrolDensityGPerL = 745.0 // g/L
)

// OBD PIDs (mode << 8 | pid) that fuel is computed from.
const (
	PIDFuelLevel = 0x012F // fuel tank level, %
	PIDMAF       = 0x0110 // mass air flow, g/s
	PIDFuelRate  = 0x015E // engine fuel rate, L/h
)

// FuelPIDs lists the PIDs trip detection reads, in order of preference.
var FuelPIDs = []uint16{PIDFuelRate, PIDMAF, PIDFuelLevel}

// TripConfig holds the thresholds of trip detection. The zero value of a
// field means its default (DefaultTripConfig); TankLitres 0 means the tank
// size is unknown.
type TripConfig struct {
	// StopDuration: a rest at least this long ends a trip.
	StopDuration time.Duration
	// MovingSpeed: at or above it (m/s, GPS speed over ground) the vehicle
	// moves.
	MovingSpeed float64
	// StationaryRadius: across a data gap (TripGapInterval or longer) a
	// vehicle found farther than this (m) moved.
	StationaryRadius float64
	// MinDistance: a run of activity shorter than this (m) is not a trip.
	MinDistance float64
	// TankLitres is the fuel tank's capacity, for fuel from the tank
	// level PID; 0: unknown.
	TankLitres float64
}

// DefaultTripConfig returns the default thresholds.
func DefaultTripConfig() TripConfig {
	return TripConfig{StopDuration: DefaultStopDuration, MovingSpeed: DefaultMovingSpeed,
		StationaryRadius: DefaultStationaryRadius, MinDistance: DefaultMinTripDistance}
}

// withDefaults fills the zero fields.
func (c TripConfig) withDefaults() TripConfig {
	d := DefaultTripConfig()
	if c.StopDuration <= 0 {
		c.StopDuration = d.StopDuration
	}
	if c.MovingSpeed <= 0 {
		c.MovingSpeed = d.MovingSpeed
	}
	if c.StationaryRadius <= 0 {
		c.StationaryRadius = d.StationaryRadius
	}
	if c.MinDistance <= 0 {
		c.MinDistance = d.MinDistance
	}
	return c
}

// Validate returns an EINVALID error naming the first unusable threshold.
func (c TripConfig) Validate() error {
	switch {
	case c.StopDuration < 0:
		return Errorf(EINVALID, "trip stop duration %v is negative", c.StopDuration)
	case c.MovingSpeed < 0 || math.IsNaN(c.MovingSpeed) || c.MovingSpeed > 50:
		return Errorf(EINVALID, "trip moving speed %g m/s outside 0 to 50", c.MovingSpeed)
	case c.StationaryRadius < 0 || math.IsNaN(c.StationaryRadius) || c.StationaryRadius > 100_000:
		return Errorf(EINVALID, "trip stationary radius %g m outside 0 to 100 km", c.StationaryRadius)
	case c.MinDistance < 0 || math.IsNaN(c.MinDistance) || c.MinDistance > 1_000_000:
		return Errorf(EINVALID, "trip minimum distance %g m outside 0 to 1000 km", c.MinDistance)
	case c.TankLitres < 0 || math.IsNaN(c.TankLitres) || c.TankLitres > 10_000:
		return Errorf(EINVALID, "fuel tank size %g L outside 0 to 10000", c.TankLitres)
	}
	return nil
}

// IgnitionEvent is an ignition on or off event of a vehicle's agent.
type IgnitionEvent struct {
	Time time.Time
	On   bool
}

// TripInput is what trip detection reads for one vehicle over a window:
// positions, ignition events and OBD samples of the fuel PIDs. To judge
// the window's first interval it also holds the last position and the
// last ignition event before the window, and to know whether data follows
// it, the first position after it.
type TripInput struct {
	VehicleID string
	Positions []*Position
	Ignition  []IgnitionEvent
	OBD       []*OBDSample
}

// Place is where a trip starts or ends: the nearest fix, nil when the
// vehicle had none.
type Place struct {
	Lat, Lon float64
}

// FuelSource says how a trip's fuel was computed.
type FuelSource string

// Fuel sources, in order of preference.
const (
	FuelFromRate  FuelSource = "fuel_rate"  // PID 5E integrated over time
	FuelFromMAF   FuelSource = "maf"        // PID 10 integrated, petrol at stoichiometry
	FuelFromLevel FuelSource = "tank_level" // PID 2F at start minus at end, times the tank size
)

// MatchStatus says where a trip is in map matching.
type MatchStatus string

// Match statuses.
const (
	// MatchPending: not matched yet (an open trip waits until it ends).
	MatchPending MatchStatus = "pending"
	// MatchMatched: the matched geometry, distance and confidence are set.
	MatchMatched MatchStatus = "matched"
	// MatchUnmatched: the map matcher was unavailable; the raw track
	// stands and matching is tried again later.
	MatchUnmatched MatchStatus = "unmatched"
	// MatchFailed: the map matcher could not match the track (no road
	// near it); the raw track stands for good.
	MatchFailed MatchStatus = "failed"
)

// Trip is one trip of a vehicle.
type Trip struct {
	ID int64 // given by the store; 0 before it is stored
	// Revision is the store's count of the trip's changes: a match result
	// is stored only for the revision it was computed from.
	Revision  int64
	VehicleID string
	Start     time.Time
	End       time.Time
	// StartPlace and EndPlace are the nearest fixes; nil without any.
	StartPlace, EndPlace *Place
	// Open: the data does not show a rest of StopDuration after End yet;
	// the trip may go on (or its data is still on its way).
	Open      bool
	DistanceM float64 // along the fixes, while moving
	Driving   time.Duration
	Idle      time.Duration // standing with the engine on or unknown
	Stopped   time.Duration // standing with the engine off (stops shorter than StopDuration)
	MaxSpeed  float64       // m/s
	AvgSpeed  float64       // m/s, DistanceM over Driving; 0 without driving
	Fixes     int           // positions from Start to End
	// FuelL is the fuel used, nil when the OBD data does not allow it;
	// FuelSource says how it was computed.
	FuelL      *float64
	FuelSource FuelSource
	Match      TripMatch
}

// Duration returns End − Start: Driving + Idle + Stopped.
func (t *Trip) Duration() time.Duration { return t.End.Sub(t.Start) }

// TripMatch is a trip's map matching result.
type TripMatch struct {
	Status     MatchStatus
	DistanceM  float64        // along the matched roads
	Confidence float64        // 0..1, weighted by distance over the matchings
	Geometry   [][][2]float64 // lines of [lon, lat], a GeoJSON MultiLineString's coordinates
	Error      string         // why the last attempt failed
	Attempts   int
}

// SameExtent reports whether t and u describe the same trip with the same
// figures (everything detection computes; not the id or the match).
func (t *Trip) SameExtent(u *Trip) bool {
	eqPlace := func(a, b *Place) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	eqFuel := (t.FuelL == nil) == (u.FuelL == nil) && (t.FuelL == nil || *t.FuelL == *u.FuelL)
	return t.VehicleID == u.VehicleID && t.Start.Equal(u.Start) && t.End.Equal(u.End) && t.Open == u.Open &&
		eqPlace(t.StartPlace, u.StartPlace) && eqPlace(t.EndPlace, u.EndPlace) && t.DistanceM == u.DistanceM &&
		t.Driving == u.Driving && t.Idle == u.Idle && t.Stopped == u.Stopped && t.MaxSpeed == u.MaxSpeed &&
		t.AvgSpeed == u.AvgSpeed && t.Fixes == u.Fixes && eqFuel && t.FuelSource == u.FuelSource
}

// Span is a run of activity, kept as a trip or not.
type Span struct {
	Start, End time.Time
}

// TripDetection is the result of DetectTrips.
type TripDetection struct {
	// Trips are the runs of activity long enough to be trips, in time
	// order.
	Trips []*Trip
	// Spans are all runs of activity, trips or not, in time order.
	Spans []Span
	// First and Last are the times of the first and last record read.
	First, Last time.Time
}

// point is a record on the timeline: a position or an ignition event.
type point struct {
	t   time.Time
	pos *Position
	ign int8 // +1 on, -1 off, 0 for a position
}

const (
	engineUnknown int8 = 0
	engineOn      int8 = 1
	engineOff     int8 = -1
)

// DetectTrips finds the trips in one vehicle's input with cfg's
// thresholds (zero fields: the defaults). It is a pure function: the same
// input gives the same trips, whatever order its records come in.
func DetectTrips(in *TripInput, cfg TripConfig) *TripDetection {
	cfg = cfg.withDefaults()
	d := &detector{cfg: cfg, in: in}
	d.prepare()
	return d.run()
}

type detector struct {
	cfg     TripConfig
	in      *TripInput
	pos     []*Position
	pts     []point
	prevPos []int // for each point, the index in pos of the last position at or before it; -1 none
	nextPos []int // for each point, the index in pos of the first position after it; -1 none
	obd     map[uint16][]*OBDSample
}

// prepare sorts the records into one timeline. At equal times an ignition
// event comes before a position; positions at equal times go by stream and
// seq, ignition events keep their order.
func (d *detector) prepare() {
	d.pos = slices.Clone(d.in.Positions)
	slices.SortStableFunc(d.pos, func(a, b *Position) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Seq, b.Seq))
	})
	ign := slices.Clone(d.in.Ignition)
	slices.SortStableFunc(ign, func(a, b IgnitionEvent) int { return a.Time.Compare(b.Time) })
	d.pts = make([]point, 0, len(d.pos)+len(ign))
	i, j := 0, 0
	for i < len(d.pos) || j < len(ign) {
		if j < len(ign) && (i == len(d.pos) || !ign[j].Time.After(d.pos[i].Time)) {
			p := point{t: ign[j].Time, ign: engineOff}
			if ign[j].On {
				p.ign = engineOn
			}
			d.pts = append(d.pts, p)
			j++
			continue
		}
		d.pts = append(d.pts, point{t: d.pos[i].Time, pos: d.pos[i]})
		i++
	}
	d.prevPos, d.nextPos = make([]int, len(d.pts)), make([]int, len(d.pts))
	last := -1
	for k, p := range d.pts {
		if p.pos != nil {
			last++
		}
		d.prevPos[k] = last
	}
	next := len(d.pos)
	for k := len(d.pts) - 1; k >= 0; k-- {
		d.nextPos[k] = next
		if d.pts[k].pos != nil {
			next--
		}
	}
	for k := range d.nextPos {
		if d.nextPos[k] >= len(d.pos) {
			d.nextPos[k] = -1
		}
	}
	d.obd = map[uint16][]*OBDSample{}
	for _, s := range d.in.OBD {
		if slices.Contains(FuelPIDs, s.PID) {
			d.obd[s.PID] = append(d.obd[s.PID], s)
		}
	}
	for pid := range d.obd {
		slices.SortStableFunc(d.obd[pid], func(a, b *OBDSample) int {
			return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Seq, b.Seq))
		})
	}
}

// moved reports whether the vehicle moved between positions p and q (p
// before q). Across a data gap (TripGapInterval or longer) it did when it
// is found more than StationaryRadius away. Otherwise it did when either
// fix has a GPS speed of at least MovingSpeed or, without any speed, when
// the distance over the time says so.
func (d *detector) moved(p, q *Position) bool {
	dt := q.Time.Sub(p.Time)
	if dt >= TripGapInterval {
		return DistanceM(p.Lat, p.Lon, q.Lat, q.Lon) > d.cfg.StationaryRadius
	}
	v := d.cfg.MovingSpeed
	if (p.SpeedMPS != nil && *p.SpeedMPS >= v) || (q.SpeedMPS != nil && *q.SpeedMPS >= v) {
		return true
	}
	return p.SpeedMPS == nil && q.SpeedMPS == nil && dt > 0 && DistanceM(p.Lat, p.Lon, q.Lat, q.Lon)/dt.Seconds() >= v
}

// group is a run of activity being built.
type group struct {
	start, end             time.Time
	driving, idle, stopped time.Duration
	restIdle, restStopped  time.Duration // of the rest since end, added if the run goes on
}

func (d *detector) run() *TripDetection {
	res := &TripDetection{}
	if len(d.pts) == 0 {
		return res
	}
	res.First, res.Last = d.pts[0].t, d.pts[len(d.pts)-1].t
	var groups []*group
	var cur *group
	engine := engineUnknown
	for k := 0; k < len(d.pts)-1; k++ {
		if d.pts[k].ign != 0 {
			engine = d.pts[k].ign
		}
		dt := d.pts[k+1].t.Sub(d.pts[k].t)
		if dt <= 0 {
			continue
		}
		moving := false
		if pi, qi := d.prevPos[k], d.nextPos[k]; pi >= 0 && qi >= 0 {
			moving = d.moved(d.pos[pi], d.pos[qi])
		}
		if !moving && engine != engineOn {
			if cur != nil {
				if engine == engineOff {
					cur.restStopped += dt
				} else {
					cur.restIdle += dt
				}
			}
			continue
		}
		if cur != nil && d.pts[k].t.Sub(cur.end) >= d.cfg.StopDuration {
			cur = nil
		}
		if cur == nil {
			cur = &group{start: d.pts[k].t}
			groups = append(groups, cur)
		}
		cur.idle += cur.restIdle
		cur.stopped += cur.restStopped
		cur.restIdle, cur.restStopped = 0, 0
		if moving {
			cur.driving += dt
		} else {
			cur.idle += dt // engine on, standing
		}
		cur.end = d.pts[k+1].t
	}
	for i, g := range groups {
		res.Spans = append(res.Spans, Span{g.start, g.end})
		t := d.trip(g)
		t.Open = i == len(groups)-1 && res.Last.Sub(g.end) < d.cfg.StopDuration
		if t.DistanceM >= d.cfg.MinDistance {
			res.Trips = append(res.Trips, t)
		}
	}
	return res
}

// trip computes the figures of a run of activity.
func (d *detector) trip(g *group) *Trip {
	t := &Trip{VehicleID: d.in.VehicleID, Start: g.start, End: g.end, Driving: g.driving, Idle: g.idle,
		Stopped: g.stopped, Match: TripMatch{Status: MatchPending}}
	// Positions from Start to End: pos[lo:hi].
	lo, _ := slices.BinarySearchFunc(d.pos, g.start, func(p *Position, t time.Time) int { return p.Time.Compare(t) })
	hi, found := slices.BinarySearchFunc(d.pos, g.end, func(p *Position, t time.Time) int { return p.Time.Compare(t) })
	for found && hi < len(d.pos) && !d.pos[hi].Time.After(g.end) {
		hi++
	}
	t.Fixes = hi - lo
	t.StartPlace = d.place(g.start, lo)
	t.EndPlace = d.place(g.end, hi)
	derived := 0.0
	for k := lo; k < hi; k++ {
		if s := d.pos[k].SpeedMPS; s != nil && *s > t.MaxSpeed {
			t.MaxSpeed = *s
		}
		if k+1 < hi && d.moved(d.pos[k], d.pos[k+1]) {
			dist := DistanceM(d.pos[k].Lat, d.pos[k].Lon, d.pos[k+1].Lat, d.pos[k+1].Lon)
			t.DistanceM += dist
			if dt := d.pos[k+1].Time.Sub(d.pos[k].Time); dt > 0 && dt < TripGapInterval {
				derived = max(derived, dist/dt.Seconds())
			}
		}
	}
	if t.MaxSpeed == 0 {
		t.MaxSpeed = derived
	}
	if t.Driving > 0 {
		t.AvgSpeed = t.DistanceM / t.Driving.Seconds()
	}
	t.FuelL, t.FuelSource = d.fuel(g.start, g.end)
	return t
}

// place returns the last position at or before at, else the first after
// it; the search starts at index i, which is at or before the answer's
// successor.
func (d *detector) place(at time.Time, i int) *Place {
	k := i
	for k < len(d.pos) && !d.pos[k].Time.After(at) {
		k++
	}
	switch {
	case k > 0:
		return &Place{d.pos[k-1].Lat, d.pos[k-1].Lon}
	case k < len(d.pos):
		return &Place{d.pos[k].Lat, d.pos[k].Lon}
	}
	return nil
}

// fuel computes the fuel used from start to end by the first rule the
// samples allow: the fuel rate (PID 5E, L/h) integrated; the air flow
// (PID 10, g/s) integrated and turned into petrol at the stoichiometric
// ratio; the tank level (PID 2F, %) at the start minus at the end, times
// the tank size. An integral needs samples no more than FuelSampleGap
// apart from start to end; the tank level needs a sample within
// FuelSampleGap of each end and TankLitres, and a level that did not rise
// (a refuel). Otherwise: nil.
func (d *detector) fuel(start, end time.Time) (*float64, FuelSource) {
	if l, ok := integrate(d.obd[PIDFuelRate], start, end); ok {
		l /= 3600 // L/h × s
		return &l, FuelFromRate
	}
	if g, ok := integrate(d.obd[PIDMAF], start, end); ok {
		l := g / PetrolAFR / PetrolDensityGPerL
		return &l, FuelFromMAF
	}
	if d.cfg.TankLitres > 0 {
		if l, ok := levelDrop(d.obd[PIDFuelLevel], start, end); ok {
			l *= d.cfg.TankLitres / 100
			return &l, FuelFromLevel
		}
	}
	return nil, ""
}

// integrate returns the integral over [start, end] (value × seconds) of
// the samples, linear between them and held flat to the ends, and whether
// they cover the span with no gap over FuelSampleGap.
func integrate(ss []*OBDSample, start, end time.Time) (float64, bool) {
	var in []*OBDSample
	for _, s := range ss {
		if !s.Time.Before(start) && !s.Time.After(end) {
			in = append(in, s)
		}
	}
	if len(in) == 0 || in[0].Time.Sub(start) > FuelSampleGap || end.Sub(in[len(in)-1].Time) > FuelSampleGap {
		return 0, false
	}
	sum := in[0].Value * in[0].Time.Sub(start).Seconds()
	for k := 1; k < len(in); k++ {
		dt := in[k].Time.Sub(in[k-1].Time)
		if dt > FuelSampleGap {
			return 0, false
		}
		sum += (in[k].Value + in[k-1].Value) / 2 * dt.Seconds()
	}
	sum += in[len(in)-1].Value * end.Sub(in[len(in)-1].Time).Seconds()
	return sum, true
}

// levelDrop returns the tank level (%) near start minus near end: each the
// mean of the samples within FuelSampleGap of it (levels slosh), and false
// when either has none or the level rose.
func levelDrop(ss []*OBDSample, start, end time.Time) (float64, bool) {
	mean := func(at time.Time) (float64, bool) {
		sum, n := 0.0, 0
		for _, s := range ss {
			if d := s.Time.Sub(at); d >= -FuelSampleGap && d <= FuelSampleGap {
				sum += s.Value
				n++
			}
		}
		return sum / float64(max(n, 1)), n > 0
	}
	a, okA := mean(start)
	b, okB := mean(end)
	if !okA || !okB || b > a {
		return 0, false
	}
	return a - b, true
}

// DistanceM returns the great-circle distance in metres between two
// WGS-84 points (haversine, mean Earth radius).
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// TripChangeKind says what a recompute did to a trip.
type TripChangeKind string

// Trip changes.
const (
	TripCreated TripChangeKind = "created"
	TripUpdated TripChangeKind = "updated"
	TripDeleted TripChangeKind = "deleted"
)

// TripChange is one trip a recompute created, updated or deleted.
type TripChange struct {
	Kind TripChangeKind
	Trip *Trip // for a deletion, the trip as it was
}

// TripWindowSource is what RecomputeTrips reads: the records of a
// vehicle and its stored trips. The adapter serves both from one
// transaction.
type TripWindowSource interface {
	// TripInput returns the vehicle's records with from ≤ time < to, the
	// last position and ignition event before from and the first position
	// at or after to (see TripInput).
	TripInput(ctx context.Context, vehicleID string, from, to time.Time) (*TripInput, error)
	// StoredTrips returns the vehicle's stored trips with Start ≤ to and
	// End ≥ from, and its open one if it starts by to.
	StoredTrips(ctx context.Context, vehicleID string, from, to time.Time) ([]*Trip, error)
}

// TripWindow is a window over which trips were recomputed: the stored
// trips overlapping [From, To] are to be replaced by Trips.
type TripWindow struct {
	From, To time.Time
	Trips    []*Trip
}

// maxWindowRounds bounds how often RecomputeTrips widens its window.
const maxWindowRounds = 64

// RecomputeTrips recomputes a vehicle's trips after its records from lo
// to hi changed (late history, a backlog, live data). It widens [lo, hi]
// until both edges fall in rests of StopDuration, in the new data and in
// the stored trips: then what lies outside cannot change, and the trips
// detected inside replace the stored ones overlapping the window. The
// result is the same as a detection over all the vehicle's data.
func RecomputeTrips(ctx context.Context, src TripWindowSource, cfg TripConfig, vehicleID string, lo, hi time.Time) (*TripWindow, error) {
	cfg = cfg.withDefaults()
	s := cfg.StopDuration
	from, to := lo.Add(-s), hi.Add(s)
	for range maxWindowRounds {
		in, err := src.TripInput(ctx, vehicleID, from, to)
		if err != nil {
			return nil, err
		}
		det := DetectTrips(in, cfg)
		stored, err := src.StoredTrips(ctx, vehicleID, from, to)
		if err != nil {
			return nil, err
		}
		nFrom, nTo := from, to
		width := to.Sub(from)
		headEnd, tailStart := from.Add(s), to.Add(-s)
		// Without records before from (or after to) nothing outside can
		// join a run inside: the edge needs no rest.
		dataBefore := det.First.Before(from)
		dataAfter := !det.Last.Before(to)
		for _, sp := range det.Spans {
			if dataBefore && sp.Start.Before(headEnd) && !sp.End.Before(from) {
				nFrom = minTime(nFrom, sp.Start.Add(-s))
				if !sp.Start.After(det.First) { // the run may begin before the data read
					nFrom = minTime(nFrom, from.Add(-width))
				}
			}
			if dataAfter && sp.End.After(tailStart) && !sp.Start.After(to) {
				nTo = maxTime(nTo, sp.End.Add(s))
				if !sp.End.Before(det.Last) {
					nTo = maxTime(nTo, to.Add(width))
				}
			}
		}
		for _, t := range stored {
			// An open trip before the window may close (or go on) with
			// the new records: it is recomputed too.
			if t.Start.Before(headEnd) {
				nFrom = minTime(nFrom, t.Start.Add(-s))
			}
			if t.End.After(tailStart) {
				nTo = maxTime(nTo, t.End.Add(s))
			}
		}
		if nFrom.Equal(from) && nTo.Equal(to) {
			w := &TripWindow{From: from, To: to}
			for _, t := range det.Trips {
				if !t.Start.After(to) && !t.End.Before(from) {
					w.Trips = append(w.Trips, t)
				}
			}
			return w, nil
		}
		from, to = nFrom, nTo
	}
	return nil, Errorf(EINTERNAL, "recompute trips of %s: the window did not settle in %d rounds (%v to %v)", vehicleID, maxWindowRounds, from, to)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// DiffTrips pairs the stored trips of a window with the recomputed ones
// and returns the changes that turn the first into the second: a
// recomputed trip takes the id of the first stored trip it overlaps that
// no earlier one took (updated, or left alone when SameExtent), the
// others are created; stored trips left over are deleted.
func DiffTrips(stored, recomputed []*Trip) []TripChange {
	var out []TripChange
	used := make([]bool, len(stored))
	for _, t := range recomputed {
		for i, o := range stored {
			if used[i] || t.Start.After(o.End) || t.End.Before(o.Start) {
				continue
			}
			used[i] = true
			t.ID = o.ID
			if t.SameExtent(o) {
				t.Match = o.Match
			} else {
				out = append(out, TripChange{Kind: TripUpdated, Trip: t})
			}
			break
		}
		if t.ID == 0 {
			out = append(out, TripChange{Kind: TripCreated, Trip: t})
		}
	}
	for i, o := range stored {
		if !used[i] {
			out = append(out, TripChange{Kind: TripDeleted, Trip: o})
		}
	}
	return out
}

// TripFilter selects a vehicle's trips overlapping From ≤ time < To,
// ordered by (start, id), after After when set, at most Limit of them.
type TripFilter struct {
	VehicleID string
	From, To  time.Time
	After     *Cursor // Time: the start; Seq: the id
	Limit     int
}

// Cursor returns the keyset position just after t.
func (t *Trip) Cursor() Cursor { return Cursor{Time: t.Start, Seq: uint64(t.ID)} }

// TripService reads stored trips.
type TripService interface {
	// FindTrips returns one page of trips and the cursor of the next page,
	// nil on the last. ENOTFOUND for an unknown vehicle.
	FindTrips(ctx context.Context, f TripFilter) ([]*Trip, *Cursor, error)
	// FindTrip returns one trip of a vehicle with its matched geometry;
	// ENOTFOUND when there is none with that id.
	FindTrip(ctx context.Context, vehicleID string, id int64) (*Trip, error)
	// TripTrack returns a vehicle's positions from from to to, both
	// included, in time order: a trip's raw track.
	TripTrack(ctx context.Context, vehicleID string, from, to time.Time) ([]*Position, error)
}

// String describes a trip for logs and test failures.
func (t *Trip) String() string {
	return fmt.Sprintf("trip %s %s–%s %.0f m open=%v", t.VehicleID, t.Start.UTC().Format(time.RFC3339), t.End.UTC().Format(time.RFC3339), t.DistanceM, t.Open)
}
