package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"time"
)

// Step is the model's time step: states exist at Start + k·Step. AdvanceTo a
// time between two steps gives the state of the earlier one.
const Step = 10 * time.Millisecond

const dt = float64(Step) / float64(time.Second)

// Config describes one simulated vehicle.
type Config struct {
	Route *Route
	// Seed decides everything random: where on the loop the vehicle starts, the
	// driver, the lights, the weather, the satellites. Same seed, same drive.
	Seed uint64
	// Start is the simulated time of the first state; the engine starts then.
	Start time.Time
	// Stop, if not zero, is when the engine is switched off and the vehicle
	// stands parked for good.
	Stop time.Time
	// Halts are stops on schedule: the driver pulls over so as to stand still
	// from At, for For, with the engine idling or switched off. They must be
	// in time order.
	Halts []Halt
	// DTCs set and clear diagnostic trouble codes, in time order.
	DTCs []DTCEvent
	// VIN is the vehicle identification number; empty gives a seeded one.
	VIN string
}

// Halt is a stop on schedule (see Config.Halts).
type Halt struct {
	At        time.Time
	For       time.Duration
	EngineOff bool // ignition off while standing; the engine is cranked again at the end
}

// DTCEvent sets or clears a diagnostic trouble code at a time.
type DTCEvent struct {
	At time.Time
	// Code is an SAE J2012 code such as "P0301"; with Clear, "" clears every
	// code, as a scan tool's Mode 04 does.
	Code  string
	Clear bool
}

var dtcPattern = regexp.MustCompile(`^[PCBU][0-3][0-9A-F]{3}$`)

// ValidDTC reports whether code is a trouble code as SAE J2012 writes it:
// P, C, B or U, then four hex digits, the first 0 to 3.
func ValidDTC(code string) bool { return dtcPattern.MatchString(code) }

// State is the vehicle at one instant of simulated time: what its GPS receiver
// and its engine computer would report, in SI units and unrounded.
type State struct {
	Time     time.Time
	EngineOn bool

	Lat, Lon  float64 // WGS-84 degrees
	AltM      float64 // above mean sea level
	SpeedMps  float64 // over ground; the OBD speed reads the same
	CourseDeg float64 // degrees true, [0, 360)
	DistanceM float64 // driven since Start
	Waiting   bool    // standing at a light or junction, or before departure

	Gear        int // 0 neutral, 1..5
	RPM         float64
	ThrottlePct float64 // absolute throttle position
	LoadPct     float64 // calculated engine load
	MAFgps      float64 // mass air flow, g/s
	CoolantC    float64
	IntakeC     float64 // intake air temperature
	AmbientC    float64
	BatteryV    float64       // at the OBD connector
	FuelPct     float64       // fuel tank level
	RunTime     time.Duration // since the engine was last started

	// DTCs are the stored (confirmed) trouble codes, in the order they were
	// set, as Mode 03 reports them; MIL is the malfunction indicator lamp,
	// lit while any is stored. The slice is the caller's.
	DTCs []string
	MIL  bool
	VIN  string

	Tunnel   bool // no sky: the vehicle is in a tunnel
	FixValid bool // a receiver with a clear view would have a fix (false in a tunnel)
	Sats     int  // satellites in view and used in the fix; 0 in a tunnel
	HDOP     float64
	VDOP     float64
	PDOP     float64
}

// Vehicle is one simulated vehicle. Its methods are not safe for concurrent
// use; give each goroutine its own Vehicle built from the same Config.
type Vehicle struct {
	cfg  Config
	trk  *track
	rng  *rand.Rand
	step int64 // steps since Start

	// driving
	s, v, a     float64 // distance along the route (unwrapped), speed, acceleration
	s0          float64 // starting distance
	lap         int64
	pace        float64 // fraction of the planned speed this lap
	accelFactor float64 // how hard this driver accelerates, 0.75..1
	departStep  int64
	decided     float64 // the stop line (unwrapped distance) last decided on, -1 none
	stopAt      float64 // the stop line the vehicle is braking for, -1 none
	dwellSteps  int64   // planned wait at stopAt
	waitLeft    int64   // steps still to wait at a stop line

	// engine
	engineOn bool
	runSteps int64
	gear     int
	rpm      float64
	throttle float64
	load     float64
	maf      float64
	coolant  float64
	intake   float64
	ambient  float64
	battery  float64
	fuelPct  float64
	jitterV  float64 // battery ripple, redrawn each second

	// satellites
	sats int
	hdop float64

	// schedule
	halt     *Halt // the halt in progress, or nil
	nextHalt int   // index in cfg.Halts of the next halt not begun
	nextDTC  int   // index in cfg.DTCs of the next event not applied
	ended    bool  // Config.Stop reached
	dtcs     []string
	vin      string
}

