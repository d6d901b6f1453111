package obd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Source defaults.
const (
	DefaultMaxTimeouts     = 3 // timeouts in a row before the device is reopened
	DefaultMaxBusErrors    = 5 // back-off replies in a row before a re-init
	DefaultOffInterval     = 30 * time.Second
	DefaultVoltageInterval = 10 * time.Second
	DefaultDTCInterval     = time.Minute
	maxReinits             = 3 // re-inits in a row without a value before the device is reopened
)

// errReinit ends a poller so that the session initialises the adapter again.
var errReinit = errors.New("adapter needs re-initialising")

// Source reads an engine through an ELM327 and implements edge.Source. For
// each (re)opened device it initialises the adapter (Session.Init), lets it
// find the vehicle (Session.Connect) and the PIDs the ECUs support
// (Session.Supported), reads the VIN and the trouble codes, then polls the
// configured PIDs that are supported, each at its own interval, several in
// one request on CAN. It sends an OBD record per value read and events:
// ignition on and off (see Ignition), DTC set and cleared (code: the
// trouble code; detail: stored, pending or permanent), VIN read and changed
// (code: the VIN; detail: the previous one).
//
// Every failed request is counted (obd.errors.<code>) and handled as
// ActionFor says: counted, retried once, backed off from, or followed by a
// re-initialisation or a resynchronisation. MaxTimeouts timeouts in a row,
// a read or write error, or repeated re-initialisations without a value end
// the session, and the device is reopened with backoff.
type Source struct {
	Device   edge.Device
	PIDs     []byte        // Mode 01 PIDs polled every Interval
	Interval time.Duration // default 1s
	Polls    []Poll        // more PIDs, or the same ones at their own interval (these win)

	Timeout       time.Duration // per command; DefaultTimeout if 0
	ResetTimeout  time.Duration // ATZ; DefaultResetTimeout if 0
	SearchTimeout time.Duration // the protocol search; DefaultSearchTimeout if 0
	MaxTimeouts   int           // DefaultMaxTimeouts if 0
	MaxBusErrors  int           // DefaultMaxBusErrors if 0

	OffInterval     time.Duration // ignition off: how often to look again; DefaultOffInterval if 0
	VoltageInterval time.Duration // ATRV while polling; DefaultVoltageInterval if 0
	DTCInterval     time.Duration // trouble codes (and the VIN until read); DefaultDTCInterval if 0, never if negative
	NoVIN           bool          // do not read the VIN
	OnVoltage       float64       // see Ignition; DefaultOnVoltage if 0
	OffAfter        int           // see Ignition; DefaultOffAfter if 0

	Backoff    edge.Backoff // between device reopens
	BusBackoff edge.Backoff // after CAN ERROR and the like; 200ms to 5s if zero
	Logger     *slog.Logger
	Counters   *edge.Counters
	Now        func() time.Time // the agent clock, for records; nil means time.Now
	// Clock, if set, stamps the records (see edge.Clock); nil: the
	// system clock.
	Clock *edge.Clock

	cmd commands // SetPIDs and ReadDTCs, on their way to the poller

	mu    sync.Mutex
	state edge.AdapterState

	// What the Source knows across sessions; only Run's goroutine uses it.
	ign  Ignition
	vin  string
	dtcs map[byte][]string // last codes read, by mode
}

var (
	_ edge.Source          = (*Source)(nil)
	_ edge.AdapterReporter = (*Source)(nil)
)

// AdapterState returns what the Source knows of the adapter and the bus:
// whether the last protocol search found a vehicle, none, or a faulty bus,
// and whether the adapter reads no supply voltage. Safe for concurrent use.
func (s *Source) AdapterState() edge.AdapterState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Run reads until ctx is done and returns ctx.Err(). It returns early for a
// PID it cannot decode or an interval that is not positive, or an open error
// that is not transient.
func (s *Source) Run(ctx context.Context, out chan<- edge.Record) error {
	polls, err := s.polls()
	if err != nil {
		return fmt.Errorf("obd: %w", err)
	}
	s.ign = Ignition{OnVoltage: s.OnVoltage, OffAfter: s.OffAfter}
	s.dtcs = map[byte][]string{}
	s.cmd.init()
	loop := edge.DeviceLoop{Device: s.Device, Name: "obd", Backoff: s.Backoff, Logger: s.Logger, Counters: s.Counters, Now: s.Now, Clock: s.Clock}
	return loop.Run(ctx, out, func(ctx context.Context, rw io.ReadWriter) error { return s.session(ctx, rw, out, polls) })
}

