package firmwaresim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FaultKind names a fault a scenario injects.
type FaultKind string

// The faults. Each says which device it hits and which parameters it takes
// (see Faults for the table the scenario validator uses).
const (
	FaultUnplug       FaultKind = "unplug"        // the device vanishes; replugged after Duration (else never)
	FaultGarbage      FaultKind = "garbage"       // Bytes random bytes on the device's line, at once
	FaultBadChecksum  FaultKind = "bad_checksum"  // every GPS sentence with a wrong checksum, for Duration
	FaultBaudChange   FaultKind = "baud_change"   // the receiver switches to Baud, for Duration (else for good)
	FaultFixLoss      FaultKind = "fix_loss"      // the receiver has no fix, for Duration
	FaultClockJump    FaultKind = "clock_jump"    // the receiver's time is off by Offset, for Duration (else for good)
	FaultWeekRollover FaultKind = "week_rollover" // the receiver's dates are 1024 weeks early, for Duration (else for good)
	FaultCANError     FaultKind = "can_error"     // the adapter answers CAN ERROR
	FaultBufferFull   FaultKind = "buffer_full"   // the adapter answers BUFFER FULL
	FaultOBDReply     FaultKind = "obd_reply"     // the adapter answers Reply (NO DATA, STOPPED, ?, ...)
	FaultIgnitionOff  FaultKind = "ignition_off"  // the driver pulls over and switches off, for Duration (else for good)
	FaultDTC          FaultKind = "dtc"           // trouble code Code is stored, cleared after Duration (else kept)
	FaultDTCClear     FaultKind = "dtc_clear"     // trouble code Code (or every code) is cleared
	FaultUplinkDown   FaultKind = "uplink_down"   // the agent's network is down for Duration (see Fault)
)

// Device names the emulated device a fault hits.
type Device string

// The devices of a vehicle. DeviceVehicle is the vehicle itself (engine,
// trouble codes); DeviceUplink the agent's network link.
const (
	DeviceGPS     Device = "gps"
	DeviceOBD     Device = "obd"
	DeviceVehicle Device = "vehicle"
	DeviceUplink  Device = "uplink"
)

// WeekRollover is how early a receiver with the GPS week-number rollover bug
// dates its fixes: 1024 weeks.
const WeekRollover = 1024 * 7 * 24 * time.Hour

// Fault is one injected fault of a scenario's timeline. Times are simulated,
// counted from the start of the drive.
//
// The simulator cannot cut the network of the agent under test by itself;
// FaultUplinkDown is recorded in the ground truth (for a test harness to act
// on), and carried out by the simulator's uplink proxy when the agent
// connects to its broker through it.
type Fault struct {
	Kind    FaultKind
	Vehicle string // "" hits every vehicle
	Device  Device // for unplug and garbage: DeviceGPS or DeviceOBD; otherwise implied by Kind
	At      time.Duration
	// Duration: how long the fault lasts; 0 means at once (garbage,
	// dtc_clear), for good, or for Count requests, as the kind says.
	Duration time.Duration
	Count    int           // OBD reply faults: the next Count requests (0: for Duration)
	Bytes    int           // garbage
	Baud     int           // baud_change
	Offset   time.Duration // clock_jump
	Reply    string        // obd_reply
	Code     string        // dtc, dtc_clear
}

// FaultSpec describes a fault kind: the devices it may hit (the first is the
// default) and the parameters it takes.
type FaultSpec struct {
	Kind     FaultKind
	Devices  []Device
	Params   []string // allowed: "duration", "count", "bytes", "baud", "offset", "reply", "code"
	Required []string
	Doc      string
}

// Faults lists every fault kind, in the order the documentation gives them.
var Faults = []FaultSpec{
	{FaultUnplug, []Device{DeviceOBD, DeviceGPS}, []string{"duration"}, nil, "the device vanishes (the pty and its link are removed, a TCP port stops listening); replugged as a new device after duration, else never"},
	{FaultGarbage, []Device{DeviceGPS, DeviceOBD}, []string{"bytes"}, nil, "bytes (default 64) random bytes on the line, none of them '$', '!' or '>', then CR LF"},
	{FaultBadChecksum, []Device{DeviceGPS}, []string{"duration"}, []string{"duration"}, "every sentence carries a wrong checksum"},
	{FaultBaudChange, []Device{DeviceGPS}, []string{"baud", "duration"}, []string{"baud"}, "the receiver talks at baud; a client at another speed reads garbage; back after duration, else for good"},
	{FaultFixLoss, []Device{DeviceGPS}, []string{"duration"}, []string{"duration"}, "no fix (RMC V, GGA quality 0), as under a bridge or in a car park"},
	{FaultClockJump, []Device{DeviceGPS}, []string{"offset", "duration"}, []string{"offset"}, "the receiver's UTC time is off by offset (may be negative); back after duration, else for good"},
	{FaultWeekRollover, []Device{DeviceGPS}, []string{"duration"}, nil, "dates 1024 weeks early, as firmware with the week-number rollover bug; back after duration, else for good"},
	{FaultCANError, []Device{DeviceOBD}, []string{"count", "duration"}, nil, "OBD requests get CAN ERROR: the next count, or all for duration"},
	{FaultBufferFull, []Device{DeviceOBD}, []string{"count", "duration"}, nil, "OBD requests get BUFFER FULL: the next count, or all for duration"},
	{FaultOBDReply, []Device{DeviceOBD}, []string{"reply", "count", "duration"}, []string{"reply"}, "OBD requests get reply (NO DATA, STOPPED, ?, BUS BUSY...): the next count, or all for duration"},
	{FaultIgnitionOff, []Device{DeviceVehicle}, []string{"duration"}, nil, "the driver pulls over and switches the engine off; cranks it again after duration, else never"},
	{FaultDTC, []Device{DeviceVehicle}, []string{"code", "duration"}, []string{"code"}, "trouble code code is stored and the MIL lit; cleared after duration, else kept"},
	{FaultDTCClear, []Device{DeviceVehicle}, []string{"code"}, nil, "trouble code code (every code when none is given) is cleared"},
	{FaultUplinkDown, []Device{DeviceUplink}, []string{"duration"}, []string{"duration"}, "the agent's network is down: recorded in the truth and, when the agent connects through the simulator's uplink proxy, carried out there"},
}

