package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Config is the agent's configuration file (edge/README.md#configuration).
// Durations are Go durations ("200ms"); sizes are bytes or "256MiB"; devices
// are URLs (see edge/serial).
type Config struct {
	VehicleID string       `yaml:"vehicle_id"`
	DataDir   string       `yaml:"data_dir"`
	GPS       GPSConfig    `yaml:"gps"`
	OBD       OBDConfig    `yaml:"obd"`
	MQTT      MQTTConfig   `yaml:"mqtt"`
	Outbox    OutboxConfig `yaml:"outbox"`
	Uplink    UplinkConfig `yaml:"uplink"`
	Clock     ClockConfig  `yaml:"clock"`
	HTTP      HTTPConfig   `yaml:"http"`
	Log       LogConfig    `yaml:"log"`
}

// GPSConfig names the GNSS receiver.
type GPSConfig struct {
	Port string `yaml:"port"`
	// Bauds are the rates baud detection tries on a serial port, in order;
	// empty: the port URL's rate if it names one, else serial.DefaultBauds
	// (9600, 4800, 38400, 115200).
	Bauds []int `yaml:"bauds"`
	// Talkers, if set, are the only NMEA talker ids used ("GP", "GN",
	// "IN", ...); empty: position sentences from any talker, satellite
	// sentences from satellite talkers (see edge/gps's Assembler).
	Talkers []string `yaml:"talkers"`
}

// ClockConfig is how the agent stamps the records it times itself (OBD
// samples, events): see edge.Clock.
type ClockConfig struct {
	// GNSS: while the kernel says the system clock is not synchronised, or
	// it is more than MaxSkew off GNSS time, stamp from GNSS time.
	GNSS    *bool         `yaml:"gnss"`
	MaxSkew time.Duration `yaml:"max_skew"`
}

// FromGNSS reports whether the clock section lets the agent stamp from
// GNSS time (the default).
func (c ClockConfig) FromGNSS() bool { return c.GNSS == nil || *c.GNSS }

// OBDConfig names the ELM327 adapter and what to poll; no port, no OBD.
//
// pids is a list of Mode 01 PIDs, each two hex digits ("0C"), polled every
// interval, or a PID with its own interval ({pid: "0C", every: 200ms}); the
// two forms mix. Every holds the second form's intervals, by PID (nil when
// there are none). The other keys are optional: zero or absent means the
// obd package's default.
type OBDConfig struct {
	Port        string                   `yaml:"port"`
	PIDs        []string                 `yaml:"-"`
	Every       map[string]time.Duration `yaml:"-"`
	Interval    time.Duration            `yaml:"interval"`
	Timeout     time.Duration            `yaml:"timeout"`      // per adapter command; 2s
	OffInterval time.Duration            `yaml:"off_interval"` // how often to look while the ignition is off; 30s
	DTCInterval time.Duration            `yaml:"dtc_interval"` // how often to read trouble codes; 1m
	DTCs        *bool                    `yaml:"dtcs"`         // read trouble codes; true
	VIN         *bool                    `yaml:"vin"`          // read the VIN; true
}

// talkerID is an NMEA talker id.
var talkerID = regexp.MustCompile(`^[A-Z]{2}$`)

// obdKeys are the keys of the obd section.
var obdKeys = []string{"port", "pids", "interval", "timeout", "off_interval", "dtc_interval", "dtcs", "vin"}

// UnmarshalYAML implements yaml.Unmarshaler: the section's keys over the
// defaults, unknown keys refused, and the two forms of pids.
func (c *OBDConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: obd must be a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(obdKeys, k.Value) {
			return fmt.Errorf("line %d: field %s not found in type main.OBDConfig", k.Line, k.Value)
		}
	}
	type plain OBDConfig // without this method
	var f struct {
		plain `yaml:",inline"`
		PIDs  []pidEntry `yaml:"pids"`
	}
	f.plain = plain(*c)
	if err := n.Decode(&f); err != nil {
		return err
	}
	*c = OBDConfig(f.plain)
	if f.PIDs != nil {
		c.PIDs, c.Every = []string{}, nil
		for _, e := range f.PIDs {
			c.PIDs = append(c.PIDs, e.PID)
			if e.Every != 0 {
				if c.Every == nil {
					c.Every = map[string]time.Duration{}
				}
				c.Every[e.PID] = e.Every
			}
		}
	}
	return nil
}

