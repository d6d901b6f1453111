// Package scenario reads the simulator's scenario files: YAML that names
// the vehicles, their routes, receivers and ports, the drive's seed, start
// and duration, and a timeline of faults. Errors name the file, line and
// column. Built-in scenarios are embedded.
package scenario

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/gps"
)

// Scenario is a validated scenario: everything a run needs but the ports.
type Scenario struct {
	Name        string
	Description string
	Seed        uint64
	Start       string        // "now" or RFC 3339
	Duration    time.Duration // simulated; 0 drives until interrupted (only from flags)
	Speed       float64       // simulated seconds per real second; 0 when the file does not say
	// Uplink is the broker URL the simulator's uplink proxy forwards to
	// ("" runs no proxy); see firmwaresim.FaultUplinkDown.
	Uplink   string
	Vehicles []Vehicle
	// Faults are in time order; Vehicle is "" for those that hit every
	// vehicle.
	Faults []firmwaresim.Fault
	// Set names the top-level settings the file gave, so that command-line
	// flags given explicitly can override the others.
	Set map[string]bool
}

// Vehicle is one vehicle of a scenario.
type Vehicle struct {
	ID    string
	Route *firmwaresim.Route
	VIN   string // "" for a seeded one
	GPS   GPS
	OBD   Port
	Stops []Stop
}

// GPS is a vehicle's receiver and its port.
type GPS struct {
	Port
	Rate      int
	Format    gps.Format
	Baud      int
	Noise     bool
	ColdStart time.Duration
	// StrictBaud: a client reading at another speed than the receiver
	// talks gets garbage (see gps.Receiver); always so for a vehicle whose
	// timeline has a baud_change.
	StrictBaud bool
}

// Port is how a device is exposed.
type Port struct {
	Transport string // "pty" or "tcp"
	Listen    string // for tcp: host:port, "127.0.0.1:0" by default
}

// Stop is a halt on schedule, from the start of the drive.
type Stop struct {
	At        time.Duration
	For       time.Duration
	EngineOff bool
}

// Defaults are what a vehicle gets for what it does not say.
func defaults() Vehicle {
	return Vehicle{
		GPS: GPS{Port: Port{Transport: "pty"}, Rate: 1, Baud: 9600},
		OBD: Port{Transport: "pty"},
	}
}

// Baud rates a receiver may be set to.
var bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

//go:embed builtin/*.yaml
var builtin embed.FS

// Builtins returns the built-in scenarios' names and descriptions, sorted
// by name.
func Builtins() ([][2]string, error) {
	entries, err := fs.ReadDir(builtin, "builtin")
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		s, err := Builtin(name)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{name, s.Description})
	}
	return out, nil
}

// Builtin returns the built-in scenario called name.
func Builtin(name string) (*Scenario, error) {
	data, err := BuiltinSource(name)
	if err != nil {
		return nil, err
	}
	return Parse(data, "builtin/"+name+".yaml", "")
}

// BuiltinSource returns the YAML of the built-in scenario called name.
func BuiltinSource(name string) ([]byte, error) {
	data, err := builtin.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (firmware-sim scenarios lists them)", name)
	}
	return data, nil
}

// Load reads a scenario from a file, or names a built-in one: a path that
// exists is a file, anything else a built-in name.
func Load(nameOrPath string) (*Scenario, error) {
	data, err := os.ReadFile(nameOrPath)
	if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
		return Builtin(nameOrPath)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(data, nameOrPath, filepath.Dir(nameOrPath))
}

