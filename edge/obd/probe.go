package obd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// ErrNoVehicle is returned by Probe when the adapter answered but no vehicle
// did (the ignition is off, or the adapter is not plugged into a car).
var ErrNoVehicle = errors.New("no vehicle answered")

// Report is what Probe found, in the JSON shape obd-probe prints.
type Report struct {
	Adapter       string        `json:"adapter"`
	Protocol      string        `json:"protocol"`
	VoltageV      *float64      `json:"voltage_v"`
	VIN           string        `json:"vin"`
	SupportedPIDs []string      `json:"supported_pids"`
	DTCs          []string      `json:"dtcs"`
	Samples       []ProbeSample `json:"samples"`
}

// ProbeSample is one value read, or the error that came instead. A PID with
// several values (01, 06-09 with a second bank) gives one per value.
type ProbeSample struct {
	PID   string   `json:"pid"` // two upper-case hex digits
	Name  string   `json:"name,omitempty"`
	Value *float64 `json:"value,omitempty"`
	Unit  string   `json:"unit,omitempty"`
	Error string   `json:"error,omitempty"` // the adapter's message, or what was wrong
}

// ProbeOptions tune Probe. The zero value reads one round with the default
// timeouts.
type ProbeOptions struct {
	Rounds        int           // rounds over the supported PIDs; 1 if 0
	Timeout       time.Duration // per command; DefaultTimeout if 0
	ResetTimeout  time.Duration // DefaultResetTimeout if 0
	SearchTimeout time.Duration // DefaultSearchTimeout if 0
}

// Probe runs the installer's check on an adapter: it initialises it, reads
// the voltage, finds the vehicle, its supported PIDs, VIN and stored trouble
// codes, then reads every supported PID this package decodes, one request
// each, for the given number of rounds. A failed read is reported in its
// sample, never as a value. It returns the report so far with an error when
// the adapter does not answer as an ELM327, the device fails, or (wrapping
// ErrNoVehicle) no vehicle answers.
func Probe(ctx context.Context, rw io.ReadWriter, o ProbeOptions) (*Report, error) {
	s := NewSession(rw, nil)
	defer s.Close()
	s.Timeout, s.ResetTimeout, s.SearchTimeout = o.Timeout, o.ResetTimeout, o.SearchTimeout
	r := &Report{SupportedPIDs: []string{}, DTCs: []string{}, Samples: []ProbeSample{}}
	info, err := s.Init(ctx)
	if err != nil {
		return r, fmt.Errorf("adapter: %w", err)
	}
	r.Adapter = info.Adapter
	if v, err := s.Voltage(ctx); err == nil {
		r.VoltageV = &v
	} else if !recoverable(ctx, s, err) {
		return r, err
	}
	if err := s.Connect(ctx); err != nil {
		if !recoverable(ctx, s, err) {
			return r, err
		}
		return r, fmt.Errorf("%w: %w", ErrNoVehicle, err)
	}
	r.Protocol = s.Info().Protocol
	supported, err := s.Supported(ctx)
	if err != nil && !recoverable(ctx, s, err) {
		return r, err
	}
	for _, p := range supported {
		r.SupportedPIDs = append(r.SupportedPIDs, fmt.Sprintf("%02X", p))
	}
	if vin, err := s.VIN(ctx); err == nil {
		r.VIN = vin
	} else if !recoverable(ctx, s, err) {
		return r, err
	}
	if codes, err := s.DTCs(ctx, DTCStored); err == nil {
		r.DTCs = append(r.DTCs, codes...)
	} else if !recoverable(ctx, s, err) {
		return r, err
	}
	var polled []byte
	for _, p := range supported {
		if _, ok := Lookup(p); ok {
			polled = append(polled, p)
		}
	}
	for range max(o.Rounds, 1) {
		for _, p := range polled {
			vals, _, err := s.Query(ctx, p)
			if err != nil {
				if !recoverable(ctx, s, err) {
					return r, err
				}
				r.Samples = append(r.Samples, ProbeSample{PID: fmt.Sprintf("%02X", p), Error: errorText(err)})
				continue
			}
			for _, v := range vals[p] {
				r.Samples = append(r.Samples, ProbeSample{PID: fmt.Sprintf("%02X", p), Name: v.Name, Value: &v.Value, Unit: v.Unit})
			}
		}
	}
	return r, nil
}

// recoverable does what a failed probe request calls for (a resync after a
// timeout, a new initialisation after the adapter reset itself) and reports
// whether the probe can go on.
func recoverable(ctx context.Context, s *Session, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case errors.Is(err, ErrTimeout):
		return s.Resync(ctx) == nil
	case errors.Is(err, ErrAdapter):
		if ActionFor(err) == Reinit {
			format := s.info.Format
			if _, ierr := s.Init(ctx); ierr != nil {
				return false
			}
			s.info.Format.Protocol = format.Protocol // the vehicle did not change
		}
		return true
	}
	return false
}

// errorText is what a sample says instead of a value: the adapter's message
// ("NO DATA", "CAN ERROR"), or the problem with its reply.
func errorText(err error) string {
	var ae *AdapterError
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.As(err, &ae) && slices.ContainsFunc(replyErrors, func(e replyError) bool { return e.code == ae.Code }):
		return ae.Text
	case errors.As(err, &ae):
		return ae.Code + ": " + ae.Text
	}
	return err.Error()
}
