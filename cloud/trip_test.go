package cloud_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// drive writes a vehicle's records as a script: fixes at 1 Hz along a
// parallel, ignition events, fuel samples.
type drive struct {
	t        time.Time
	lat, lon float64
	seq      uint64
	noSpeed  bool    // fixes without GPS speed
	fuelRate float64 // L/h sampled every second while > 0
	in       cloud.TripInput
}

func newDrive() *drive {
	return &drive{t: t0, lat: 43.7384, lon: 7.4246, in: cloud.TripInput{VehicleID: "veh-1"}}
}

// metresPerDegLon at the drive's latitude.
func (d *drive) metresPerDegLon() float64 {
	return cloud.DistanceM(d.lat, 0, d.lat, 1)
}

func (d *drive) fix(speed float64) {
	d.seq++
	p := &cloud.Position{VehicleID: "veh-1", StreamID: 1, Seq: d.seq, Time: d.t, Lat: d.lat, Lon: d.lon}
	if !d.noSpeed {
		p.SpeedMPS = &speed
	}
	d.in.Positions = append(d.in.Positions, p)
	if d.fuelRate > 0 {
		d.seq++
		d.in.OBD = append(d.in.OBD, &cloud.OBDSample{VehicleID: "veh-1", StreamID: 1, Seq: d.seq, Time: d.t, PID: cloud.PIDFuelRate, Value: d.fuelRate})
	}
}

// park stands for a second and switches the engine off.
func (d *drive) park() *drive { return d.stand(time.Second).ignition(false) }

func (d *drive) ignition(on bool) *drive {
	d.in.Ignition = append(d.in.Ignition, cloud.IgnitionEvent{Time: d.t, On: on})
	return d
}

// move drives east at speed (m/s) for dur, a fix every second.
func (d *drive) move(dur time.Duration, speed float64) *drive {
	for range int(dur / time.Second) {
		d.t = d.t.Add(time.Second)
		d.lon += speed / d.metresPerDegLon()
		d.fix(speed)
	}
	return d
}

// stand stays put for dur, a fix every second.
func (d *drive) stand(dur time.Duration) *drive { return d.move(dur, 0) }

// gap lets dur pass without records; the vehicle is metres east after it.
func (d *drive) gap(dur time.Duration, metres float64) *drive {
	d.t = d.t.Add(dur)
	d.lon += metres / d.metresPerDegLon()
	return d
}

func (d *drive) sample(pid uint16, v float64) *drive {
	d.seq++
	d.in.OBD = append(d.in.OBD, &cloud.OBDSample{VehicleID: "veh-1", StreamID: 1, Seq: d.seq, Time: d.t, PID: pid, Value: v})
	return d
}

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// want is what a test expects of a trip; zero fields are not checked but
// Start, End and Open.
type want struct {
	start, end    time.Time
	open          bool
	distance      float64 // ±0.5%
	driving, idle time.Duration
	stopped       time.Duration
	fuel          float64 // with source
	source        cloud.FuelSource
}

