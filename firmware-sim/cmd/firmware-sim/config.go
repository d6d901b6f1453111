package main

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
)

// Config is what `firmware-sim run` is told (firmware-sim/README.md): flags, and
// optionally a scenario whose settings the flags given explicitly override.
type Config struct {
	Vehicles int
	IDPrefix string
	Route    string // built-in name or a .gpx / .geojson file
	Seed     uint64
	Rate     int           // GPS epochs per simulated second
	Speed    float64       // simulated seconds per real second
	Start    string        // RFC 3339 or "now"
	Duration time.Duration // simulated; 0 = until interrupted
	Truth    string        // ground-truth file; "" = none
	TruthDir string        // one ground-truth file per vehicle; "" = none
	LinkDir  string        // where to place <vehicle>-gps and <vehicle>-obd; "" = none
	OBDPIDs  string        // unused: every supported PID answers

	Scenario   string // file or built-in name; "" = the flags alone
	Transport  string // pty or tcp, for both devices
	Talker     string
	Sentences  string // comma-separated
	Baud       int
	Noise      bool
	ColdStart  time.Duration
	StrictBaud bool
	Uplink     string // broker URL for the uplink proxy; "" = none

	set map[string]bool // flags given on the command line
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Vehicles: 1, IDPrefix: "veh-", Route: "monaco-loop", Seed: 1, Rate: 1, Speed: 1, Start: "now",
		Transport: "pty", Talker: "GP", Sentences: strings.Join(gps.DefaultSentences, ","), Baud: 9600}
}

// bind registers the run flags on fs, writing into c.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Scenario, "scenario", c.Scenario, "scenario file, or the name of a built-in one (firmware-sim scenarios lists them); flags given explicitly override its settings")
	fs.IntVar(&c.Vehicles, "vehicles", c.Vehicles, "number of vehicles; ids are <id-prefix>001, 002, ... (not with --scenario)")
	fs.StringVar(&c.IDPrefix, "id-prefix", c.IDPrefix, "vehicle id prefix; with --scenario, put before every vehicle id")
	fs.StringVar(&c.Route, "route", c.Route, "built-in route (firmware-sim routes lists them), or a .gpx or .geojson file")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed; the same seed gives the same output byte for byte")
	fs.IntVar(&c.Rate, "rate", c.Rate, fmt.Sprintf("GPS output rate in Hz (1-%d)", gps.MaxRate))
	fs.Float64Var(&c.Speed, "speed", c.Speed, "simulated seconds per real second (20 = twenty times faster)")
	fs.StringVar(&c.Start, "start", c.Start, `simulated start time, RFC 3339 or "now"`)
	fs.DurationVar(&c.Duration, "duration", c.Duration, "simulated time to drive (0 = until interrupted)")
	fs.StringVar(&c.Truth, "truth", c.Truth, "write the ground truth to this file as JSON lines")
	fs.StringVar(&c.TruthDir, "truth-dir", c.TruthDir, "write the ground truth of each vehicle to DIR/<vehicle>.jsonl")
	fs.StringVar(&c.LinkDir, "link-dir", c.LinkDir, "place stable symlinks DIR/<vehicle>-gps and DIR/<vehicle>-obd")
	fs.StringVar(&c.OBDPIDs, "obd-pids", c.OBDPIDs, "reserved: PIDs to emulate (unused for now; all supported PIDs answer)")
	fs.StringVar(&c.Transport, "transport", c.Transport, "how the devices are served: pty, or tcp (a port on 127.0.0.1 per device)")
	fs.StringVar(&c.Talker, "talker", c.Talker, "NMEA talker: "+strings.Join(gps.Talkers, ", "))
	fs.StringVar(&c.Sentences, "sentences", c.Sentences, "NMEA sentences of each epoch, some of "+strings.Join(gps.Sentences, ","))
	fs.IntVar(&c.Baud, "baud", c.Baud, "the receiver's line speed; output is paced to it")
	fs.BoolVar(&c.StrictBaud, "strict-baud", c.StrictBaud, "a client reading at another speed than the receiver talks gets garbage, as from a UART (always so with a baud_change fault)")
	fs.BoolVar(&c.Noise, "noise", c.Noise, "add position noise that follows the DOP")
	fs.DurationVar(&c.ColdStart, "cold-start", c.ColdStart, "time to the first fix (no time known for its first third)")
	fs.StringVar(&c.Uplink, "uplink-proxy", c.Uplink, "broker URL (tcp://host:port): run an uplink proxy per vehicle for the agent to connect through, cut by uplink_down faults")
}

var vehicleIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the flags and names the first bad one. The scenario they
// make is checked by Resolve.
func (c Config) Validate() error {
	switch {
	case c.Scenario != "" && c.given("vehicles"):
		return errors.New("--vehicles: the scenario says how many vehicles; not with --scenario")
	case c.Vehicles < 1 || c.Vehicles > 999:
		return fmt.Errorf("--vehicles %d: want 1 to 999", c.Vehicles)
	case c.Scenario == "" && !vehicleIDPattern.MatchString(c.vehicleID(c.Vehicles-1)):
		return fmt.Errorf("--id-prefix %q: vehicle ids must match [A-Za-z0-9_-]{1,64}", c.IDPrefix)
	case c.Rate < 1 || c.Rate > gps.MaxRate:
		return fmt.Errorf("--rate %d: want 1 to %d Hz", c.Rate, gps.MaxRate)
	case !(c.Speed > 0 && c.Speed <= 10000):
		return fmt.Errorf("--speed %v: want more than 0 and at most 10000", c.Speed)
	case c.Duration < 0:
		return fmt.Errorf("--duration %v: must not be negative", c.Duration)
	case c.Transport != "pty" && c.Transport != "tcp":
		return fmt.Errorf("--transport %q: want pty or tcp", c.Transport)
	case c.Baud <= 0:
		return fmt.Errorf("--baud %d: want a line speed such as 9600", c.Baud)
	case c.ColdStart < 0:
		return fmt.Errorf("--cold-start %v: must not be negative", c.ColdStart)
	case c.Uplink != "" && !strings.HasPrefix(c.Uplink, "tcp://"):
		return fmt.Errorf("--uplink-proxy %q: want the broker as tcp://host:port", c.Uplink)
	}
	if err := c.format().Validate(); err != nil {
		return fmt.Errorf("--talker/--sentences: %w", err)
	}
	if _, err := scenario.LoadRoute(c.Route, ""); err != nil {
		return fmt.Errorf("--route: %w", err)
	}
	if _, err := c.startTime(time.Now()); err != nil {
		return err
	}
	return nil
}