// Parse reads a scenario. file names it in errors; route files are found
// relative to dir. The error joins one *Error per problem, in file order.
func Parse(data []byte, file, dir string) (*Scenario, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.syntax(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "empty scenario: want at least duration and vehicles"}
	}
	root := doc.Content[0]
	sc := &Scenario{Seed: 1, Start: "now", Set: map[string]bool{}}
	base := defaults()
	var vehicleNodes, faultNodes *yaml.Node
	var defaultsNode *yaml.Node
	present := p.mapping(root, "scenario", fields{
		"name":        func(n *yaml.Node) { sc.Name = p.str(n, "name") },
		"description": func(n *yaml.Node) { sc.Description = strings.TrimSpace(p.str(n, "description")) },
		"seed": func(n *yaml.Node) {
			if s, ok := p.scalar(n, "seed", "a whole number"); ok {
				if _, err := fmt.Sscan(s, &sc.Seed); err != nil || strings.HasPrefix(s, "-") {
					p.errorf(n, "seed %q: want a whole number from 0", s)
				}
			}
		},
		"start": func(n *yaml.Node) {
			sc.Start = p.str(n, "start")
			if _, err := time.Parse(time.RFC3339Nano, sc.Start); err != nil && !strings.EqualFold(sc.Start, "now") {
				p.errorf(n, "start %q: want RFC 3339 (2026-11-27T10:00:00Z) or now", sc.Start)
			}
		},
		"duration": func(n *yaml.Node) { sc.Duration, _ = p.duration(n, "duration", false, false) },
		"speed":    func(n *yaml.Node) { sc.Speed, _ = p.number(n, "speed", 0, 10000) },
		"uplink": func(n *yaml.Node) {
			p.mapping(n, "uplink", fields{"upstream": func(n *yaml.Node) {
				sc.Uplink = p.str(n, "uplink.upstream")
				if !strings.HasPrefix(sc.Uplink, "tcp://") && !strings.HasPrefix(sc.Uplink, "mqtt://") {
					p.errorf(n, "uplink.upstream %q: want the broker as tcp://host:port", sc.Uplink)
				}
			}})
		},
		"defaults": func(n *yaml.Node) { defaultsNode = n },
		"vehicles": func(n *yaml.Node) { vehicleNodes = n },
		"faults":   func(n *yaml.Node) { faultNodes = n },
	})
	for k := range present {
		sc.Set[k] = true
	}
	if present["duration"] == nil {
		p.errorf(root, "scenario: no duration (simulated time to drive, e.g. duration: 30m)")
	}
	if defaultsNode != nil {
		p.vehicle(defaultsNode, "defaults", &base, dir, false)
	}
	if vehicleNodes == nil {
		p.errorf(root, "scenario: no vehicles")
	} else {
		for i, n := range p.sequence(vehicleNodes, "vehicles") {
			vs := p.vehicles(n, fmt.Sprintf("vehicles[%d]", i), base, dir)
			for range vs {
				p.vehicleOf = append(p.vehicleOf, n)
			}
			sc.Vehicles = append(sc.Vehicles, vs...)
		}
		if len(sc.Vehicles) == 0 && len(p.errs) == 0 {
			p.errorf(vehicleNodes, "vehicles: none")
		}
	}
	p.uniqueIDs(sc, vehicleNodes)
	if faultNodes != nil {
		for i, n := range p.sequence(faultNodes, "faults") {
			if f, ok := p.fault(n, fmt.Sprintf("faults[%d]", i), sc); ok {
				sc.Faults = append(sc.Faults, f)
				p.faultNodes = append(p.faultNodes, n)
			}
		}
	}
	order := make([]int, len(sc.Faults))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(max(-1, min(1, sc.Faults[a].At-sc.Faults[b].At))) })
	faults, nodes := make([]firmwaresim.Fault, len(order)), make([]*yaml.Node, len(order))
	for i, j := range order {
		faults[i], nodes[i] = sc.Faults[j], p.faultNodes[j]
	}
	sc.Faults, p.faultNodes = faults, nodes
	if len(p.errs) == 0 {
		p.check(sc)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return sc, nil
}

// vehicles reads one entry of the vehicles list: a vehicle (id) or several
// (count, with id_prefix).
func (p *parser) vehicles(n *yaml.Node, what string, base Vehicle, dir string) []Vehicle {
	v := base
	count := 0
	prefix := ""
	p.vehicleFields(n, what, &v, dir, true, fields{
		"count":     func(n *yaml.Node) { count, _ = p.integer(n, what+".count", 1, 999) },
		"id_prefix": func(n *yaml.Node) { prefix = p.str(n, what+".id_prefix") },
	})
	if v.Route == nil && base.Route == nil {
		v.Route, _ = firmwaresim.RouteByName("monaco-loop")
	}
	switch {
	case count > 0 && v.ID != "":
		p.errorf(n, "%s: give either id, or count with id_prefix", what)
		return nil
	case count > 0:
		var out []Vehicle
		for i := range count {
			w := v
			w.ID = fmt.Sprintf("%s%03d", prefix, i+1)
			if !idPattern.MatchString(w.ID) {
				p.errorf(n, "%s: vehicle id %q: want [A-Za-z0-9_-]{1,64}", what, w.ID)
				return nil
			}
			out = append(out, w)
		}
		return out
	case v.ID == "":
		p.errorf(n, "%s: no id (or count with id_prefix)", what)
		return nil
	}
	return []Vehicle{v}
}