func TestDetectTrips(t *testing.T) {
	const min = time.Minute
	tests := []struct {
		name string
		cfg  cloud.TripConfig
		data func() *drive
		want []want
	}{
		{"one drive with ignition", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).stand(10*time.Second).move(10*min, 10).stand(10 * time.Second).ignition(false).stand(10 * min)
		}, []want{{start: at(0), end: at(620), distance: 6000, driving: 601 * time.Second, idle: 19 * time.Second}}},
		{"a 3 min stop with the engine off stays in the trip", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).stand(5*time.Second).ignition(false).stand(3*min).ignition(true).move(5*min, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(786), distance: 6000, stopped: 3 * min, idle: 5 * time.Second}}},
		{"a 6 min stop with the engine off ends it", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).park().stand(6*min).ignition(true).move(5*min, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(301), distance: 3000}, {start: at(661), end: at(962), distance: 3000}}},
		{"StopDuration 10 min keeps a 6 min stop in", cloud.TripConfig{StopDuration: 10 * min}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).park().stand(6*min).ignition(true).move(5*min, 10).park().stand(11 * min)
		}, []want{{start: at(0), end: at(962), distance: 6000, stopped: 6 * min}}},
		{"a GPS gap with the engine on does not end it", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).gap(20*min, 12000).move(5*min, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(1801), distance: 18000}}},
		{"a long standstill with the engine on is idling", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).gap(30*min, 0).stand(time.Second).move(5*min, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(2402), distance: 6000, idle: 30*min + 2*time.Second, driving: 10 * min}}},
		{"without ignition: a 3 min standstill stays in", cloud.TripConfig{}, func() *drive {
			return newDrive().stand(10*time.Second).move(5*min, 10).stand(3*min).move(5*min, 10).stand(10 * min)
		}, []want{{start: at(10), end: at(791), distance: 6000, idle: 179 * time.Second}}},
		{"without ignition: a 6 min standstill ends it", cloud.TripConfig{}, func() *drive {
			return newDrive().stand(10*time.Second).move(5*min, 10).stand(6*min).move(5*min, 10).stand(10 * min)
		}, []want{{start: at(10), end: at(311), distance: 3000}, {start: at(670), end: at(971), distance: 3000}}},
		{"without ignition: moved across a gap, one trip", cloud.TripConfig{}, func() *drive {
			return newDrive().stand(10*time.Second).move(5*min, 10).stand(5*time.Second).gap(time.Hour, 5000).stand(5*time.Second).move(5*min, 10).stand(10 * min)
		}, []want{{start: at(10), end: at(3600 + 621), distance: 11000}}},
		{"without ignition: parked across a gap, two trips", cloud.TripConfig{}, func() *drive {
			return newDrive().stand(10*time.Second).move(5*min, 10).stand(5*time.Second).gap(time.Hour, 20).stand(5*time.Second).move(5*min, 10).stand(10 * min)
		}, []want{{start: at(10), end: at(311), distance: 3000}, {start: at(3600 + 320), end: at(3600 + 621), distance: 3000}}},
		{"without speed: moving judged by distance over time", cloud.TripConfig{}, func() *drive {
			d := newDrive()
			d.noSpeed = true
			return d.stand(10*time.Second).move(5*min, 10).stand(10 * min)
		}, []want{{start: at(10), end: at(310), distance: 3000}}},
		{"the engine run without driving is no trip", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).stand(10 * min).ignition(false).stand(10 * min)
		}, nil},
		{"a small MinDistance keeps a short one", cloud.TripConfig{MinDistance: 1}, func() *drive {
			return newDrive().ignition(true).move(2*time.Second, 1.5).stand(10 * min).ignition(false).stand(10 * min)
		}, []want{{start: at(0), end: at(602), distance: 1.5, driving: 2 * time.Second}}},
		{"towed with the ignition off: moving is a trip", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(false).stand(10*time.Second).move(5*min, 5).stand(10 * min)
		}, []want{{start: at(10), end: at(311), distance: 1500}}},
		{"data ends while driving: open", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10)
		}, []want{{start: at(0), end: at(300), open: true, distance: 3000}}},
		{"data ends 2 min after ignition off: open", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).park().stand(2 * min)
		}, []want{{start: at(0), end: at(301), open: true}}},
		{"data ends 5 min after ignition off: closed", cloud.TripConfig{}, func() *drive {
			return newDrive().ignition(true).move(5*min, 10).park().stand(5 * min)
		}, []want{{start: at(0), end: at(301)}}},
		{"fuel from the fuel rate", cloud.TripConfig{}, func() *drive {
			d := newDrive()
			d.fuelRate = 3.6
			d.ignition(true).move(10*min, 10)
			d.fuelRate = 0
			return d.park().stand(10 * min)
		}, []want{{start: at(0), end: at(601), fuel: 0.601, source: cloud.FuelFromRate}}},
		{"fuel from the air flow", cloud.TripConfig{}, func() *drive {
			d := newDrive().ignition(true)
			for range 20 {
				d.sample(cloud.PIDMAF, 10).move(30*time.Second, 10)
			}
			return d.sample(cloud.PIDMAF, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(601), fuel: 6010 / cloud.PetrolAFR / cloud.PetrolDensityGPerL, source: cloud.FuelFromMAF}}},
		{"air flow with a gap of 2 min: none", cloud.TripConfig{}, func() *drive {
			d := newDrive().ignition(true)
			for range 5 {
				d.sample(cloud.PIDMAF, 10).move(2*min, 10)
			}
			return d.sample(cloud.PIDMAF, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(601)}}},
		{"the fuel rate wins over the air flow", cloud.TripConfig{}, func() *drive {
			d := newDrive().sample(cloud.PIDMAF, 10)
			d.fuelRate = 3.6
			d.ignition(true).move(10*min, 10)
			d.fuelRate = 0
			return d.sample(cloud.PIDMAF, 10).park().stand(10 * min)
		}, []want{{start: at(0), end: at(601), fuel: 0.601, source: cloud.FuelFromRate}}},
		{"fuel from the tank level", cloud.TripConfig{TankLitres: 45}, func() *drive {
			return newDrive().sample(cloud.PIDFuelLevel, 50).ignition(true).move(10*min, 10).park().sample(cloud.PIDFuelLevel, 49).stand(10 * min)
		}, []want{{start: at(0), end: at(601), fuel: 0.45, source: cloud.FuelFromLevel}}},
		{"tank level without the tank size: none", cloud.TripConfig{}, func() *drive {
			return newDrive().sample(cloud.PIDFuelLevel, 50).ignition(true).move(10*min, 10).park().sample(cloud.PIDFuelLevel, 49).stand(10 * min)
		}, []want{{start: at(0), end: at(601)}}},
		{"tank level that rose (a refuel): none", cloud.TripConfig{TankLitres: 45}, func() *drive {
			return newDrive().sample(cloud.PIDFuelLevel, 20).ignition(true).move(10*min, 10).park().sample(cloud.PIDFuelLevel, 80).stand(10 * min)
		}, []want{{start: at(0), end: at(601)}}},
		{"nothing", cloud.TripConfig{}, func() *drive { return newDrive() }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.data()
			got := cloud.DetectTrips(&d.in, tt.cfg).Trips
			if len(got) != len(tt.want) {
				t.Fatalf("%d trips, want %d:\n%s", len(got), len(tt.want), describe(got))
			}
			for i, w := range tt.want {
				checkTrip(t, got[i], w)
			}
		})
	}
}

