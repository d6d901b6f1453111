// Package gps emulates a GNSS receiver: it turns the vehicle model's states
// into NMEA 0183 sentences (a chosen set of RMC, GGA, GSA, GSV, VTG, GLL,
// GNS, ZDA and GST, with a chosen talker) at a fixed rate of simulated time,
// with position noise that follows the dilution of precision, a cold start,
// no fix in tunnels and the GPS faults of a scenario, paced to the line's
// baud rate; and it reports each fix with the values the sentences carry,
// parsed back from their text, for the ground truth.
package gps

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Fix is one epoch of the receiver. Encode formats it; Epoch.Fix holds the
// values as carried on the wire.
type Fix struct {
	Time      time.Time // UTC, as the receiver tells it
	NoTime    bool      // the receiver does not know the time yet (cold start): empty time fields
	Valid     bool      // RMC status A, GGA quality > 0
	Lat, Lon  float64   // WGS-84 degrees
	AltM      float64   // above mean sea level
	SpeedMps  float64
	CourseDeg float64 // degrees true
	Quality   int     // GGA fix quality: 1 GPS
	Sats      int     // satellites used
	HDOP      float64
	VDOP      float64
	PDOP      float64
	// ErrLatM, ErrLonM and ErrAltM are the receiver's 1-sigma error
	// estimates (GST).
	ErrLatM, ErrLonM, ErrAltM float64
	// InView are the satellites in view (GSV); the first Sats of them are
	// used in the fix.
	InView []Satellite
}

// Satellite is a satellite in view.
type Satellite struct {
	PRN       int
	Elevation int // degrees, 0-90
	Azimuth   int // degrees true, 0-359
	SNR       int // dB-Hz; 0 when not tracked
}

// Knot is the conversion the ground truth uses from knots (the NMEA unit of
// speed) to metres per second.
const Knot = 0.514444

// Sentences lists the sentence types the receiver can emit, in the order an
// epoch carries them.
var Sentences = []string{"RMC", "GGA", "GNS", "GLL", "GSA", "GSV", "VTG", "ZDA", "GST"}

// DefaultSentences is the set a receiver emits when none is configured.
var DefaultSentences = []string{"RMC", "GGA", "GSA"}

// Talkers lists the talker IDs the receiver accepts: GPS, mixed GNSS,
// GLONASS, Galileo and BeiDou.
var Talkers = []string{"GP", "GN", "GL", "GA", "GB", "BD"}

// Format is how a receiver formats its epochs.
type Format struct {
	Talker    string   // "GP" when empty
	Sentences []string // DefaultSentences when empty; any order, each at most once
}

func (f Format) talker() string {
	if f.Talker == "" {
		return "GP"
	}
	return f.Talker
}

// SentenceSet returns the configured set in epoch order.
func (f Format) SentenceSet() []string {
	if len(f.Sentences) == 0 {
		return DefaultSentences
	}
	var out []string
	for _, s := range Sentences {
		if slices.Contains(f.Sentences, s) {
			out = append(out, s)
		}
	}
	return out
}

// Validate checks the talker and the sentence set: known names, no repeats,
// a sentence carrying the position (RMC, GGA, GNS or GLL) and one carrying
// the date (RMC or ZDA).
func (f Format) Validate() error {
	if f.Talker != "" && !slices.Contains(Talkers, f.Talker) {
		return fmt.Errorf("talker %q: want one of %s", f.Talker, strings.Join(Talkers, ", "))
	}
	seen := map[string]bool{}
	for _, s := range f.Sentences {
		if !slices.Contains(Sentences, s) {
			return fmt.Errorf("sentence %q: want some of %s", s, strings.Join(Sentences, ", "))
		}
		if seen[s] {
			return fmt.Errorf("sentence %s listed twice", s)
		}
		seen[s] = true
	}
	set := f.SentenceSet()
	if !slices.ContainsFunc(set, func(s string) bool { return s == "RMC" || s == "GGA" || s == "GNS" || s == "GLL" }) {
		return fmt.Errorf("sentences %s: none carries the position (RMC, GGA, GNS or GLL)", strings.Join(set, ","))
	}
	if !slices.Contains(set, "RMC") && !slices.Contains(set, "ZDA") {
		return fmt.Errorf("sentences %s: none carries the date (RMC or ZDA)", strings.Join(set, ","))
	}
	return nil
}

// EpochBytes returns the size on the line of a busy epoch in format f: a
// fix with twelve satellites used and sixteen in view.
func (f Format) EpochBytes() int {
	fix := Fix{Time: time.Date(2026, 11, 27, 23, 59, 59, 990e6, time.UTC), Valid: true, Lat: -33.8688, Lon: -170.6693,
		AltM: -1234.5, SpeedMps: 55, CourseDeg: 359.9, Quality: 1, Sats: 12, HDOP: 10.5, VDOP: 12.25, PDOP: 15.75,
		ErrLatM: 12.3, ErrLonM: 12.3, ErrAltM: 23.4}
	for i := range 16 {
		fix.InView = append(fix.InView, Satellite{PRN: 10 + i, Elevation: 45, Azimuth: 300, SNR: 45})
	}
	return len(Encode(fix, f).Bytes())
}