func (p *parser) vehicle(n *yaml.Node, what string, v *Vehicle, dir string, perVehicle bool) {
	p.vehicleFields(n, what, v, dir, perVehicle, fields{})
}

// vehicleFields reads the settings of a vehicle (or of the defaults, without
// id, vin and stops) into v; extra adds fields.
func (p *parser) vehicleFields(n *yaml.Node, what string, v *Vehicle, dir string, perVehicle bool, extra fields) {
	fs := fields{
		"route": func(n *yaml.Node) { v.Route = p.route(n, what+".route", dir) },
		"gps":   func(n *yaml.Node) { p.gps(n, what+".gps", &v.GPS) },
		"obd":   func(n *yaml.Node) { p.port(n, what+".obd", &v.OBD, fields{}) },
		"transport": func(n *yaml.Node) {
			v.GPS.Transport = p.transport(n, what+".transport")
			v.OBD.Transport = v.GPS.Transport
		},
	}
	if perVehicle {
		fs["id"] = func(n *yaml.Node) {
			v.ID = p.str(n, what+".id")
			if !idPattern.MatchString(v.ID) {
				p.errorf(n, "%s.id %q: want [A-Za-z0-9_-]{1,64}", what, v.ID)
			}
		}
		fs["vin"] = func(n *yaml.Node) {
			v.VIN = p.str(n, what+".vin")
			if len(v.VIN) != 17 || strings.ContainsAny(strings.ToUpper(v.VIN), "IOQ") {
				p.errorf(n, "%s.vin %q: want 17 characters, no I, O or Q", what, v.VIN)
			}
		}
		fs["stops"] = func(n *yaml.Node) {
			for i, s := range p.sequence(n, what+".stops") {
				w := fmt.Sprintf("%s.stops[%d]", what, i)
				var st Stop
				var at, dur *yaml.Node
				p.mapping(s, w, fields{
					"at":  func(n *yaml.Node) { at = n; st.At, _ = p.duration(n, w+".at", false, true) },
					"for": func(n *yaml.Node) { dur = n; st.For, _ = p.duration(n, w+".for", false, false) },
					"engine": func(n *yaml.Node) {
						switch e := p.str(n, w+".engine"); e {
						case "idle":
						case "off":
							st.EngineOff = true
						default:
							p.errorf(n, "%s.engine %q: want idle or off", w, e)
						}
					},
				})
				if at == nil || dur == nil {
					p.errorf(s, "%s: want at and for (and engine: idle or off)", w)
				}
				v.Stops = append(v.Stops, st)
			}
		}
	}
	for k, h := range extra {
		fs[k] = h
	}
	p.mapping(n, what, fs)
}

// route reads a route: a built-in name, or a .gpx, .geojson or .json file.
func (p *parser) route(n *yaml.Node, what, dir string) *firmwaresim.Route {
	name := p.str(n, what)
	if name == "" {
		return nil
	}
	r, err := LoadRoute(name, dir)
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
	}
	return r
}

// LoadRoute returns the built-in route called name, or reads a GPX
// (.gpx) or GeoJSON (.geojson, .json) file, relative to dir.
func LoadRoute(name, dir string) (*firmwaresim.Route, error) {
	ext := strings.ToLower(filepath.Ext(name))
	if ext != ".gpx" && ext != ".geojson" && ext != ".json" {
		return firmwaresim.RouteByName(name)
	}
	path := name
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("route file: %w", err)
	}
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	if ext == ".gpx" {
		return firmwaresim.ParseGPX(bytes.NewReader(data), base)
	}
	return firmwaresim.ParseGeoJSON(bytes.NewReader(data), base)
}