func checkTrip(t *testing.T, g *cloud.Trip, w want) {
	t.Helper()
	if !g.Start.Equal(w.start) || !g.End.Equal(w.end) || g.Open != w.open {
		t.Errorf("%v: want start %v end %v open %v", g, w.start.Sub(t0), w.end.Sub(t0), w.open)
	}
	if got := g.Driving + g.Idle + g.Stopped; got != g.Duration() {
		t.Errorf("%v: driving %v + idle %v + stopped %v = %v, not the duration %v", g, g.Driving, g.Idle, g.Stopped, got, g.Duration())
	}
	if w.distance > 0 && math.Abs(g.DistanceM-w.distance) > w.distance*0.005 {
		t.Errorf("%v: distance %.1f m, want %.0f", g, g.DistanceM, w.distance)
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{{"driving", g.Driving, w.driving}, {"idle", g.Idle, w.idle}, {"stopped", g.Stopped, w.stopped}} {
		if c.want != 0 && c.got != c.want {
			t.Errorf("%v: %s %v, want %v", g, c.name, c.got, c.want)
		}
	}
	switch {
	case w.source == "" && g.FuelL != nil:
		t.Errorf("%v: fuel %.3f L from %s, want none", g, *g.FuelL, g.FuelSource)
	case w.source != "" && g.FuelL == nil:
		t.Errorf("%v: no fuel, want %.4f L from %s", g, w.fuel, w.source)
	case w.source != "" && (g.FuelSource != w.source || math.Abs(*g.FuelL-w.fuel) > 1e-9):
		t.Errorf("%v: fuel %.6f L from %q, want %.6f L from %s", g, *g.FuelL, g.FuelSource, w.fuel, w.source)
	}
	if g.Fixes > 0 && (g.StartPlace == nil || g.EndPlace == nil) {
		t.Errorf("%v: %d fixes but no start or end place", g, g.Fixes)
	}
	if g.Driving > 0 && math.Abs(g.AvgSpeed-g.DistanceM/g.Driving.Seconds()) > 1e-9 {
		t.Errorf("%v: average speed %.3f", g, g.AvgSpeed)
	}
}

func describe(ts []*cloud.Trip) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %v (+%v to +%v)\n", t, t.Start.Sub(t0), t.End.Sub(t0))
	}
	return b.String()
}

