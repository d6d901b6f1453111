package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/scenario"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// truthSink writes every truth line to the --truth file (all vehicles, in
// the order they happen) and to the vehicle's own file in --truth-dir, either
// or both. Its methods are safe for concurrent use.
type truthSink struct {
	all   *truth.Writer
	per   map[string]*truth.Writer
	files []*os.File
}

func openTruth(file, dir string, sc *scenario.Scenario) (*truthSink, error) {
	s := &truthSink{per: map[string]*truth.Writer{}}
	open := func(path string) (*truth.Writer, error) {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("truth file: %w", err)
		}
		s.files = append(s.files, f)
		return truth.NewWriter(f), nil
	}
	var err error
	if file != "" {
		if s.all, err = open(file); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, errors.Join(fmt.Errorf("truth dir: %w", err), s.close())
		}
		for _, v := range sc.Vehicles {
			if s.per[v.ID], err = open(filepath.Join(dir, v.ID+".jsonl")); err != nil {
				return nil, errors.Join(err, s.close())
			}
		}
	}
	return s, nil
}

// each calls fn with every writer the vehicle's lines go to.
func (s *truthSink) each(vehicle string, fn func(*truth.Writer) error) error {
	var err error
	if s.all != nil {
		err = fn(s.all)
	}
	if w := s.per[vehicle]; w != nil {
		err = errors.Join(err, fn(w))
	}
	return err
}

func (s *truthSink) fix(f truth.Fix) error {
	return s.each(f.Vehicle, func(w *truth.Writer) error { return w.Fix(f) })
}

func (s *truthSink) obd(o truth.OBD) error {
	return s.each(o.Vehicle, func(w *truth.Writer) error { return w.OBD(o) })
}

// fault writes a fault line; a failed write sticks in the writer and stops
// the simulation through run.
func (s *truthSink) fault(f truth.Fault) {
	_ = s.each(f.Vehicle, func(w *truth.Writer) error { return w.Fault(f) })
}

// boundary writes an ignition or stop line; a failed write sticks in the
// writer and stops the simulation through run.
func (s *truthSink) boundary(b truth.Boundary) {
	_ = s.each(b.Vehicle, func(w *truth.Writer) error { return w.Boundary(b) })
}

func (s *truthSink) end(vehicle string, t time.Time) error {
	return s.each(vehicle, func(w *truth.Writer) error { return w.End(vehicle, t) })
}

// writers returns every writer.
func (s *truthSink) writers() []*truth.Writer {
	var ws []*truth.Writer
	if s.all != nil {
		ws = append(ws, s.all)
	}
	for _, w := range s.per {
		ws = append(ws, w)
	}
	return ws
}

func (s *truthSink) flush() error {
	var err error
	for _, w := range s.writers() {
		err = errors.Join(err, w.Flush())
	}
	return err
}

// close flushes and closes the files.
func (s *truthSink) close() error {
	err := s.flush()
	for _, f := range s.files {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("truth file: %w", cerr))
		}
	}
	return err
}