func (p *parser) transport(n *yaml.Node, what string) string {
	t := p.str(n, what)
	if t != "pty" && t != "tcp" {
		p.errorf(n, "%s %q: want pty or tcp", what, t)
	}
	return t
}

func (p *parser) port(n *yaml.Node, what string, port *Port, extra fields) {
	fs := fields{
		"transport": func(n *yaml.Node) { port.Transport = p.transport(n, what+".transport") },
		"listen": func(n *yaml.Node) {
			port.Listen = p.str(n, what+".listen")
			if !strings.Contains(port.Listen, ":") {
				p.errorf(n, "%s.listen %q: want host:port (port 0 picks a free one)", what, port.Listen)
			}
		},
	}
	for k, h := range extra {
		fs[k] = h
	}
	p.mapping(n, what, fs)
}

func (p *parser) gps(n *yaml.Node, what string, g *GPS) {
	p.port(n, what, &g.Port, fields{
		"rate": func(n *yaml.Node) { g.Rate, _ = p.integer(n, what+".rate", 1, gps.MaxRate) },
		"talker": func(n *yaml.Node) {
			g.Format.Talker = p.str(n, what+".talker")
			if !slices.Contains(gps.Talkers, g.Format.Talker) {
				p.errorf(n, "%s.talker %q: want one of %s", what, g.Format.Talker, strings.Join(gps.Talkers, ", "))
			}
		},
		"sentences": func(n *yaml.Node) {
			g.Format.Sentences = p.strings(n, what+".sentences")
			if err := (gps.Format{Sentences: g.Format.Sentences}).Validate(); err != nil {
				p.errorf(n, "%s: %v", what, err)
			}
		},
		"baud": func(n *yaml.Node) {
			if b, ok := p.integer(n, what+".baud", 1, 1<<30); ok && !slices.Contains(bauds, b) {
				p.errorf(n, "%s.baud %d: want one of %v", what, b, bauds)
			} else {
				g.Baud = b
			}
		},
		"noise":       func(n *yaml.Node) { g.Noise = p.boolean(n, what+".noise") },
		"strict_baud": func(n *yaml.Node) { g.StrictBaud = p.boolean(n, what+".strict_baud") },
		"cold_start":  func(n *yaml.Node) { g.ColdStart, _ = p.duration(n, what+".cold_start", false, true) },
	})
}

// uniqueIDs reports vehicle ids given twice.
func (p *parser) uniqueIDs(sc *Scenario, n *yaml.Node) {
	seen := map[string]bool{}
	for _, v := range sc.Vehicles {
		if seen[v.ID] {
			p.errorf(n, "vehicles: id %q given twice", v.ID)
		}
		seen[v.ID] = true
	}
}