func TestDetectTripsOrderDoesNotMatter(t *testing.T) {
	d := newDrive().ignition(true).move(5*time.Minute, 10).ignition(false).stand(6*time.Minute).ignition(true).move(5*time.Minute, 10).ignition(false).stand(10 * time.Minute)
	want := cloud.DetectTrips(&d.in, cloud.TripConfig{}).Trips
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(d.in.Positions), func(i, j int) { d.in.Positions[i], d.in.Positions[j] = d.in.Positions[j], d.in.Positions[i] })
	rng.Shuffle(len(d.in.Ignition), func(i, j int) { d.in.Ignition[i], d.in.Ignition[j] = d.in.Ignition[j], d.in.Ignition[i] })
	got := cloud.DetectTrips(&d.in, cloud.TripConfig{}).Trips
	sameTrips(t, got, want)
}

func sameTrips(t *testing.T, got, want []*cloud.Trip) {
	t.Helper()
	if len(got) != len(want) || !slices.EqualFunc(got, want, (*cloud.Trip).SameExtent) {
		t.Fatalf("got\n%swant\n%s", describe(got), describe(want))
	}
}

// day is a seeded day of a vehicle: trips with and without ignition data,
// short and long stops, GPS gaps, idling.
func day(seed uint64) *drive {
	rng := rand.New(rand.NewPCG(seed, 99))
	d := newDrive()
	d.stand(time.Minute)
	for d.t.Before(t0.Add(20 * time.Hour)) {
		ign := rng.IntN(3) > 0
		if ign {
			d.ignition(true)
		}
		d.stand(time.Duration(2+rng.IntN(20)) * time.Second)
		for range 1 + rng.IntN(4) {
			d.move(time.Duration(30+rng.IntN(900))*time.Second, 3+25*rng.Float64())
			switch rng.IntN(5) {
			case 0: // traffic
				d.stand(time.Duration(5+rng.IntN(60)) * time.Second)
			case 1: // tunnel
				d.gap(time.Duration(10+rng.IntN(90))*time.Second, 400)
			case 2: // a short stop, engine off
				if ign {
					d.ignition(false)
				}
				d.stand(time.Duration(30+rng.IntN(200)) * time.Second)
				if ign {
					d.ignition(true)
				}
			}
		}
		d.stand(time.Duration(1+rng.IntN(10)) * time.Second)
		if ign {
			d.ignition(false)
		}
		switch rng.IntN(3) {
		case 0: // parked, the agent reporting
			d.stand(time.Duration(6+rng.IntN(60)) * time.Minute)
		case 1: // parked, the agent off
			d.stand(5*time.Second).gap(time.Duration(10+rng.IntN(180))*time.Minute, 3).stand(5 * time.Second)
		default: // a stop just under the threshold and an idle
			d.stand(4 * time.Minute)
		}
	}
	return d
}

// memSource serves a vehicle's records and trips from memory, like the
// database adapter does from one transaction.
type memSource struct {
	in     cloud.TripInput
	trips  []*cloud.Trip
	nextID int64
}

func (m *memSource) TripInput(_ context.Context, vehicle string, from, to time.Time) (*cloud.TripInput, error) {
	out := &cloud.TripInput{VehicleID: vehicle}
	// The drive's positions are in time order.
	ps := m.in.Positions
	lo, _ := slices.BinarySearchFunc(ps, from, func(p *cloud.Position, t time.Time) int { return p.Time.Compare(t) })
	hi, _ := slices.BinarySearchFunc(ps, to, func(p *cloud.Position, t time.Time) int { return p.Time.Compare(t) })
	out.Positions = slices.Clone(ps[lo:hi])
	if lo > 0 {
		out.Positions = append(out.Positions, ps[lo-1])
	}
	if hi < len(ps) {
		out.Positions = append(out.Positions, ps[hi])
	}
	var last *cloud.IgnitionEvent
	for i, e := range m.in.Ignition {
		if e.Time.Before(from) {
			last = &m.in.Ignition[i]
		} else if e.Time.Before(to) {
			out.Ignition = append(out.Ignition, e)
		}
	}
	if last != nil {
		out.Ignition = append(out.Ignition, *last)
	}
	for _, s := range m.in.OBD {
		if !s.Time.Before(from) && s.Time.Before(to) {
			out.OBD = append(out.OBD, s)
		}
	}
	return out, nil
}