// polls merges PIDs (at Interval) and Polls.
func (s *Source) polls() ([]Poll, error) {
	every := or(s.Interval, time.Second)
	var out []Poll
	for _, p := range s.PIDs {
		out = append(out, Poll{PID: p, Every: every})
	}
	for _, p := range s.Polls {
		if i := slices.IndexFunc(out, func(q Poll) bool { return q.PID == p.PID }); i >= 0 {
			out[i].Every = p.Every
		} else {
			out = append(out, p)
		}
	}
	for _, p := range out {
		if _, ok := Lookup(p.PID); !ok {
			return nil, fmt.Errorf("PID %02X is not in the decode table", p.PID)
		}
		if p.Every <= 0 {
			return nil, fmt.Errorf("PID %02X: interval %v is not positive", p.PID, p.Every)
		}
	}
	return out, nil
}

func (s *Source) session(ctx context.Context, rw io.ReadWriter, out chan<- edge.Record, polls []Poll) error {
	sess := NewSession(rw, s.Counters)
	defer sess.Close()
	sess.Timeout, sess.ResetTimeout, sess.SearchTimeout, sess.Now = s.Timeout, s.ResetTimeout, s.SearchTimeout, s.Now
	fruitless := 0
	for {
		p := &poller{src: s, sess: sess, out: out, configured: polls, polls: s.activePolls(polls), log: s.logger()}
		p.busBackoff = s.BusBackoff
		if p.busBackoff.Min <= 0 && p.busBackoff.Max <= 0 {
			p.busBackoff = edge.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
		}
		err := p.run(ctx)
		if !errors.Is(err, errReinit) {
			return err
		}
		s.inc("reinits")
		if p.values > 0 {
			fruitless = 0
		}
		if fruitless++; fruitless > maxReinits {
			return fmt.Errorf("%d re-initialisations without a value: %w", fruitless, err)
		}
		p.log.Debug("re-initialising the adapter", "err", err)
	}
}

func (s *Source) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) inc(name string) {
	if s.Counters != nil {
		s.Counters.Inc("obd." + name)
	}
}

// poller is one initialised adapter: from Init to the next re-init.
type poller struct {
	src        *Source
	sess       *Session
	out        chan<- edge.Record
	configured []Poll // from the configuration
	polls      []Poll // what is polled: configured, or the commanded set
	supported  []byte // what the vehicle said it supports; nil: unknown
	log        *slog.Logger

	sched      *schedule
	connected  bool // Connect succeeded: protocol and supported PIDs known
	multi      bool // multi-PID requests work (CAN, and not refused yet)
	voltAt     time.Time
	infoAt     time.Time // when to read trouble codes (and the VIN) next
	vinRead    bool
	noDTC      map[byte]bool // modes the vehicle refused
	noDataDTC  map[byte]int  // NO DATA in a row, by mode
	timeouts   int
	busErrors  int
	busBackoff edge.Backoff
	values     int // values read since Init
}

func (p *poller) run(ctx context.Context) error {
	s := p.src
	info, err := p.sess.Init(ctx)
	if err != nil {
		if errors.Is(err, ErrAdapter) && ActionFor(err) == Reinit {
			return fmt.Errorf("init: %w: %w", errReinit, err)
		}
		return fmt.Errorf("init: %w", err)
	}
	p.log.Info("obd adapter ready", "adapter", info.Adapter, "headers", info.Format.Headers)
	now := time.Now()
	p.sched = newSchedule(p.polls, now)
	p.noDTC, p.noDataDTC = map[byte]bool{}, map[byte]int{}
	p.voltAt, p.infoAt = now, now

	ev := Evidence{}
	if err := p.voltage(ctx, &ev); err != nil {
		return err
	}
	if err := p.connect(ctx, &ev); err != nil {
		return err
	}
	for {
		if s.ign.State() == IgnitionOff {
			if err := p.offCheck(ctx); err != nil {
				return err
			}
			if s.ign.State() == IgnitionOff {
				if err := p.wait(ctx, or(s.OffInterval, DefaultOffInterval)); err != nil {
					return err
				}
			}
			continue
		}
		if err := p.round(ctx); err != nil {
			return err
		}
		if err := p.waitNext(ctx); err != nil {
			return err
		}
	}
}