// fault reads one fault of the timeline.
func (p *parser) fault(n *yaml.Node, what string, sc *Scenario) (firmwaresim.Fault, bool) {
	var f firmwaresim.Fault
	nodes := map[string]*yaml.Node{}
	keep := func(name string, h func(n *yaml.Node)) func(n *yaml.Node) {
		return func(n *yaml.Node) { nodes[name] = n; h(n) }
	}
	errs := len(p.errs)
	p.mapping(n, what, fields{
		"at":       keep("at", func(n *yaml.Node) { f.At, _ = p.duration(n, what+".at", false, true) }),
		"kind":     keep("kind", func(n *yaml.Node) { f.Kind = firmwaresim.FaultKind(p.str(n, what+".kind")) }),
		"vehicle":  keep("vehicle", func(n *yaml.Node) { f.Vehicle = p.str(n, what+".vehicle") }),
		"device":   keep("device", func(n *yaml.Node) { f.Device = firmwaresim.Device(p.str(n, what+".device")) }),
		"duration": keep("duration", func(n *yaml.Node) { f.Duration, _ = p.duration(n, what+".duration", false, false) }),
		"count":    keep("count", func(n *yaml.Node) { f.Count, _ = p.integer(n, what+".count", 1, 1000000) }),
		"bytes":    keep("bytes", func(n *yaml.Node) { f.Bytes, _ = p.integer(n, what+".bytes", 1, 65536) }),
		"baud": keep("baud", func(n *yaml.Node) {
			if b, ok := p.integer(n, what+".baud", 1, 1<<30); ok && !slices.Contains(bauds, b) {
				p.errorf(n, "%s.baud %d: want one of %v", what, b, bauds)
			} else {
				f.Baud = b
			}
		}),
		"offset": keep("offset", func(n *yaml.Node) { f.Offset, _ = p.duration(n, what+".offset", true, false) }),
		"reply": keep("reply", func(n *yaml.Node) {
			f.Reply = p.str(n, what+".reply")
			if f.Reply == "" || len(f.Reply) > 32 || strings.ContainsAny(f.Reply, "\r\n>") {
				p.errorf(n, "%s.reply %q: want 1 to 32 characters, no CR, LF or >", what, f.Reply)
			}
		}),
		"code": keep("code", func(n *yaml.Node) {
			f.Code = p.str(n, what+".code")
			if !firmwaresim.ValidDTC(f.Code) {
				p.errorf(n, "%s.code %q: want a trouble code such as P0301 (P, C, B or U, then four hex digits)", what, f.Code)
			}
		}),
	})
	if len(p.errs) > errs {
		return f, false
	}
	spec, ok := firmwaresim.Spec(f.Kind)
	switch {
	case nodes["kind"] == nil:
		p.errorf(n, "%s: no kind (want one of %s)", what, firmwaresim.FaultKinds())
		return f, false
	case !ok:
		p.errorf(nodes["kind"], "%s.kind %q: want one of %s", what, f.Kind, firmwaresim.FaultKinds())
		return f, false
	case nodes["at"] == nil:
		p.errorf(n, "%s: no at (when, from the start: at: 5m)", what)
	case sc.Duration > 0 && f.At >= sc.Duration:
		p.errorf(nodes["at"], "%s.at %v: at or after the end of the drive (duration %v)", what, f.At, sc.Duration)
	}
	for name, node := range nodes {
		if name == "at" || name == "kind" || name == "vehicle" || name == "device" {
			continue
		}
		if !slices.Contains(spec.Params, name) {
			p.errorf(node, "%s: %s takes no %s (it takes %s)", what, f.Kind, name, orNothing(spec.Params))
		}
	}
	for _, name := range spec.Required {
		if nodes[name] == nil {
			p.errorf(n, "%s: %s needs %s", what, f.Kind, name)
		}
	}
	if f.Device == "" {
		f.Device = spec.Devices[0]
	} else if !slices.Contains(spec.Devices, f.Device) {
		p.errorf(nodes["device"], "%s.device %q: %s hits %v", what, f.Device, f.Kind, spec.Devices)
	}
	if nodes["count"] != nil && nodes["duration"] != nil {
		p.errorf(nodes["count"], "%s: give count or duration, not both", what)
	}
	if f.Vehicle != "" && !slices.ContainsFunc(sc.Vehicles, func(v Vehicle) bool { return v.ID == f.Vehicle }) {
		p.errorf(nodes["vehicle"], "%s.vehicle %q: no such vehicle", what, f.Vehicle)
	}
	return f, len(p.errs) == errs
}

func orNothing(params []string) string {
	if len(params) == 0 {
		return "nothing more"
	}
	return strings.Join(params, ", ")
}

// Validate checks a scenario changed after Parse (by command-line flags):
// the checks that need the whole scenario, without file positions.
func (sc *Scenario) Validate() error {
	p := &parser{}
	for _, f := range sc.Faults {
		if f.Vehicle != "" && !slices.ContainsFunc(sc.Vehicles, func(v Vehicle) bool { return v.ID == f.Vehicle }) {
			return fmt.Errorf("fault %s: no vehicle %q", f.Kind, f.Vehicle)
		}
		p.faultNodes = append(p.faultNodes, &yaml.Node{})
	}
	seen := map[string]bool{}
	for _, v := range sc.Vehicles {
		if seen[v.ID] {
			return fmt.Errorf("vehicle id %q given twice", v.ID)
		}
		seen[v.ID] = true
		if v.GPS.Rate < 1 || v.GPS.Rate > gps.MaxRate {
			return fmt.Errorf("vehicle %s: gps rate %d Hz outside 1..%d", v.ID, v.GPS.Rate, gps.MaxRate)
		}
		if err := v.GPS.Format.Validate(); err != nil {
			return fmt.Errorf("vehicle %s: %w", v.ID, err)
		}
	}
	p.check(sc)
	return p.err()
}

