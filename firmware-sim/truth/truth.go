// Package truth writes and reads the simulator's ground truth: one JSON
// object per line for every fix and OBD sample the simulator put on the wire,
// with the values the wire carried, every fault it injected, the trip
// boundaries (the engine started and stopped, halts begun and ended), and
// one line per vehicle when its drive ends (the fix, obd, trip boundary and
// end lines are a stable format, firmware-sim/README.md "Ground truth":
// fields are only ever added). CompareFixes, CompareOBD and CompareTrips
// diff it with what the cloud's API returned, for firmware-sim diff and the
// end-to-end tests.
package truth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// TimeFormat is how times are written: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Fix is a GNSS fix as the NMEA sentences carried it.
type Fix struct {
	Vehicle   string
	Time      time.Time
	Lat, Lon  float64
	AltM      float64
	SpeedMps  float64
	CourseDeg float64
	Quality   int
	Sats      int
	HDOP      float64
}

// OBD is one PID value as an ELM327 reply carried it.
type OBD struct {
	Vehicle string
	Time    time.Time
	Mode    byte
	PID     byte
	Value   float64
	Unit    string
	Reply   string // "41 0C 14 5F"
}

// Fault is a fault the simulator injected, at the simulated time it did.
// A lasting fault gets a line with Phase "begin" (with Until when its end is
// known) and one with Phase "end"; one that happens at once (garbage,
// dtc_clear, a count of OBD replies) a line with Phase "instant".
type Fault struct {
	Vehicle string
	Time    time.Time
	Fault   string // the kind: unplug, garbage, bad_checksum, ... (firmwaresim.FaultKind)
	Device  string // gps, obd, vehicle, uplink
	Phase   string // begin, end, instant
	Until   time.Time
	Bytes   int
	Baud    int
	Count   int
	Offset  time.Duration
	Reply   string
	Code    string
}

// Boundary is a trip boundary: the engine started or stopped (Kind
// "ignition", State "on" or "off"), or a halt on schedule began or ended
// (Kind "stop", Phase "begin" or "end", EngineOff when the engine is off
// while standing), with where the vehicle was and how far it had driven
// since the start of its drive (the model's exact values, not the GPS's).
type Boundary struct {
	Vehicle   string
	Time      time.Time
	Kind      string // "ignition" or "stop"
	State     string // ignition: "on" or "off"
	Phase     string // stop: "begin" or "end"
	EngineOff bool   // stop
	Lat, Lon  float64
	DistanceM float64
}