// connect runs the protocol search and, when a vehicle answered, the
// discovery, and reads the VIN and trouble codes. A vehicle that does not
// answer is not an error: the PIDs are then polled as configured, and the
// ignition inference decides when to look again.
func (p *poller) connect(ctx context.Context, ev *Evidence) error {
	err := p.sess.Connect(ctx)
	if err != nil {
		if !errors.Is(err, ErrAdapter) {
			return p.settle(ctx, err, false)
		}
		if ActionFor(err) == Reinit {
			return p.settle(ctx, err, false)
		}
		var ae *AdapterError
		errors.As(err, &ae)
		if errors.Is(err, ErrBusFault) {
			// The wiring or the bus: it says nothing of the engine.
			p.log.Warn("OBD bus fault at the protocol search: check the wiring and the bus", "reply", ae.Text)
			return p.vehicle(ctx, edge.VehicleBusFault, ae.Text)
		}
		p.log.Debug("no vehicle answered the protocol search", "err", err)
		ev.Silent = true
		return p.vehicle(ctx, edge.VehicleNone, ae.Text)
	}
	p.connected = true
	ev.Answered = true
	if err := p.vehicle(ctx, edge.VehicleAnswered, ""); err != nil {
		return err
	}
	info := p.sess.Info()
	p.multi = info.Format.CAN()
	supported, err := p.sess.Supported(ctx)
	if err != nil {
		if serr := p.settle(ctx, err, false); serr != nil {
			return serr
		}
		p.log.Warn("supported PIDs unknown; polling the configured ones", "err", err)
	} else {
		p.supported = supported
		if dropped := p.sched.keep(supported); len(dropped) > 0 {
			p.src.inc("pids_unsupported")
			p.log.Warn("configured PIDs the vehicle does not support are not polled", "pids", fmt.Sprintf("% X", dropped))
		}
	}
	p.log.Info("vehicle connected", "protocol", info.Protocol, "supported", fmt.Sprintf("% X", supported))
	return p.vehicleInfo(ctx)
}

// round polls the PIDs that are due, then feeds the ignition inference.
func (p *poller) round(ctx context.Context) error {
	now := time.Now()
	ev := Evidence{}
	if !now.Before(p.voltAt) {
		if err := p.voltage(ctx, &ev); err != nil {
			return err
		}
	}
	due := p.sched.due(now)
	res := &results{got: map[byte]bool{}, refused: map[byte]bool{}}
	for _, g := range p.groups(due) {
		if err := p.ask(ctx, g, &ev, res); err != nil {
			return err
		}
	}
	for _, it := range due {
		it.done(now)
		if !ev.Answered || !(res.got[it.PID] || res.refused[it.PID]) {
			continue // only a refusal while other PIDs answer says "claimed, not answered"
		}
		if it.answered(res.got[it.PID]) {
			if it.muted {
				p.src.inc("unanswered_pids")
				p.log.Warn("PID claimed but not answered; asking it rarely", "pid", fmt.Sprintf("%02X", it.PID), "every", it.interval())
			} else {
				p.log.Info("PID answers again", "pid", fmt.Sprintf("%02X", it.PID))
			}
		}
	}
	if len(due) > 0 {
		ev.Silent = ev.Silent && !ev.Answered
		if ev.Silent && !ev.HasVolts {
			// No ECU answered: the voltage tells a stopped engine from a
			// bus that is failing under a running one.
			if err := p.voltage(ctx, &ev); err != nil {
				return err
			}
		}
		if err := p.observe(ctx, ev); err != nil {
			return err
		}
	}
	if ev.Answered && !p.connected {
		// An ECU answers after a search that found none or met a faulty
		// bus: find the protocol and the PIDs now.
		return p.connect(ctx, &Evidence{})
	}
	if ev.Answered && !time.Now().Before(p.infoAt) {
		return p.vehicleInfo(ctx)
	}
	return nil
}