func (m *memSource) StoredTrips(_ context.Context, _ string, from, to time.Time) ([]*cloud.Trip, error) {
	var out []*cloud.Trip
	for _, t := range m.trips {
		if !t.Start.After(to) && (t.Open || !t.End.Before(from)) {
			out = append(out, t)
		}
	}
	return out, nil
}

// recompute runs RecomputeTrips for [lo, hi] and applies its changes.
func (m *memSource) recompute(t *testing.T, cfg cloud.TripConfig, lo, hi time.Time) []cloud.TripChange {
	t.Helper()
	w, err := cloud.RecomputeTrips(context.Background(), m, cfg, "veh-1", lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := m.StoredTrips(context.Background(), "veh-1", w.From, w.To)
	changes := cloud.DiffTrips(old, w.Trips)
	for _, c := range changes {
		switch c.Kind {
		case cloud.TripDeleted:
			m.trips = slices.DeleteFunc(m.trips, func(x *cloud.Trip) bool { return x.ID == c.Trip.ID })
		case cloud.TripUpdated:
			i := slices.IndexFunc(m.trips, func(x *cloud.Trip) bool { return x.ID == c.Trip.ID })
			m.trips[i] = c.Trip
		case cloud.TripCreated:
			m.nextID++
			c.Trip.ID = m.nextID
			m.trips = append(m.trips, c.Trip)
		}
	}
	slices.SortFunc(m.trips, func(a, b *cloud.Trip) int { return a.Start.Compare(b.Start) })
	return changes
}

// without returns the records of d outside [from, to).
func without(in cloud.TripInput, from, to time.Time) cloud.TripInput {
	out := cloud.TripInput{VehicleID: in.VehicleID}
	keep := func(t time.Time) bool { return t.Before(from) || !t.Before(to) }
	for _, p := range in.Positions {
		if keep(p.Time) {
			out.Positions = append(out.Positions, p)
		}
	}
	for _, e := range in.Ignition {
		if keep(e.Time) {
			out.Ignition = append(out.Ignition, e)
		}
	}
	for _, s := range in.OBD {
		if keep(s.Time) {
			out.OBD = append(out.OBD, s)
		}
	}
	return out
}

// TestTripsInAWindowEqualAFullPass: detection over any window that holds
// whole trips (and the rests around them) gives those trips exactly.
func TestTripsInAWindowEqualAFullPass(t *testing.T) {
	for seed := range uint64(5) {
		d := day(seed)
		full := cloud.DetectTrips(&d.in, cloud.TripConfig{}).Trips
		if len(full) < 10 {
			t.Fatalf("seed %d: only %d trips in the day", seed, len(full))
		}
		m := &memSource{in: d.in}
		for i := 0; i+3 < len(full); i += 3 {
			// The window holds the rest after the last trip too: without
			// it, that trip would still be open.
			from, to := full[i].Start.Add(-time.Minute), full[i+2].End.Add(cloud.DefaultStopDuration+time.Minute)
			in, _ := m.TripInput(context.Background(), "veh-1", from, to)
			var got []*cloud.Trip
			for _, tr := range cloud.DetectTrips(in, cloud.TripConfig{}).Trips {
				if !tr.Start.Before(from) && !tr.End.After(to) {
					got = append(got, tr)
				}
			}
			sameTrips(t, got, full[i:i+3])
		}
	}
}

// TestLateHistoryGivesTheFullPassTrips: whatever part of the day arrives
// late — inside a trip, before one, across one, the whole of it after an
// outage — recomputing the range it covers leaves exactly the trips of a
// full pass over everything.
func TestLateHistoryGivesTheFullPassTrips(t *testing.T) {
	for seed := range uint64(4) {
		d := day(seed)
		full := cloud.DetectTrips(&d.in, cloud.TripConfig{}).Trips
		rng := rand.New(rand.NewPCG(seed, 7))
		type hole struct {
			name     string
			from, to time.Time
		}
		holes := []hole{
			{"the whole day (a backlog after an outage)", t0, t0.Add(48 * time.Hour)},
			{"the second half of the day", t0.Add(10 * time.Hour), t0.Add(48 * time.Hour)},
		}
		for k := range 12 {
			tr := full[rng.IntN(len(full))]
			mid := tr.Start.Add(tr.Duration() / 2)
			switch k % 4 {
			case 0: // inside a trip
				holes = append(holes, hole{"inside " + tr.String(), tr.Start.Add(tr.Duration() / 4), mid})
			case 1: // before a trip (its start and the rest before it)
				holes = append(holes, hole{"before " + tr.String(), tr.Start.Add(-20 * time.Minute), tr.Start.Add(time.Minute)})
			case 2: // across a trip's end and the next one's start
				holes = append(holes, hole{"across the end of " + tr.String(), mid, tr.End.Add(40 * time.Minute)})
			default: // a random hour
				from := t0.Add(time.Duration(rng.Int64N(int64(20 * time.Hour))))
				holes = append(holes, hole{"an hour from " + from.Format(time.TimeOnly), from, from.Add(time.Hour)})
			}
		}
		for _, h := range holes {
			early := without(d.in, h.from, h.to)
			m := &memSource{in: early}
			for _, tr := range cloud.DetectTrips(&early, cloud.TripConfig{}).Trips {
				m.nextID++
				tr.ID = m.nextID
				m.trips = append(m.trips, tr)
			}
			m.in = d.in // the late records land
			m.recompute(t, cloud.TripConfig{}, h.from, h.to)
			if len(m.trips) != len(full) || !slices.EqualFunc(m.trips, full, (*cloud.Trip).SameExtent) {
				t.Fatalf("seed %d, late records %s: after the recompute\n%sfull pass\n%s", seed, h.name, describe(m.trips), describe(full))
			}
			// Idempotent: the same range again changes nothing.
			if ch := m.recompute(t, cloud.TripConfig{}, h.from, h.to); len(ch) != 0 {
				t.Fatalf("seed %d, %s: a second recompute changed %d trips", seed, h.name, len(ch))
			}
		}
	}
}

// TestLiveDataTripByTrip feeds a day minute by minute, recomputing each
// minute as the live job does: the trips end up those of a full pass, and
// a trip's id survives its growth.
func TestLiveDataTripByTrip(t *testing.T) {
	d := day(11)
	full := cloud.DetectTrips(&d.in, cloud.TripConfig{}).Trips
	m := &memSource{}
	ids := map[time.Time]int64{}
	for from := t0; from.Before(d.t.Add(time.Minute)); from = from.Add(time.Minute) {
		m.in = without(d.in, from.Add(time.Minute), t0.Add(72*time.Hour))
		for _, c := range m.recompute(t, cloud.TripConfig{}, from, from.Add(time.Minute)) {
			if c.Kind == cloud.TripCreated {
				if id, ok := ids[c.Trip.Start]; ok {
					t.Errorf("trip at %v created again as %d (was %d)", c.Trip.Start, c.Trip.ID, id)
				}
				ids[c.Trip.Start] = c.Trip.ID
			}
		}
	}
	if !slices.EqualFunc(m.trips, full, (*cloud.Trip).SameExtent) {
		t.Fatalf("live\n%sfull pass\n%s", describe(m.trips), describe(full))
	}
}

func TestTripConfigValidate(t *testing.T) {
	if err := cloud.DefaultTripConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cloud.TripConfig{{StopDuration: -1}, {MovingSpeed: math.NaN()}, {MinDistance: -1}, {TankLitres: 1e6}, {StationaryRadius: -5}} {
		if err := c.Validate(); cloud.ErrorCode(err) != cloud.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", c, err)
		}
	}
}
