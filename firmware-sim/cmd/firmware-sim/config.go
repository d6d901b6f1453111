package main

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
)

// Config is what `firmware-sim run` is told (CONTRACTS.md). Scenarios (YAML)
// will fill the same struct later.
type Config struct {
	Vehicles int
	IDPrefix string
	Route    string
	Seed     uint64
	Rate     int           // GPS epochs per simulated second
	Speed    float64       // simulated seconds per real second
	Start    string        // RFC 3339 or "now"
	Duration time.Duration // simulated; 0 = until interrupted
	Truth    string        // ground-truth file; "" = none
	LinkDir  string        // where to place <vehicle>-gps and <vehicle>-obd; "" = none
	OBDPIDs  string        // unused in the foundation
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Vehicles: 1, IDPrefix: "veh-", Route: "monaco-loop", Seed: 1, Rate: 1, Speed: 1, Start: "now"}
}

// bind registers the run flags on fs, writing into c.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.IntVar(&c.Vehicles, "vehicles", c.Vehicles, "number of vehicles; ids are <id-prefix>001, 002, ...")
	fs.StringVar(&c.IDPrefix, "id-prefix", c.IDPrefix, "vehicle id prefix")
	fs.StringVar(&c.Route, "route", c.Route, "built-in route (firmware-sim routes lists them)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed; the same seed gives the same output byte for byte")
	fs.IntVar(&c.Rate, "rate", c.Rate, fmt.Sprintf("GPS output rate in Hz (1-%d)", gps.MaxRate))
	fs.Float64Var(&c.Speed, "speed", c.Speed, "simulated seconds per real second (20 = twenty times faster)")
	fs.StringVar(&c.Start, "start", c.Start, `simulated start time, RFC 3339 or "now"`)
	fs.DurationVar(&c.Duration, "duration", c.Duration, "simulated time to drive (0 = until interrupted)")
	fs.StringVar(&c.Truth, "truth", c.Truth, "write the ground truth to this file as JSON lines")
	fs.StringVar(&c.LinkDir, "link-dir", c.LinkDir, "place stable symlinks DIR/<vehicle>-gps and DIR/<vehicle>-obd")
	fs.StringVar(&c.OBDPIDs, "obd-pids", c.OBDPIDs, "reserved: PIDs to emulate (unused for now; all supported PIDs answer)")
}

var vehicleIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks c and names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Vehicles < 1 || c.Vehicles > 999:
		return fmt.Errorf("--vehicles %d: want 1 to 999", c.Vehicles)
	case !vehicleIDPattern.MatchString(c.vehicleID(c.Vehicles - 1)):
		return fmt.Errorf("--id-prefix %q: vehicle ids must match [A-Za-z0-9_-]{1,64}", c.IDPrefix)
	case c.Rate < 1 || c.Rate > gps.MaxRate:
		return fmt.Errorf("--rate %d: want 1 to %d Hz", c.Rate, gps.MaxRate)
	case !(c.Speed > 0 && c.Speed <= 10000):
		return fmt.Errorf("--speed %v: want more than 0 and at most 10000", c.Speed)
	case c.Duration < 0:
		return fmt.Errorf("--duration %v: must not be negative", c.Duration)
	}
	if _, err := firmwaresim.RouteByName(c.Route); err != nil {
		return fmt.Errorf("--route: %w", err)
	}
	if _, err := c.startTime(time.Now()); err != nil {
		return err
	}
	return nil
}

// vehicleID returns the id of vehicle i (0-based).
func (c Config) vehicleID(i int) string { return fmt.Sprintf("%s%03d", c.IDPrefix, i+1) }

// startTime resolves Start: "now" is the current second (a receiver's epochs
// fall on whole seconds); an explicit time is kept to the hundredth of a
// second that NMEA times carry.
func (c Config) startTime(now time.Time) (time.Time, error) {
	if strings.EqualFold(c.Start, "now") {
		return now.UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339Nano, c.Start)
	if err != nil {
		return time.Time{}, fmt.Errorf("--start %q: want RFC 3339 (2026-11-27T10:00:00Z) or now", c.Start)
	}
	return t.UTC().Truncate(10 * time.Millisecond), nil
}