// Gearbox and engine of a small petrol hatchback.
var gearRatios = [...]float64{3.73, 2.05, 1.39, 1.03, 0.82}

const (
	finalDrive    = 4.06
	wheelRadiusM  = 0.31
	displacementL = 1.4
	tankL         = 45.0
	maxDecel      = 4.0 // m/s², hardest braking the driver uses
	stopDecel     = 1.5 // m/s², braking for a red light
	decideDist    = 90  // m before a light where the driver sees its colour
)

// NewVehicle returns a vehicle standing at a seeded point of cfg.Route with the
// engine just started. It returns an error if the route cannot be driven or
// Start is zero.
func NewVehicle(cfg Config) (*Vehicle, error) {
	if cfg.Route == nil {
		return nil, errors.New("new vehicle: no route")
	}
	if cfg.Start.IsZero() {
		return nil, errors.New("new vehicle: no start time")
	}
	for i := range cfg.Halts {
		if i > 0 && cfg.Halts[i].At.Before(cfg.Halts[i-1].At) || cfg.Halts[i].For < 0 {
			return nil, fmt.Errorf("new vehicle: halt %d: out of order or negative", i)
		}
	}
	for i, e := range cfg.DTCs {
		if i > 0 && e.At.Before(cfg.DTCs[i-1].At) {
			return nil, fmt.Errorf("new vehicle: trouble code event %d out of order", i)
		}
		if !ValidDTC(e.Code) && !(e.Clear && e.Code == "") {
			return nil, fmt.Errorf("new vehicle: trouble code %q: want P, C, B or U and four hex digits", e.Code)
		}
	}
	trk, err := newTrack(cfg.Route)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	v := &Vehicle{cfg: cfg, trk: trk, rng: rng, decided: -1, stopAt: -1}
	v.s0 = math.Floor(rng.Float64() * trk.length)
	v.s = v.s0
	v.pace = 0.85 + 0.15*rng.Float64()
	v.accelFactor = 0.75 + 0.25*rng.Float64()
	v.departStep = int64((3 + 7*rng.Float64()) / dt)
	v.ambient = 12 + 14*rng.Float64()
	v.coolant = v.ambient + 4*rng.Float64()
	v.intake = v.ambient + 2
	v.fuelPct = 35 + 55*rng.Float64()
	v.battery = 12.4 + 0.3*rng.Float64()
	v.sats = 7 + rng.IntN(5)
	v.hdop = v.dop()
	v.engineOn = cfg.Stop.IsZero() || cfg.Start.Before(cfg.Stop)
	v.ended = !v.engineOn
	if v.engineOn {
		v.rpm = 250 // cranking
	}
	v.vin = cfg.VIN
	if v.vin == "" {
		v.vin = seededVIN(cfg.Seed)
	}
	v.schedule(cfg.Start)
	return v, nil
}