// groups cuts the due PIDs into requests: up to six fixed-length PIDs per
// request on CAN while multi-PID requests work; one PID per request
// otherwise, and always for unanswered and variable-length PIDs.
func (p *poller) groups(due []*pollItem) [][]byte {
	multi := p.multi && p.sess.Info().Format.CAN()
	var out [][]byte
	var cur []byte
	for _, it := range due {
		pid, _ := Lookup(it.PID)
		if !multi || it.muted || pid.Bytes != pid.MaxBytes {
			out = append(out, []byte{it.PID})
			continue
		}
		if cur = append(cur, it.PID); len(cur) == 6 {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// results are what one round's requests got, by PID: answered, or refused
// (NO DATA, a negative response) while the request went through.
type results struct {
	got, refused map[byte]bool
}

// refusal notes a single-PID request the ECUs did not answer.
func (r *results) refusal(pids []byte, err error) {
	var ae *AdapterError
	if len(pids) == 1 && errors.As(err, &ae) && (ae.Code == "no_data" || ae.Code == "negative_response") {
		r.refused[pids[0]] = true
	}
}

// ask requests pids in one request and sends a record per value. A
// multi-PID request that the adapter or ECU did not fully answer is followed
// by single requests for the PIDs missing; if those answer and the multi-PID
// request was refused (a partial answer, "?", NO DATA) rather than lost on
// the way (BUFFER FULL, STOPPED, ...), multi-PID requests are given up for
// this session. A single request whose reply was lost on the way
// (ActionFor says Retry) is asked once more. A reply that comes after its
// request timed out is still its answer (see Session.Resync).
func (p *poller) ask(ctx context.Context, pids []byte, ev *Evidence, res *results) error {
	vals, at, err := p.sess.Query(ctx, pids...)
	if err != nil {
		res.refusal(pids, err)
		if serr := p.settle(ctx, err, true); serr != nil {
			return serr
		}
		vals, at, err = p.late(pids, err)
	}
	if err != nil {
		a := ActionFor(err)
		if a == BackOff || a == Resync {
			markSilent(ev, err)
			return nil
		}
		if len(pids) == 1 {
			if a != Retry {
				markSilent(ev, err)
				return nil
			}
			p.src.inc("retries")
			if vals, at, err = p.sess.Query(ctx, pids...); err != nil {
				res.refusal(pids, err)
				if serr := p.settle(ctx, err, true); serr != nil {
					return serr
				}
				if vals, at, err = p.late(pids, err); err != nil {
					markSilent(ev, err)
					return nil
				}
			}
		}
	}
	if err == nil {
		if err := p.emit(ctx, pids, vals, at, ev, res.got); err != nil {
			return err
		}
	}
	if len(pids) == 1 {
		return nil
	}
	// Did the adapter or the ECU refuse the multi-PID request as such (a
	// partial answer, "?", NO DATA), rather than lose it on the way?
	var ae *AdapterError
	refused := err == nil || (errors.As(err, &ae) && (ae.Code == "unknown_command" || ae.Code == "no_data" || ae.Code == "negative_response"))
	singles := false
	for _, pid := range pids {
		if res.got[pid] {
			continue
		}
		vals, at, err := p.sess.Query(ctx, pid)
		if err != nil {
			res.refusal([]byte{pid}, err)
			if serr := p.settle(ctx, err, true); serr != nil {
				return serr
			}
			if vals, at, err = p.late([]byte{pid}, err); err != nil {
				markSilent(ev, err)
				continue
			}
		}
		singles = true
		if err := p.emit(ctx, []byte{pid}, vals, at, ev, res.got); err != nil {
			return err
		}
	}
	if singles && refused {
		p.multi = false
		p.src.inc("multi_fallbacks")
		p.log.Info("multi-PID requests not answered in full; asking one PID per request", "pids", fmt.Sprintf("% X", pids))
	}
	return nil
}

// late returns, after a Query of pids failed with err and settle did what
// it called for, the values of its reply if it came after a timeout
// (Session.LateQuery); else err.
func (p *poller) late(pids []byte, err error) (map[byte][]Value, time.Time, error) {
	if errors.Is(err, ErrTimeout) {
		if vals, at, ok := p.sess.LateQuery(pids...); ok {
			return vals, at, nil
		}
	}
	return nil, time.Time{}, err
}

// emit sends a record per PID answered (its primary value), in request order.
func (p *poller) emit(ctx context.Context, pids []byte, vals map[byte][]Value, at time.Time, ev *Evidence, got map[byte]bool) error {
	for _, pid := range pids {
		vs, ok := vals[pid]
		if !ok {
			continue
		}
		got[pid] = true
		ev.Answered = true
		p.values++
		p.timeouts, p.busErrors = 0, 0
		p.busBackoff.Reset()
		if pid == 0x0C {
			ev.HasRPM, ev.RPM = true, vs[0].Value
		}
		rec := edge.OBDRecord(telemetry.OBDSample{PID: 0x0100 | uint16(pid), Value: vs[0].Value}).Stamped(p.src.Clock.Stamp(at))
		if err := edge.Send(ctx, p.out, rec); err != nil {
			return err
		}
		p.src.inc("samples")
	}
	return nil
}

// markSilent notes in ev that a request got no answer from any ECU. A bus
// fault (CAN ERROR, BUS ERROR, ...) is not silence: the bus cannot carry an
// answer, whether the engine runs or not.
func markSilent(ev *Evidence, err error) {
	var ae *AdapterError
	if errors.Is(err, ErrTimeout) {
		ev.Silent = true
	} else if errors.As(err, &ae) {
		switch ae.Code {
		case "no_data", "unable_to_connect":
			ev.Silent = true
		}
	}
}

// vehicle records what the protocol search found and sends an
// EventOBDAdapter when it changed (not for a vehicle found at the first
// look).
func (p *poller) vehicle(ctx context.Context, state, detail string) error {
	s := p.src
	s.mu.Lock()
	st := s.state
	changed := st.Vehicle != state || (state != edge.VehicleAnswered && st.Detail != detail)
	if changed {
		s.state.Vehicle, s.state.Detail, s.state.Since = state, detail, s.now()
	}
	s.mu.Unlock()
	if !changed || st.Vehicle == "" && state == edge.VehicleAnswered {
		return nil // a vehicle found at the first look is no news
	}
	return p.event(ctx, telemetry.Event{Type: telemetry.EventOBDAdapter, Code: state, Detail: detail})
}

// supply records whether the adapter reads a supply voltage and sends an
// EventOBDAdapter ("supply_missing", "supply_ok") when it changed.
func (p *poller) supply(ctx context.Context, volts float64) error {
	s := p.src
	missing := SupplyMissing(volts)
	s.mu.Lock()
	changed := s.state.SupplyMissing != missing
	s.state.SupplyMissing = missing
	s.mu.Unlock()
	if !changed {
		return nil
	}
	code := "supply_ok"
	if missing {
		code = "supply_missing"
		s.inc("no_supply")
		p.log.Warn("the adapter reads no supply voltage: it is not powered from the vehicle (OBD pin 16)", "volts", volts)
	}
	return p.event(ctx, telemetry.Event{Type: telemetry.EventOBDAdapter, Code: code, Detail: fmt.Sprintf("ATRV %.1fV", volts)})
}

// settle does what err calls for (ActionFor) and returns an error only when
// the poller must stop: errReinit (wrapped), too many timeouts in a row, a
// failed device, or ctx done. backoff says whether back-off replies count
// towards a re-init and wait; they do not while looking for a vehicle.
func (p *poller) settle(ctx context.Context, err error, backoff bool) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrAdapter) {
		return err // the device failed
	}
	switch ActionFor(err) {
	case Resync:
		for {
			p.timeouts++
			max := or2(p.src.MaxTimeouts, DefaultMaxTimeouts)
			if p.timeouts >= max {
				return fmt.Errorf("%d commands in a row timed out: %w", p.timeouts, err)
			}
			rerr := p.sess.Resync(ctx)
			if rerr == nil {
				return nil
			}
			if !errors.Is(rerr, ErrTimeout) {
				return rerr
			}
		}
	case Reinit:
		return fmt.Errorf("%w: %w", errReinit, err)
	case BackOff:
		p.timeouts = 0
		if !backoff {
			return nil
		}
		p.busErrors++
		if p.busErrors >= or2(p.src.MaxBusErrors, DefaultMaxBusErrors) {
			return fmt.Errorf("%w: %d bus errors in a row: %w", errReinit, p.busErrors, err)
		}
		p.src.inc("backoffs")
		return edge.Sleep(ctx, p.busBackoff.Next())
	}
	p.timeouts = 0
	return nil
}

func or2(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// voltage reads ATRV into ev and schedules the next reading.
func (p *poller) voltage(ctx context.Context, ev *Evidence) error {
	p.voltAt = time.Now().Add(or(p.src.VoltageInterval, DefaultVoltageInterval))
	v, err := p.sess.Voltage(ctx)
	if err != nil {
		return p.settle(ctx, err, false)
	}
	if err := p.supply(ctx, v); err != nil {
		return err
	}
	if !SupplyMissing(v) {
		ev.HasVolts, ev.Volts = true, v // 0.0V is no reading of the battery
	}
	return nil
}

// offCheck is the look at the vehicle while the ignition is off: the
// voltage, then the protocol search if no vehicle was found yet, else the
// engine speed (when 0C is polled) or the support bitmap.
func (p *poller) offCheck(ctx context.Context) error {
	ev := Evidence{}
	if err := p.voltage(ctx, &ev); err != nil {
		return err
	}
	if !p.connected {
		if err := p.connect(ctx, &ev); err != nil {
			return err
		}
	}
	if p.connected {
		var err error
		if p.sched.has(0x0C) {
			err = p.ask(ctx, []byte{0x0C}, &ev, &results{got: map[byte]bool{}, refused: map[byte]bool{}})
		} else if _, _, rerr := p.sess.Request(ctx, "0100"); rerr != nil {
			markSilent(&ev, rerr)
			err = p.settle(ctx, rerr, false)
		} else {
			ev.Answered = true
		}
		if err != nil {
			return err
		}
	}
	ev.Silent = !ev.Answered
	return p.observe(ctx, ev)
}

// observe feeds the ignition inference and sends its events.
func (p *poller) observe(ctx context.Context, ev Evidence) error {
	s := p.src
	old := s.ign.State()
	state, changed := s.ign.Observe(ev)
	if !changed {
		return nil
	}
	p.log.Info("ignition "+state.String(), "evidence", ev.String())
	var typ telemetry.EventType
	switch {
	case state == IgnitionOn:
		typ = telemetry.EventIgnitionOn
		if old == IgnitionOff {
			// Read the VIN and the codes again: it may be another vehicle.
			p.infoAt, p.vinRead = time.Now(), false
		}
	case old == IgnitionOn:
		typ = telemetry.EventIgnitionOff
	default:
		return nil // unknown to off: nothing happened that we saw
	}
	return p.event(ctx, telemetry.Event{Type: typ, Code: "obd", Detail: ev.String()})
}

// vehicleInfo reads the VIN (until read once per session and ignition-on)
// and the trouble codes, and schedules the next reading.
func (p *poller) vehicleInfo(ctx context.Context) error {
	s := p.src
	if s.DTCInterval < 0 && (s.NoVIN || p.vinRead) {
		p.infoAt = time.Now().Add(24 * time.Hour)
		return nil
	}
	p.infoAt = time.Now().Add(or(s.DTCInterval, DefaultDTCInterval))
	if !s.NoVIN && !p.vinRead {
		vin, err := p.sess.VIN(ctx)
		if err != nil {
			if serr := p.settle(ctx, err, false); serr != nil {
				return serr
			}
			if errors.Is(err, ErrTimeout) {
				if late, ok := p.sess.LateVIN(); ok {
					vin, err, p.timeouts = late, nil, 0
				}
			}
		}
		if err == nil {
			p.vinRead = true
			s.inc("vin_reads")
			if err := p.sawVIN(ctx, vin); err != nil {
				return err
			}
		}
	}
	if s.DTCInterval < 0 {
		return nil
	}
	for _, mode := range []byte{DTCStored, DTCPending, DTCPermanent} {
		if p.noDTC[mode] {
			continue
		}
		codes, err := p.sess.DTCs(ctx, mode)
		if errors.Is(err, ErrTimeout) {
			if serr := p.settle(ctx, err, false); serr != nil {
				return serr
			}
			late, ok := p.sess.LateDTCs(mode)
			if !ok {
				continue
			}
			codes, err, p.timeouts = late, nil, 0
		}
		if err != nil {
			var ae *AdapterError
			switch {
			case !errors.As(err, &ae):
				if serr := p.settle(ctx, err, false); serr != nil {
					return serr
				}
				continue
			case ae.Code == "negative_response" || ae.Code == "unknown_command":
				p.noDTC[mode] = true
				continue
			case ae.Code == "no_data":
				// Some ECUs answer NO DATA instead of "no codes"; a single
				// NO DATA may also be a lost reply. Twice in a row while
				// the ECU answers Mode 01 means none.
				if p.noDataDTC[mode]++; p.noDataDTC[mode] < 2 {
					continue
				}
				codes, err = []string{}, nil
			default:
				if serr := p.settle(ctx, err, false); serr != nil {
					return serr
				}
				continue
			}
		} else {
			p.noDataDTC[mode] = 0
		}
		s.inc("dtc_reads")
		if err := p.sawDTCs(ctx, mode, codes); err != nil {
			return err
		}
	}
	return nil
}

// sawDTCs compares the codes of one mode with the last reading and sends
// DTC set / cleared events. The first reading sets every code it holds.
func (p *poller) sawDTCs(ctx context.Context, mode byte, codes []string) error {
	s := p.src
	old, known := s.dtcs[mode]
	s.dtcs[mode] = codes
	kind := DTCKind(mode)
	for _, c := range codes {
		if !slices.Contains(old, c) {
			if err := p.event(ctx, telemetry.Event{Type: telemetry.EventDTCSet, Code: c, Detail: kind}); err != nil {
				return err
			}
		}
	}
	if !known {
		return nil
	}
	for _, c := range old {
		if !slices.Contains(codes, c) {
			if err := p.event(ctx, telemetry.Event{Type: telemetry.EventDTCCleared, Code: c, Detail: kind}); err != nil {
				return err
			}
		}
	}
	return nil
}

// sawVIN sends VIN read (the first VIN this Source sees) or VIN changed.
func (p *poller) sawVIN(ctx context.Context, vin string) error {
	s := p.src
	switch s.vin {
	case vin:
		return nil
	case "":
		s.vin = vin
		p.log.Info("VIN read", "vin", vin)
		return p.event(ctx, telemetry.Event{Type: telemetry.EventVINRead, Code: vin})
	default:
		old := s.vin
		s.vin = vin
		p.log.Warn("VIN changed", "vin", vin, "old", old)
		return p.event(ctx, telemetry.Event{Type: telemetry.EventVINChanged, Code: vin, Detail: old})
	}
}

func (p *poller) event(ctx context.Context, e telemetry.Event) error {
	return edge.Send(ctx, p.out, edge.EventRecord(e).Stamped(p.src.Clock.Stamp(p.src.now())))
}

// waitNext sleeps until the next PID is due (or the next voltage reading,
// when sooner).
func (p *poller) waitNext(ctx context.Context) error {
	next := p.sched.nextAt()
	if next.IsZero() || p.voltAt.Before(next) {
		next = p.voltAt
	}
	return p.wait(ctx, time.Until(next))
}