// Spec returns the description of kind, and false for an unknown kind.
func Spec(kind FaultKind) (FaultSpec, bool) {
	i := slices.IndexFunc(Faults, func(s FaultSpec) bool { return s.Kind == kind })
	if i < 0 {
		return FaultSpec{}, false
	}
	return Faults[i], true
}

// FaultKinds returns the names of every kind, comma-separated.
func FaultKinds() string {
	var names []string
	for _, s := range Faults {
		names = append(names, string(s.Kind))
	}
	return strings.Join(names, ", ")
}

// Lasts reports whether the fault has an end to report: a Duration, or a
// lasting state without one (it ends with the drive).
func (f Fault) Lasts() bool {
	switch f.Kind {
	case FaultGarbage, FaultDTCClear:
		return false
	case FaultCANError, FaultBufferFull, FaultOBDReply:
		return f.Count == 0
	}
	return true
}

// End returns when the fault ends, and false if it lasts to the end of the
// drive or has no length.
func (f Fault) End() (time.Duration, bool) {
	if !f.Lasts() || f.Duration <= 0 {
		return 0, false
	}
	return f.At + f.Duration, true
}

// Active reports whether a lasting fault is in force at offset t from the start.
func (f Fault) Active(t time.Duration) bool {
	if !f.Lasts() || t < f.At {
		return false
	}
	end, ok := f.End()
	return !ok || t < end
}

// String describes the fault in a few words, for logs.
func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", f.Kind)
	if f.Device != "" {
		fmt.Fprintf(&b, " %s", f.Device)
	}
	if f.Vehicle != "" {
		fmt.Fprintf(&b, " of %s", f.Vehicle)
	}
	fmt.Fprintf(&b, " at +%v", f.At)
	if f.Duration > 0 {
		fmt.Fprintf(&b, " for %v", f.Duration)
	}
	return b.String()
}

// VehicleEvents turns the faults that act on the vehicle model (ignition
// off, trouble codes) into the halts and trouble code events of its Config,
// for a drive starting at start. faults must be in time order.
func VehicleEvents(faults []Fault, start time.Time) ([]Halt, []DTCEvent) {
	var halts []Halt
	var dtcs []DTCEvent
	for _, f := range faults {
		at := start.Add(f.At)
		switch f.Kind {
		case FaultIgnitionOff:
			d := f.Duration
			if d <= 0 {
				d = 1 << 62 // for good
			}
			halts = append(halts, Halt{At: at, For: d, EngineOff: true})
		case FaultDTC:
			dtcs = append(dtcs, DTCEvent{At: at, Code: f.Code})
			if f.Duration > 0 {
				dtcs = append(dtcs, DTCEvent{At: at.Add(f.Duration), Code: f.Code, Clear: true})
			}
		case FaultDTCClear:
			dtcs = append(dtcs, DTCEvent{At: at, Code: f.Code, Clear: true})
		}
	}
	slices.SortStableFunc(dtcs, func(a, b DTCEvent) int { return a.At.Compare(b.At) })
	return halts, dtcs
}

// Phase says what a Mark of the timeline is: a lasting fault beginning or
// ending, or a fault that happens at once.
type Phase string

// The phases.
const (
	PhaseBegin   Phase = "begin"
	PhaseEnd     Phase = "end"
	PhaseInstant Phase = "instant"
)

// Mark is a moment of a fault timeline.
type Mark struct {
	At    time.Duration // from the start
	Phase Phase
	Fault Fault
}

// Timeline returns the marks of faults in time order; at the same time, ends
// come before instants and instants before beginnings, each in the order of
// faults.
func Timeline(faults []Fault) []Mark {
	var marks []Mark
	for _, f := range faults {
		if !f.Lasts() {
			marks = append(marks, Mark{At: f.At, Phase: PhaseInstant, Fault: f})
			continue
		}
		marks = append(marks, Mark{At: f.At, Phase: PhaseBegin, Fault: f})
		if end, ok := f.End(); ok {
			marks = append(marks, Mark{At: end, Phase: PhaseEnd, Fault: f})
		}
	}
	order := map[Phase]int{PhaseEnd: 0, PhaseInstant: 1, PhaseBegin: 2}
	slices.SortStableFunc(marks, func(a, b Mark) int {
		if c := a.At - b.At; c != 0 {
			return int(max(-1, min(1, c)))
		}
		return order[a.Phase] - order[b.Phase]
	})
	return marks
}