// Line is one line of a truth file, of any type; fields a type lacks are zero.
type Line struct {
	Type      string    `json:"type"` // "fix", "obd", "fault", "ignition", "stop" or "end"
	Vehicle   string    `json:"vehicle"`
	Time      time.Time `json:"time"`
	Lat       float64   `json:"lat,omitempty"`
	Lon       float64   `json:"lon,omitempty"`
	AltM      float64   `json:"alt_m,omitempty"`
	SpeedMps  float64   `json:"speed_mps,omitempty"`
	CourseDeg float64   `json:"course_deg,omitempty"`
	Quality   int       `json:"quality,omitempty"`
	Sats      int       `json:"sats,omitempty"`
	HDOP      float64   `json:"hdop,omitempty"`
	PID       string    `json:"pid,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	Value     float64   `json:"value,omitempty"`
	Unit      string    `json:"unit,omitempty"`
	Reply     string    `json:"reply,omitempty"`
	Fault     string    `json:"fault,omitempty"`
	Device    string    `json:"device,omitempty"`
	Phase     string    `json:"phase,omitempty"`
	Until     time.Time `json:"until,omitzero"`
	Bytes     int       `json:"bytes,omitempty"`
	Baud      int       `json:"baud,omitempty"`
	Count     int       `json:"count,omitempty"`
	Offset    string    `json:"offset,omitempty"` // a Go duration, "-1h30m0s"
	Code      string    `json:"code,omitempty"`
	State     string    `json:"state,omitempty"` // ignition: "on" or "off"
	EngineOff bool      `json:"engine_off,omitempty"`
	DistanceM float64   `json:"distance_m,omitempty"`
}

// The line layouts, in the contract's field order.
type (
	fixLine struct {
		Type      string  `json:"type"`
		Vehicle   string  `json:"vehicle"`
		Time      string  `json:"time"`
		Lat       float64 `json:"lat"`
		Lon       float64 `json:"lon"`
		AltM      float64 `json:"alt_m"`
		SpeedMps  float64 `json:"speed_mps"`
		CourseDeg float64 `json:"course_deg"`
		Quality   int     `json:"quality"`
		Sats      int     `json:"sats"`
		HDOP      float64 `json:"hdop"`
	}
	obdLine struct {
		Type    string  `json:"type"`
		Vehicle string  `json:"vehicle"`
		Time    string  `json:"time"`
		PID     string  `json:"pid"`
		Mode    string  `json:"mode"`
		Value   float64 `json:"value"`
		Unit    string  `json:"unit"`
		Reply   string  `json:"reply"`
	}
	faultLine struct {
		Type    string `json:"type"`
		Vehicle string `json:"vehicle"`
		Time    string `json:"time"`
		Fault   string `json:"fault"`
		Device  string `json:"device"`
		Phase   string `json:"phase"`
		Until   string `json:"until,omitempty"`
		Bytes   int    `json:"bytes,omitempty"`
		Baud    int    `json:"baud,omitempty"`
		Count   int    `json:"count,omitempty"`
		Offset  string `json:"offset,omitempty"`
		Reply   string `json:"reply,omitempty"`
		Code    string `json:"code,omitempty"`
	}
	ignitionLine struct {
		Type      string  `json:"type"`
		Vehicle   string  `json:"vehicle"`
		Time      string  `json:"time"`
		State     string  `json:"state"`
		Lat       float64 `json:"lat"`
		Lon       float64 `json:"lon"`
		DistanceM float64 `json:"distance_m"`
	}
	stopLine struct {
		Type      string  `json:"type"`
		Vehicle   string  `json:"vehicle"`
		Time      string  `json:"time"`
		Phase     string  `json:"phase"`
		EngineOff bool    `json:"engine_off"`
		Lat       float64 `json:"lat"`
		Lon       float64 `json:"lon"`
		DistanceM float64 `json:"distance_m"`
	}
	endLine struct {
		Type    string `json:"type"`
		Vehicle string `json:"vehicle"`
		Time    string `json:"time"`
	}
)

func format(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Writer writes truth lines through a buffer. It is safe for concurrent use;
// lines from one goroutine keep their order.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	err error
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{bw: bufio.NewWriter(w)} }

// Fix writes a fix line.
func (w *Writer) Fix(f Fix) error {
	return w.line(fixLine{"fix", f.Vehicle, format(f.Time), f.Lat, f.Lon, f.AltM, f.SpeedMps, f.CourseDeg, f.Quality, f.Sats, f.HDOP})
}

// OBD writes an OBD sample line.
func (w *Writer) OBD(o OBD) error {
	return w.line(obdLine{"obd", o.Vehicle, format(o.Time), fmt.Sprintf("%02X", o.PID), fmt.Sprintf("%02X", o.Mode), o.Value, o.Unit, o.Reply})
}

// Fault writes a fault line.
func (w *Writer) Fault(f Fault) error {
	l := faultLine{Type: "fault", Vehicle: f.Vehicle, Time: format(f.Time), Fault: f.Fault, Device: f.Device, Phase: f.Phase,
		Bytes: f.Bytes, Baud: f.Baud, Count: f.Count, Reply: f.Reply, Code: f.Code}
	if !f.Until.IsZero() {
		l.Until = format(f.Until)
	}
	if f.Offset != 0 {
		l.Offset = f.Offset.String()
	}
	return w.line(l)
}

// Boundary writes an ignition or a stop line.
func (w *Writer) Boundary(b Boundary) error {
	if b.Kind == "stop" {
		return w.line(stopLine{"stop", b.Vehicle, format(b.Time), b.Phase, b.EngineOff, b.Lat, b.Lon, b.DistanceM})
	}
	return w.line(ignitionLine{"ignition", b.Vehicle, format(b.Time), b.State, b.Lat, b.Lon, b.DistanceM})
}

// End writes the line that closes a vehicle's drive, and flushes.
func (w *Writer) End(vehicle string, t time.Time) error {
	if err := w.line(endLine{"end", vehicle, format(t)}); err != nil {
		return err
	}
	return w.Flush()
}

func (w *Writer) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	b = append(b, '\n')
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("truth: write: %w", err)
	}
	return w.err
}

// Flush writes the buffered lines out. After a write error every call
// returns that error.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("truth: flush: %w", err)
	}
	return w.err
}

// Run flushes every interval until ctx is done, then once more. It returns
// the first flush error, or nil.
func (w *Writer) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.Flush()
		case <-t.C:
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// Read parses a truth file. It fails on the first line that is not a truth
// object (a line of an unknown type, or without the vehicle, time, pid or
// mode its type needs), naming its number. A last line without its newline
// is still being written (the writer writes whole lines, through a buffer)
// and is not read.
func Read(r io.Reader) ([]Line, error) {
	var lines []Line
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, fmt.Errorf("read truth: %w", err)
		}
		l, err := parseLine(b)
		if err != nil {
			return lines, &lineError{n, err}
		}
		lines = append(lines, l)
	}
}

// ReadFile reads the truth file at path as Read does; an error names the
// file and, for a bad line, its number ("truth.jsonl:12: ...").
func ReadFile(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read truth: %w", err)
	}
	defer f.Close()
	lines, err := Read(f)
	if le, ok := errors.AsType[*lineError](err); ok {
		return nil, fmt.Errorf("%s:%d: %w", path, le.n, le.err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// lineError is a line that is not a truth object.
type lineError struct {
	n   int
	err error
}

func (e *lineError) Error() string { return fmt.Sprintf("truth line %d: %v", e.n, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func parseLine(b []byte) (Line, error) {
	var l Line
	if err := json.Unmarshal(b, &l); err != nil {
		return l, err
	}
	switch l.Type {
	case "fix", "obd", "fault", "ignition", "stop", "end":
	default:
		return l, fmt.Errorf("unknown type %q", l.Type)
	}
	switch {
	case l.Vehicle == "":
		return l, fmt.Errorf("%s line without a vehicle", l.Type)
	case l.Time.IsZero():
		return l, fmt.Errorf("%s line without a time", l.Type)
	case l.Type == "obd" && (l.PID == "" || l.Mode == ""):
		return l, fmt.Errorf("obd line without a pid or mode")
	case l.Type == "ignition" && l.State != "on" && l.State != "off":
		return l, fmt.Errorf("ignition line with state %q: want on or off", l.State)
	case l.Type == "stop" && l.Phase != "begin" && l.Phase != "end":
		return l, fmt.Errorf("stop line with phase %q: want begin or end", l.Phase)
	}
	return l, nil
}

// Vehicle is one vehicle's part of a ground truth: its lines by type, in the
// order they were read.
type Vehicle struct {
	ID     string
	Fixes  []Line
	OBD    []Line
	Faults []Line
	// Ignition and Stops are the trip boundaries.
	Ignition []Line
	Stops    []Line
	// Ended reports that the vehicle's end line was read: its drive is over
	// and no fix will follow.
	Ended bool
	// First and Last are the earliest and the latest time of its lines.
	First, Last time.Time
}

// Vehicles splits lines by vehicle.
func Vehicles(lines []Line) map[string]Vehicle {
	vs := map[string]Vehicle{}
	for _, l := range lines {
		v, ok := vs[l.Vehicle]
		if !ok {
			v = Vehicle{ID: l.Vehicle, First: l.Time, Last: l.Time}
		}
		switch l.Type {
		case "fix":
			v.Fixes = append(v.Fixes, l)
		case "obd":
			v.OBD = append(v.OBD, l)
		case "fault":
			v.Faults = append(v.Faults, l)
		case "ignition":
			v.Ignition = append(v.Ignition, l)
		case "stop":
			v.Stops = append(v.Stops, l)
		case "end":
			v.Ended = true
		}
		if l.Time.Before(v.First) {
			v.First = l.Time
		}
		if l.Time.After(v.Last) {
			v.Last = l.Time
		}
		vs[l.Vehicle] = v
	}
	return vs
}