// VehicleSeed derives the seed of vehicle i (0-based) of a fleet from the
// run's seed, so that vehicles differ and each is reproducible on its own.
func VehicleSeed(seed uint64, i int) uint64 {
	z := seed + uint64(i+1)*0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Config returns the configuration the vehicle was built with.
func (v *Vehicle) Config() Config { return v.cfg }

// AdvanceTo runs the model forward to simulated time t (to the last step at or
// before t) and returns the state there. A t before the current state does not
// go back: the current state is returned.
func (v *Vehicle) AdvanceTo(t time.Time) State {
	target := int64(t.Sub(v.cfg.Start) / Step)
	for v.step < target {
		v.tick()
	}
	return v.State()
}

// State returns the current state.
func (v *Vehicle) State() State {
	lat, lon, alt, heading, tunnel := v.trk.at(v.s)
	vdop := v.hdop * 1.35
	sats := v.sats
	if tunnel {
		sats = 0
	}
	return State{
		Time:        v.cfg.Start.Add(time.Duration(v.step) * Step),
		EngineOn:    v.engineOn,
		Lat:         lat,
		Lon:         lon,
		AltM:        alt,
		SpeedMps:    v.v,
		CourseDeg:   heading,
		DistanceM:   v.s - v.s0,
		Waiting:     v.v == 0,
		Gear:        v.gear,
		RPM:         v.rpm,
		ThrottlePct: v.throttle,
		LoadPct:     v.load,
		MAFgps:      v.maf,
		CoolantC:    v.coolant,
		IntakeC:     v.intake,
		AmbientC:    v.ambient,
		BatteryV:    v.battery + v.jitterV,
		FuelPct:     v.fuelPct,
		RunTime:     time.Duration(v.runSteps) * Step,
		DTCs:        slices.Clone(v.dtcs),
		MIL:         len(v.dtcs) > 0,
		VIN:         v.vin,
		Tunnel:      tunnel,
		FixValid:    !tunnel,
		Sats:        sats,
		HDOP:        v.hdop,
		VDOP:        vdop,
		PDOP:        math.Hypot(v.hdop, vdop),
	}
}

// ClearDTCs clears the stored trouble codes, as a scan tool's Mode 04 does.
// Codes set later by Config.DTCs still appear.
func (v *Vehicle) ClearDTCs() { v.dtcs = nil }

// tick advances the model by one Step.
func (v *Vehicle) tick() {
	v.step++
	if v.step%int64(time.Second/Step) == 0 {
		v.everySecond()
	}
	now := v.cfg.Start.Add(time.Duration(v.step) * Step)
	if !v.ended && !v.cfg.Stop.IsZero() && !now.Before(v.cfg.Stop) {
		v.ended, v.engineOn, v.halt = true, false, nil
		v.v, v.a = 0, 0
	}
	v.schedule(now)
	if v.engineOn && v.halt == nil {
		v.drive()
	} else {
		v.v, v.a = 0, 0
	}
	v.engine()
}

// schedule applies the trouble code events due at now, and begins and ends
// halts.
func (v *Vehicle) schedule(now time.Time) {
	for ; v.nextDTC < len(v.cfg.DTCs) && !now.Before(v.cfg.DTCs[v.nextDTC].At); v.nextDTC++ {
		switch e := v.cfg.DTCs[v.nextDTC]; {
		case e.Clear && e.Code == "":
			v.dtcs = nil
		case e.Clear:
			v.dtcs = slices.DeleteFunc(v.dtcs, func(c string) bool { return c == e.Code })
		case !slices.Contains(v.dtcs, e.Code):
			v.dtcs = append(v.dtcs, e.Code)
		}
	}
	if v.ended {
		return
	}
	if h := v.halt; h != nil && !now.Before(h.At.Add(h.For)) {
		v.halt = nil
		if h.EngineOff {
			v.engineOn, v.runSteps = true, 0 // cranked again
		}
		v.departStep = v.step + int64((2+6*v.rng.Float64())/dt)
		v.stopAt, v.waitLeft = -1, 0
	}
	if v.halt == nil && v.nextHalt < len(v.cfg.Halts) && !now.Before(v.cfg.Halts[v.nextHalt].At) {
		v.halt = &v.cfg.Halts[v.nextHalt]
		v.nextHalt++
		v.v, v.a = 0, 0
		if v.halt.EngineOff {
			v.engineOn = false
		}
	}
}

// everySecond redraws the slow random things: satellites and battery ripple.
func (v *Vehicle) everySecond() {
	if v.rng.Float64() < 0.15 {
		if v.rng.IntN(2) == 0 {
			v.sats = max(6, v.sats-1)
		} else {
			v.sats = min(12, v.sats+1)
		}
	}
	v.hdop = v.dop()
	v.jitterV = 0.06 * (v.rng.Float64() - 0.5)
}

func (v *Vehicle) dop() float64 { return 0.45 + 4.2/float64(v.sats) + 0.08*v.rng.Float64() }

// drive moves the vehicle along the route: follow the planned speed, stop at
// red lights, wait, go on.
func (v *Vehicle) drive() {
	if v.step < v.departStep {
		v.v, v.a = 0, 0
		return
	}
	if v.waitLeft > 0 {
		v.waitLeft--
		v.v, v.a = 0, 0
		return
	}
	if lap := int64(math.Floor(v.s / v.trk.length)); lap != v.lap {
		v.lap = lap
		v.pace = 0.85 + 0.15*v.rng.Float64()
	}
	v.lookAtLights()

	target := v.trk.speedAt(v.s) * v.pace
	amax := v.accelFactor * max(1.0, 2.8-0.09*v.v)
	a := max(-maxDecel, min(amax, (target-v.v)/0.6))
	if left, parking := v.parkingTimeLeft(); parking {
		// Pull over and stop before a halt or the end of the drive.
		a = -min(maxDecel, max(stopDecel/2, v.v/max(left-2, 0.1)))
		v.stopAt = -1
	} else if v.stopAt >= 0 {
		d := v.stopAt - v.s
		if need := v.v * v.v / (2 * max(d, 0.01)); need >= stopDecel {
			a = -min(maxDecel, need)
		} else {
			a = min(a, (math.Sqrt(2*stopDecel*max(d, 0))-v.v)/0.6)
		}
	}
	v.a = a
	v.v = max(0, v.v+a*dt)
	next := v.s + v.v*dt
	if v.stopAt >= 0 && (next >= v.stopAt || (v.stopAt-next < 0.2 && v.v < 0.05)) {
		next = min(next, v.stopAt)
		v.v, v.a = 0, 0
		v.waitLeft = v.dwellSteps
		v.stopAt = -1
	}
	v.s = next
}

// parkingTimeLeft reports whether the driver is pulling over because a halt
// begins soon, or the engine is switched off for good (at Config.Stop), and
// the seconds left until then.
func (v *Vehicle) parkingTimeLeft() (float64, bool) {
	next := v.cfg.Stop
	if v.nextHalt < len(v.cfg.Halts) && (next.IsZero() || v.cfg.Halts[v.nextHalt].At.Before(next)) {
		next = v.cfg.Halts[v.nextHalt].At
	}
	if next.IsZero() {
		return 0, false
	}
	now := v.cfg.Start.Add(time.Duration(v.step) * Step)
	left := next.Sub(now).Seconds()
	return left, left <= v.v/stopDecel+4
}

// lookAtLights decides, once per light as the vehicle comes near it, whether
// it is red (stop and wait) or green.
func (v *Vehicle) lookAtLights() {
	if v.stopAt >= 0 {
		return
	}
	ns, always, ok := v.trk.nextStop(v.s)
	if !ok {
		return
	}
	if ns <= v.decided {
		if ns, always, ok = v.trk.nextStop(v.decided + 0.01); !ok || ns-v.s > decideDist {
			return
		}
	}
	d := ns - v.s
	if d > decideDist || ns <= v.decided {
		return
	}
	v.decided = ns
	red := v.rng.Float64() < 0.5
	wait := 8 + 32*v.rng.Float64()
	if always {
		red, wait = true, 3+wait/8 // turning round at the end of the road
	}
	if red && (always || v.v*v.v/(2*max(d, 0.01)) < maxDecel*0.7) {
		v.stopAt = ns
		v.dwellSteps = int64(wait / dt)
	}
}

// engine updates gear, rpm, load, temperatures, battery and fuel from the
// motion just computed.
func (v *Vehicle) engine() {
	if !v.engineOn {
		v.gear, v.rpm, v.throttle, v.load, v.maf = 0, 0, 0, 0, 0
		v.coolant += (v.ambient - v.coolant) * 0.0008 * dt
		v.intake += (v.ambient - v.intake) * 0.002 * dt
		v.battery += (12.5 - v.battery) * 0.05 * dt
		return
	}
	v.runSteps++
	warm := math.Max(0, math.Min(1, (60-v.coolant)/40))
	idle := 800 + 250*warm
	amax := v.accelFactor * max(1.0, 2.8-0.09*v.v)
	demand := 0.0
	if v.a > 0 {
		demand = v.a / amax
	}
	var rpm float64
	switch {
	case float64(v.runSteps)*dt < 0.8: // cranking
		rpm = 250
		v.gear = 0
	case v.v < 0.3 && v.a <= 0:
		v.gear = 0
		rpm = idle
	default:
		if v.gear == 0 {
			v.gear = 1
		}
		wheelRPM := v.v / (2 * math.Pi * wheelRadiusM) * 60
		up := 2300 + 900*demand
		for v.gear < len(gearRatios) && wheelRPM*gearRatios[v.gear-1]*finalDrive > up {
			v.gear++
		}
		for v.gear > 1 && wheelRPM*gearRatios[v.gear-1]*finalDrive < 1100 {
			v.gear--
		}
		rpm = wheelRPM * gearRatios[v.gear-1] * finalDrive
		if v.gear == 1 {
			rpm = max(rpm, idle+700*demand) // clutch slipping while pulling away
		}
	}
	if v.gear >= 2 {
		v.rpm = rpm // clutch engaged: the engine turns with the wheels
	} else {
		v.rpm += (rpm - v.rpm) * min(1, dt/0.25)
	}

	load := 15 + 65*demand + 0.8*v.v
	if v.a < -0.3 {
		load = 8 // overrun: throttle shut
	}
	v.load = max(5, min(100, load))
	v.throttle = max(11, min(100, 13+0.75*(v.load-15)))
	v.maf = v.rpm / 60 * displacementL / 2 * 1.2 * (0.1 + 0.85*v.load/100)

	if v.coolant < 88 {
		v.coolant += (0.02 + 0.0001*v.rpm*v.load/100) * dt
	} else {
		v.coolant += (90 + 4*v.load/100 - v.coolant) * 0.05 * dt
	}
	soak := math.Max(0, math.Min(1, 1-v.v/15)) * (v.coolant - v.ambient) / 70
	v.intake += (v.ambient + 3 + 12*soak - v.intake) * 0.02 * dt

	switch run := float64(v.runSteps) * dt; {
	case run < 0.8:
		v.battery = 10.6 // the starter motor pulls the voltage down
	default:
		v.battery += (14.2 - 0.3*v.load/100 - v.battery) * min(1, dt/0.8)
	}

	litres := v.maf / 14.7 / 745 * dt
	v.fuelPct = max(0, v.fuelPct-litres/tankL*100)
}

// seededVIN returns a 17-character VIN for seed, with the check digit of
// 49 CFR 565 in position 9, made from its own random source so that the
// drive does not depend on it.
func seededVIN(seed uint64) string {
	const chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789" // no I, O, Q
	rng := rand.New(rand.NewPCG(seed, 0x76696e5f76696e5f))
	b := []byte("VF3" + "00000" + "0" + "T" + "L" + "000000") // WMI, VDS, check, 2026, plant, serial
	for i := 3; i < 8; i++ {
		b[i] = chars[rng.IntN(len(chars))]
	}
	for i := 11; i < 17; i++ {
		b[i] = byte('0' + rng.IntN(10))
	}
	b[8] = vinCheckDigit(string(b))
	return string(b)
}

// vinCheckDigit computes the check digit of a VIN (49 CFR 565.15): letters
// transliterated, weighted, summed, modulo 11, 10 written X.
func vinCheckDigit(vin string) byte {
	weights := [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}
	const letters = "ABCDEFGH.JKLMN.P.R..STUVWXYZ"
	values := [...]int{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 0, 7, 0, 9, 0, 0, 2, 3, 4, 5, 6, 7, 8, 9}
	sum := 0
	for i := 0; i < 17; i++ {
		c := vin[i]
		var v int
		if c >= '0' && c <= '9' {
			v = int(c - '0')
		} else {
			for j := 0; j < len(letters); j++ {
				if letters[j] == c {
					v = values[j]
				}
			}
		}
		sum += v * weights[i]
	}
	if r := sum % 11; r < 10 {
		return byte('0' + r)
	}
	return 'X'
}