// check verifies what needs the whole scenario: overlapping faults that
// cannot overlap, and receivers that cannot fit their output in their baud
// rate. Errors point at the vehicle or the later fault.
func (p *parser) check(sc *Scenario) {
	nodeOf := func(id string) *yaml.Node {
		for i, v := range sc.Vehicles {
			if v.ID == id && i < len(p.vehicleOf) {
				return p.vehicleOf[i]
			}
		}
		return &yaml.Node{}
	}
	for _, v := range sc.Vehicles {
		if need := v.GPS.Rate * v.GPS.Format.EpochBytes() * 10; v.GPS.Baud > 0 && need > v.GPS.Baud {
			p.errorf(nodeOf(v.ID), "vehicle %s: %d Hz of %s (up to %d bytes an epoch) needs %d baud; the receiver's (gps.baud, --baud) is %d",
				v.ID, v.GPS.Rate, strings.Join(v.GPS.Format.SentenceSet(), ","), v.GPS.Format.EpochBytes(), need, v.GPS.Baud)
		}
		type halt struct {
			Stop
			node *yaml.Node
		}
		var halts []halt
		for _, st := range v.Stops {
			halts = append(halts, halt{st, nodeOf(v.ID)})
		}
		faults, nodes := p.vehicleFaults(sc, v.ID)
		for i, f := range faults {
			if f.Kind == firmwaresim.FaultIgnitionOff {
				halts = append(halts, halt{Stop{At: f.At, For: f.Duration, EngineOff: true}, nodes[i]})
			}
		}
		slices.SortStableFunc(halts, func(a, b halt) int { return int(max(-1, min(1, a.At-b.At))) })
		for i := 1; i < len(halts); i++ {
			if prev := halts[i-1]; prev.For == 0 || prev.At+prev.For > halts[i].At {
				p.errorf(halts[i].node, "vehicle %s: the stop or ignition_off at +%v overlaps the one at +%v", v.ID, halts[i].At, prev.At)
			}
		}
		for _, group := range [][]firmwaresim.FaultKind{
			{firmwaresim.FaultUnplug}, {firmwaresim.FaultBaudChange}, {firmwaresim.FaultUplinkDown},
			{firmwaresim.FaultCANError, firmwaresim.FaultBufferFull, firmwaresim.FaultOBDReply},
		} {
			for _, dev := range []firmwaresim.Device{firmwaresim.DeviceGPS, firmwaresim.DeviceOBD, firmwaresim.DeviceUplink} {
				var last firmwaresim.Fault
				for i, f := range faults {
					if !slices.Contains(group, f.Kind) || !f.Lasts() || f.Device != dev {
						continue
					}
					if last.Kind != "" && last.Active(f.At) {
						p.errorf(nodes[i], "vehicle %s: %s at +%v overlaps %s at +%v", v.ID, f.Kind, f.At, last.Kind, last.At)
					}
					last = f
				}
			}
		}
	}
}

// vehicleFaults is VehicleFaults with the fault's nodes.
func (p *parser) vehicleFaults(sc *Scenario, id string) ([]firmwaresim.Fault, []*yaml.Node) {
	var out []firmwaresim.Fault
	var nodes []*yaml.Node
	for i, f := range sc.Faults {
		if f.Vehicle == "" || f.Vehicle == id {
			f.Vehicle = id
			out = append(out, f)
			nodes = append(nodes, p.faultNodes[i])
		}
	}
	return out, nodes
}

// VehicleFaults returns the faults that hit vehicle id, in time order, with
// Vehicle set to id.
func (sc *Scenario) VehicleFaults(id string) []firmwaresim.Fault {
	var out []firmwaresim.Fault
	for _, f := range sc.Faults {
		if f.Vehicle == "" || f.Vehicle == id {
			f.Vehicle = id
			out = append(out, f)
		}
	}
	return out
}