// given reports whether flag name was given on the command line.
func (c Config) given(name string) bool { return c.set[name] }

func (c Config) format() gps.Format {
	var set []string
	for _, s := range strings.Split(c.Sentences, ",") {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			set = append(set, s)
		}
	}
	return gps.Format{Talker: strings.ToUpper(c.Talker), Sentences: set}
}

// vehicleID returns the id of vehicle i (0-based).
func (c Config) vehicleID(i int) string { return fmt.Sprintf("%s%03d", c.IDPrefix, i+1) }

// startTime resolves Start: "now" is the current second (a receiver's epochs
// fall on whole seconds); an explicit time is kept to the hundredth of a
// second that NMEA times carry.
func (c Config) startTime(now time.Time) (time.Time, error) {
	return resolveStart(c.Start, now, "--start")
}

func resolveStart(start string, now time.Time, what string) (time.Time, error) {
	if strings.EqualFold(start, "now") {
		return now.UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339Nano, start)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2026-11-27T10:00:00Z) or now", what, start)
	}
	return t.UTC().Truncate(10 * time.Millisecond), nil
}

// Resolve returns the scenario to run: the one named by --scenario with the
// flags given explicitly applied over it, or one made of the flags alone.
func (c Config) Resolve() (*scenario.Scenario, error) {
	if c.Scenario == "" {
		route, err := scenario.LoadRoute(c.Route, "")
		if err != nil {
			return nil, fmt.Errorf("--route: %w", err)
		}
		sc := &scenario.Scenario{Name: "command line", Seed: c.Seed, Start: c.Start, Duration: c.Duration, Speed: c.Speed, Uplink: c.Uplink}
		for i := range c.Vehicles {
			sc.Vehicles = append(sc.Vehicles, scenario.Vehicle{ID: c.vehicleID(i), Route: route,
				GPS: scenario.GPS{Port: scenario.Port{Transport: c.Transport}, Rate: c.Rate, Format: c.format(), Baud: c.Baud, Noise: c.Noise,
					ColdStart: c.ColdStart, StrictBaud: c.StrictBaud},
				OBD: scenario.Port{Transport: c.Transport}})
		}
		return sc, c.checkScenario(sc)
	}
	sc, err := scenario.Load(c.Scenario)
	if err != nil {
		return nil, err
	}
	if sc.Speed == 0 || c.given("speed") {
		sc.Speed = c.Speed
	}
	if c.given("seed") {
		sc.Seed = c.Seed
	}
	if c.given("start") {
		sc.Start = c.Start
	}
	if c.given("duration") {
		sc.Duration = c.Duration
	}
	if c.given("uplink-proxy") {
		sc.Uplink = c.Uplink
	}
	var route *firmwaresim.Route
	if c.given("route") {
		if route, err = scenario.LoadRoute(c.Route, ""); err != nil {
			return nil, fmt.Errorf("--route: %w", err)
		}
	}
	for i := range sc.Vehicles {
		v := &sc.Vehicles[i]
		if c.given("id-prefix") {
			v.ID = c.IDPrefix + v.ID
		}
		if route != nil {
			v.Route = route
		}
		if c.given("transport") {
			v.GPS.Transport, v.OBD.Transport = c.Transport, c.Transport
		}
		if c.given("rate") {
			v.GPS.Rate = c.Rate
		}
		if c.given("talker") {
			v.GPS.Format.Talker = c.format().Talker
		}
		if c.given("sentences") {
			v.GPS.Format.Sentences = c.format().Sentences
		}
		if c.given("baud") {
			v.GPS.Baud = c.Baud
		}
		if c.given("noise") {
			v.GPS.Noise = c.Noise
		}
		if c.given("cold-start") {
			v.GPS.ColdStart = c.ColdStart
		}
		if c.given("strict-baud") {
			v.GPS.StrictBaud = c.StrictBaud
		}
	}
	if c.given("id-prefix") {
		for i := range sc.Faults {
			if sc.Faults[i].Vehicle != "" {
				sc.Faults[i].Vehicle = c.IDPrefix + sc.Faults[i].Vehicle
			}
		}
	}
	return sc, c.checkScenario(sc)
}

// checkScenario checks what the flags may have changed.
func (c Config) checkScenario(sc *scenario.Scenario) error {
	for _, v := range sc.Vehicles {
		if !vehicleIDPattern.MatchString(v.ID) {
			return fmt.Errorf("--id-prefix %q: vehicle id %q must match [A-Za-z0-9_-]{1,64}", c.IDPrefix, v.ID)
		}
	}
	if err := sc.Validate(); err != nil {
		return err
	}
	_, err := resolveStart(sc.Start, time.Now(), "start")
	return err
}