// pidEntry is one item of obd.pids: "0C" or {pid: "0C", every: 200ms}.
type pidEntry struct {
	PID   string        `yaml:"pid"`
	Every time.Duration `yaml:"every"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (e *pidEntry) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		e.PID = n.Value
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "pid" && k != "every" {
				return fmt.Errorf("line %d: a PID entry has pid and every, not %s", n.Content[i].Line, k)
			}
		}
		type plain pidEntry
		if err := n.Decode((*plain)(e)); err != nil {
			return err
		}
		if e.Every == 0 {
			return fmt.Errorf("line %d: a PID entry without every: write the PID alone", n.Line)
		}
		return nil
	}
	return fmt.Errorf("line %d: a PID is two hex digits or {pid: \"0C\", every: 1s}", n.Line)
}

// Apply sets the polling of s from the section: the PIDs, each at its
// interval, the timeouts, the trouble code interval and the VIN. It
// returns an error naming the first bad PID (Validate has checked them).
func (c *OBDConfig) Apply(s *obd.Source) error {
	s.PIDs, s.Polls = nil, nil
	for i, p := range c.PIDs {
		pid, err := obd.ParsePID(p)
		if err != nil {
			return fmt.Errorf("obd.pids[%d]: %w", i, err)
		}
		if every, ok := c.Every[p]; ok {
			s.Polls = append(s.Polls, obd.Poll{PID: pid, Every: every})
		} else {
			s.PIDs = append(s.PIDs, pid)
		}
	}
	s.Interval, s.Timeout, s.OffInterval, s.DTCInterval = c.Interval, c.Timeout, c.OffInterval, c.DTCInterval
	if c.DTCs != nil && !*c.DTCs {
		s.DTCInterval = -1
	}
	s.NoVIN = c.VIN != nil && !*c.VIN
	return nil
}

// MQTTConfig is the broker connection.
type MQTTConfig struct {
	URL       string        `yaml:"url"`
	Namespace string        `yaml:"namespace"`
	ClientID  string        `yaml:"client_id"`
	KeepAlive time.Duration `yaml:"keepalive"`
	TLS       TLSConfig     `yaml:"tls"`
}

// TLSConfig is the uplink's TLS for ssl:// and tls:// URLs: a CA bundle to
// check the broker with (empty: the system roots) and the vehicle's client
// certificate and key (PEM files; both or neither).
type TLSConfig struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// OutboxConfig is the group commit and the outbox's bounds.
type OutboxConfig struct {
	FlushInterval time.Duration `yaml:"flush_interval"`
	MaxBytes      ByteSize      `yaml:"max_bytes"`
	MaxAge        time.Duration `yaml:"max_age"`
}

// UplinkConfig shapes batches and the in-flight window (see edge/uplink
// for the rules; its defaults are these keys' defaults).
type UplinkConfig struct {
	BatchMaxRecords int `yaml:"batch_max_records"`
	// MinBatchAge is how long a partial batch waits at least: 0 sends each
	// record as soon as the link is free; a minute suits metered links.
	MinBatchAge time.Duration `yaml:"min_batch_age"`
	// BatchMaxAge is the old name of MinBatchAge (a partial batch always
	// waited that long), still read so that older files keep working.
	BatchMaxAge time.Duration `yaml:"batch_max_age"`
	Inflight    int           `yaml:"inflight"`
	AckTimeout  time.Duration `yaml:"ack_timeout"`
	// StatusInterval is how often the retained status is refreshed.
	StatusInterval time.Duration `yaml:"status_interval"`
	// BackoffMin and BackoffMax bound the jittered wait between
	// connection attempts.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// HTTPConfig is the local health and metrics endpoint.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // "" disables it
}

// LogConfig sets the structured log.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DefaultConfig returns the configuration a file starts from; every key it
// omits keeps these values.
func DefaultConfig() Config {
	return Config{
		DataDir: "/var/lib/fleetgate",
		OBD:     OBDConfig{PIDs: []string{"0C", "0D", "05"}, Interval: time.Second},
		MQTT: MQTTConfig{
			URL:       "tcp://127.0.0.1:1883",
			Namespace: string(telemetry.DefaultNamespace),
			KeepAlive: uplink.DefaultKeepAlive,
		},
		Outbox: OutboxConfig{FlushInterval: 200 * time.Millisecond, MaxBytes: 256 << 20, MaxAge: 720 * time.Hour},
		Uplink: UplinkConfig{
			BatchMaxRecords: uplink.DefaultBatchMaxRecords, MinBatchAge: uplink.DefaultMinBatchAge,
			Inflight: uplink.DefaultInflight, AckTimeout: uplink.DefaultAckTimeout, StatusInterval: uplink.DefaultStatusInterval,
			BackoffMin: uplink.DefaultBackoffMin, BackoffMax: uplink.DefaultBackoffMax,
		},
		Clock: ClockConfig{MaxSkew: edge.DefaultMaxSkew},
		HTTP:  HTTPConfig{Listen: "127.0.0.1:9100"},
		Log:   LogConfig{Level: "info", Format: "text"},
	}
}

// EffectiveMinBatchAge returns uplink.min_batch_age, or its old name
// uplink.batch_max_age when that is the one set.
func (c *UplinkConfig) EffectiveMinBatchAge() time.Duration {
	if c.BatchMaxAge != 0 {
		return c.BatchMaxAge
	}
	return c.MinBatchAge
}

// SenderConfig returns the uplink sending policy's settings.
func (c *Config) SenderConfig() uplink.Config {
	return uplink.Config{
		VehicleID:       c.VehicleID,
		BatchMaxRecords: c.Uplink.BatchMaxRecords,
		MinBatchAge:     c.Uplink.EffectiveMinBatchAge(),
		Inflight:        c.Uplink.Inflight,
		AckTimeout:      c.Uplink.AckTimeout,
	}
}

// ConnConfig returns the broker connection's settings, with tc for ssl://
// and tls:// URLs (see TLS).
func (c *Config) ConnConfig(tc *tls.Config) mqtt.Config {
	return mqtt.Config{
		URL:            c.MQTT.URL,
		Namespace:      telemetry.Namespace(c.MQTT.Namespace),
		ClientID:       c.ClientID(),
		KeepAlive:      c.MQTT.KeepAlive,
		TLS:            tc,
		StatusInterval: c.Uplink.StatusInterval,
		Backoff:        edge.Backoff{Min: c.Uplink.BackoffMin, Max: c.Uplink.BackoffMax},
	}
}

// ClientID returns the MQTT client id: the configured one, or
// fleetgate-edge-<vehicle_id>.
func (c *Config) ClientID() string {
	if c.MQTT.ClientID != "" {
		return c.MQTT.ClientID
	}
	return "fleetgate-edge-" + c.VehicleID
}

// LoadConfig reads the file at path: environment expansion, then YAML over
// DefaultConfig (unknown keys are errors), then Validate.
func LoadConfig(path string, getenv func(string) (string, bool)) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(raw, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig is LoadConfig on the file's bytes.
func ParseConfig(raw []byte, getenv func(string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(Expand(raw, getenv)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Expand replaces ${VAR} with the variable's value (empty if unset) and
// ${VAR:-default} with its value, or default when it is unset or empty, as a
// POSIX shell does. Anything else, a lone $ included, is left as it is.
// Expansion is textual, before YAML parsing: quote values that may hold
// YAML syntax.
func Expand(raw []byte, getenv func(string) (string, bool)) []byte {
	return envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		v, ok := getenv(string(sub[1]))
		if sub[2] != nil && (!ok || v == "") {
			return sub[3]
		}
		return []byte(v)
	})
}

// Validate checks every field and returns an error naming the first bad one
// by its YAML path, e.g. "obd.pids[1]: ...".
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
	if err := telemetry.ValidVehicleID(c.VehicleID); err != nil {
		return bad("vehicle_id", "%v", err)
	}
	if c.DataDir == "" {
		return bad("data_dir", "required")
	}
	if c.GPS.Port == "" {
		return bad("gps.port", "required")
	}
	if _, err := serial.Parse(c.GPS.Port); err != nil {
		return bad("gps.port", "%v", err)
	}
	for i, b := range c.GPS.Bauds {
		if b < serial.MinBaud || b > serial.MaxBaud || slices.Contains(c.GPS.Bauds[:i], b) {
			return bad(fmt.Sprintf("gps.bauds[%d]", i), "%d: want a baud rate (%d to %d), each once", b, serial.MinBaud, serial.MaxBaud)
		}
	}
	for i, tk := range c.GPS.Talkers {
		if !talkerID.MatchString(tk) || slices.Contains(c.GPS.Talkers[:i], tk) {
			return bad(fmt.Sprintf("gps.talkers[%d]", i), "%q: want a talker id, two upper-case letters (GP, GN, IN, ...), each once", tk)
		}
	}
	if c.Clock.MaxSkew <= 0 {
		return bad("clock.max_skew", "%v: must be positive", c.Clock.MaxSkew)
	}
	if c.OBD.Port != "" {
		if _, err := serial.Parse(c.OBD.Port); err != nil {
			return bad("obd.port", "%v", err)
		}
		if len(c.OBD.PIDs) == 0 {
			return bad("obd.pids", "at least one PID when obd.port is set")
		}
		for i, p := range c.OBD.PIDs {
			if _, err := obd.ParsePID(p); err != nil {
				return bad(fmt.Sprintf("obd.pids[%d]", i), "%v", err)
			}
			if slices.ContainsFunc(c.OBD.PIDs[:i], func(q string) bool { return strings.EqualFold(q, p) }) {
				return bad(fmt.Sprintf("obd.pids[%d]", i), "PID %s listed twice", p)
			}
			if every, ok := c.OBD.Every[p]; ok && every < 10*time.Millisecond {
				return bad(fmt.Sprintf("obd.pids[%d].every", i), "%v: must be at least 10ms", every)
			}
		}
		if c.OBD.Interval <= 0 {
			return bad("obd.interval", "must be positive, e.g. 1s")
		}
		if c.OBD.Timeout != 0 && c.OBD.Timeout < 10*time.Millisecond {
			return bad("obd.timeout", "%v: must be at least 10ms, e.g. 2s", c.OBD.Timeout)
		}
		if c.OBD.OffInterval < 0 {
			return bad("obd.off_interval", "must be positive, e.g. 30s")
		}
		if c.OBD.DTCInterval < 0 {
			return bad("obd.dtc_interval", "must be positive, e.g. 1m")
		}
	}
	if c.MQTT.URL == "" {
		return bad("mqtt.url", "required")
	}
	scheme, rest, ok := strings.Cut(c.MQTT.URL, "://")
	if !ok || rest == "" || !(scheme == "tcp" || scheme == "ssl" || scheme == "tls") {
		return bad("mqtt.url", "%q: want tcp://host:port, ssl://host:port or tls://host:port", c.MQTT.URL)
	}
	if _, _, err := net.SplitHostPort(rest); err != nil {
		return bad("mqtt.url", "%q: %v", c.MQTT.URL, err)
	}
	if u, err := url.Parse(c.MQTT.URL); err != nil || u.Host == "" { // as the uplink reads it
		return bad("mqtt.url", "%q: want tcp://host:port, ssl://host:port or tls://host:port", c.MQTT.URL)
	}
	if err := telemetry.Namespace(c.MQTT.Namespace).Valid(); err != nil {
		return bad("mqtt.namespace", "%v", err)
	}
	if c.MQTT.KeepAlive < time.Second {
		return bad("mqtt.keepalive", "must be at least 1s")
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") {
		return bad("mqtt.tls", "cert and key go together")
	}
	if c.MQTT.TLS != (TLSConfig{}) && scheme == "tcp" {
		return bad("mqtt.tls", "set, but mqtt.url %q is not ssl:// or tls://", c.MQTT.URL)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"outbox.flush_interval", c.Outbox.FlushInterval},
		{"outbox.max_age", c.Outbox.MaxAge},
		{"uplink.ack_timeout", c.Uplink.AckTimeout},
		{"uplink.status_interval", c.Uplink.StatusInterval},
		{"uplink.backoff_min", c.Uplink.BackoffMin},
		{"uplink.backoff_max", c.Uplink.BackoffMax},
	} {
		if d.v <= 0 {
			return bad(d.field, "must be positive")
		}
	}
	if c.Outbox.MaxBytes < 1<<20 {
		return bad("outbox.max_bytes", "%d bytes: must be at least 1MiB", c.Outbox.MaxBytes)
	}
	if strconv.IntSize == 32 && c.Outbox.MaxBytes > 1<<30 {
		return bad("outbox.max_bytes", "%d bytes: at most 1GiB on a 32-bit system (bbolt maps the whole file)", c.Outbox.MaxBytes)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"uplink.min_batch_age", c.Uplink.MinBatchAge}, {"uplink.batch_max_age", c.Uplink.BatchMaxAge}} {
		if d.v < 0 || d.v > uplink.MaxMinBatchAge {
			return bad(d.field, "%v: must be 0 to %v", d.v, uplink.MaxMinBatchAge)
		}
	}
	if c.Uplink.BatchMaxAge != 0 && c.Uplink.MinBatchAge != 0 {
		return bad("uplink.batch_max_age", "the old name of uplink.min_batch_age: set one of them")
	}
	if c.Uplink.BackoffMax < c.Uplink.BackoffMin {
		return bad("uplink.backoff_max", "%v is less than uplink.backoff_min %v", c.Uplink.BackoffMax, c.Uplink.BackoffMin)
	}
	if c.Uplink.BatchMaxRecords < 1 || c.Uplink.BatchMaxRecords > telemetry.MaxRows {
		return bad("uplink.batch_max_records", "%d: must be 1 to %d", c.Uplink.BatchMaxRecords, telemetry.MaxRows)
	}
	if c.Uplink.Inflight < 1 || c.Uplink.Inflight > 1000 {
		return bad("uplink.inflight", "%d: must be 1 to 1000", c.Uplink.Inflight)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			return bad("http.listen", "%q: %v", c.HTTP.Listen, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "%q: want text or json", c.Log.Format)
	}
	return nil
}

// TLS returns the uplink's TLS configuration: nil for a tcp:// URL, else one
// with the CA bundle (or the system roots) and the client certificate, read
// from their files now.
func (c *Config) TLS() (*tls.Config, error) {
	if !strings.HasPrefix(c.MQTT.URL, "ssl://") && !strings.HasPrefix(c.MQTT.URL, "tls://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.MQTT.TLS.CA != "" {
		pem, err := os.ReadFile(c.MQTT.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca: %s holds no PEM certificate", c.MQTT.TLS.CA)
		}
		tc.RootCAs = pool
	}
	if c.MQTT.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.MQTT.TLS.Cert, c.MQTT.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ByteSize is a size in bytes, written in YAML as a plain number of bytes or
// with a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB
// (powers of 1000), e.g. "256MiB".
type ByteSize int64

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

var sizeRe = regexp.MustCompile(`^\s*([0-9]+)\s*([A-Za-z]*)\s*$`)

// ParseByteSize reads a size as ByteSize's YAML form.
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number of bytes or e.g. 256MiB", s)
	}
	unit, ok := sizeUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > (1<<62)/unit {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return ByteSize(n * unit), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a scalar", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}
