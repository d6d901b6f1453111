package obd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/fleetgate/fleetgate/edge"
)

// ErrNoVehicle is returned by Probe when the adapter answered but no vehicle
// did (the ignition is off, or the adapter is not plugged into a car).
var ErrNoVehicle = errors.New("no vehicle answered")

// Vehicle states of a Report: edge.VehicleAnswered (an ECU answered the
// protocol search), edge.VehicleNone (UNABLE TO CONNECT, NO DATA: ignition
// off, or no vehicle), edge.VehicleBusFault (CAN ERROR, BUS ERROR, ...: the
// wiring or the bus is wrong), or VehicleUnknown.
const (
	VehicleAnswered = edge.VehicleAnswered
	VehicleNone     = edge.VehicleNone
	VehicleBusFault = edge.VehicleBusFault
	VehicleUnknown  = "unknown" // the probe did not get as far as asking
)

// Report is what Probe found, in the JSON shape obd-probe prints. It is
// complete as far as the probe got: Errors says what failed and where.
type Report struct {
	Adapter string `json:"adapter"`
	// LatencyMs is the adapter's measured round trip (Session.Latency); the
	// probe's timeouts were scaled to it.
	LatencyMs int64    `json:"latency_ms"`
	Protocol  string   `json:"protocol"`
	VoltageV  *float64 `json:"voltage_v"`
	// Supply is "missing" when ATRV read below NoSupplyVolts: the adapter
	// is not powered from the vehicle (VoltageV is then null, and says
	// nothing of the ignition).
	Supply        string        `json:"supply,omitempty"`
	Vehicle       string        `json:"vehicle"` // VehicleAnswered, VehicleNone, ...
	VIN           string        `json:"vin"`
	SupportedPIDs []string      `json:"supported_pids"`
	DTCs          []string      `json:"dtcs"`
	Samples       []ProbeSample `json:"samples"`
	Errors        []ProbeError  `json:"errors"`
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

// ProbeError is a step of the probe that failed.
type ProbeError struct {
	Step  string `json:"step"` // "open", "reset", "voltage", "search", "protocol", "pids", "vin", "dtcs"
	Error string `json:"error"`
}

// ProbeOptions tune Probe. The zero value reads one round with the default
// timeouts.
type ProbeOptions struct {
	Rounds        int           // rounds over the supported PIDs; 1 if 0
	Timeout       time.Duration // per command; DefaultTimeout if 0
	ResetTimeout  time.Duration // DefaultResetTimeout if 0
	SearchTimeout time.Duration // DefaultSearchTimeout if 0
	SearchMax     time.Duration // DefaultSearchMax if 0
	// PIDs, if not empty, are the only PIDs sampled (those the vehicle
	// supports among them).
	PIDs []byte
}

// NewReport returns an empty report, as Probe starts it.
func NewReport() *Report {
	return &Report{Vehicle: VehicleUnknown, SupportedPIDs: []string{}, DTCs: []string{}, Samples: []ProbeSample{}, Errors: []ProbeError{}}
}

// Fail notes a failed step in the report: the adapter's message, or the
// error with what the adapter sent before it.
func (r *Report) Fail(step string, err error) {
	text := errorText(err)
	if errors.Is(err, ErrTimeout) || !errors.Is(err, ErrAdapter) {
		text = err.Error()
	}
	r.Errors = append(r.Errors, ProbeError{Step: step, Error: text})
}

// Probe runs the installer's check on an adapter: it initialises it,
// measuring its latency and scaling its timeouts to it, reads the voltage,
// finds the vehicle, its protocol, supported PIDs, VIN and stored trouble
// codes, then reads every supported PID this package decodes, one request
// each, for the given number of rounds. A failed read is reported in its
// sample, never as a value; a failed step in the report's Errors, and the
// probe goes on where it can. It returns the report, always, with an error
// when the adapter does not answer as an ELM327, the device fails, the bus
// is faulty (wrapping ErrBusFault) or no vehicle answers (wrapping
// ErrNoVehicle).
func Probe(ctx context.Context, rw io.ReadWriter, o ProbeOptions) (*Report, error) {
	s := NewSession(rw, nil)
	defer s.Close()
	s.Timeout, s.ResetTimeout, s.SearchTimeout, s.SearchMax = o.Timeout, o.ResetTimeout, o.SearchTimeout, o.SearchMax
	r := NewReport()
	defer func() { r.LatencyMs = s.Latency().Milliseconds() }()
	info, err := s.Init(ctx)
	if err != nil {
		r.Fail("reset", err)
		return r, fmt.Errorf("adapter: %w", err)
	}
	r.Adapter = info.Adapter
	v, err := s.Voltage(ctx)
	switch {
	case err != nil:
		r.Fail("voltage", err)
		if !recoverable(ctx, s, err) {
			return r, err
		}
	case SupplyMissing(v):
		r.Supply = "missing"
		r.Errors = append(r.Errors, ProbeError{Step: "voltage",
			Error: fmt.Sprintf("ATRV reads %.1fV: the adapter is not powered from the vehicle (OBD pin 16)", v)})
	default:
		r.VoltageV = &v
	}
	if err := s.Connect(ctx); err != nil {
		r.Fail("search", err)
		r.Protocol = s.Info().Protocol
		switch {
		case errors.Is(err, ErrBusFault):
			r.Vehicle = VehicleBusFault
			return r, err
		case !recoverable(ctx, s, err):
			return r, err
		}
		r.Vehicle = VehicleNone
		return r, fmt.Errorf("%w: %w", ErrNoVehicle, err)
	}
	r.Vehicle = VehicleAnswered
	r.Protocol = s.Info().Protocol
	if r.Protocol == "" {
		r.Errors = append(r.Errors, ProbeError{Step: "protocol", Error: "not reported in time (ATDPN); the PIDs are read all the same"})
	}
	supported, err := s.Supported(ctx)
	if err != nil {
		r.Fail("pids", err)
		if !recoverable(ctx, s, err) {
			return r, err
		}
	}
	for _, p := range supported {
		r.SupportedPIDs = append(r.SupportedPIDs, fmt.Sprintf("%02X", p))
	}
	if vin, err := s.VIN(ctx); err == nil {
		r.VIN = vin
	} else {
		r.Fail("vin", err)
		if !recoverable(ctx, s, err) {
			return r, err
		}
	}
	if codes, err := s.DTCs(ctx, DTCStored); err == nil {
		r.DTCs = append(r.DTCs, codes...)
	} else {
		r.Fail("dtcs", err)
		if !recoverable(ctx, s, err) {
			return r, err
		}
	}
	var polled []byte
	for _, p := range supported {
		if _, ok := Lookup(p); ok && (len(o.PIDs) == 0 || slices.Contains(o.PIDs, p)) {
			polled = append(polled, p)
		}
	}
	for range max(o.Rounds, 1) {
		for _, p := range polled {
			vals, _, err := s.Query(ctx, p)
			if err != nil {
				if !recoverable(ctx, s, err) {
					r.Fail("pids", err)
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

// errorText is what a sample or a failed step says instead of a value: the
// adapter's message ("NO DATA", "CAN ERROR"), the problem with its reply,
// or the error.
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
