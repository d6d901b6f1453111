// Package truth writes and reads the simulator's ground truth: one JSON
// object per line for every fix and OBD sample the simulator put on the wire,
// with the values the wire carried, and one line per vehicle when its drive
// ends (the format is fixed by CONTRACTS.md). Tests compare what reached the
// cloud with it.
package truth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// Line is one line of a truth file, of any type; fields a type lacks are zero.
type Line struct {
	Type      string    `json:"type"` // "fix", "obd" or "end"
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
// object, naming its number.
func Read(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return lines, fmt.Errorf("truth line %d: %w", n, err)
		}
		switch l.Type {
		case "fix", "obd", "end":
		default:
			return lines, fmt.Errorf("truth line %d: unknown type %q", n, l.Type)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return lines, fmt.Errorf("read truth: %w", err)
	}
	return lines, nil
}
