package main

// White-box: a main package cannot be imported by a _test package, and the
// config's types are what these tests check. agent_test.go drives the built
// binary black-box.

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := LoadConfig("testdata/minimal.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.VehicleID = "veh-002"
	want.GPS.Port = "/dev/ttyUSB0"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	// The contract's defaults, spelled out.
	d := DefaultConfig()
	if d.DataDir != "/var/lib/fleetgate" || d.MQTT.URL != "tcp://127.0.0.1:1883" || d.MQTT.Namespace != "fleet/v1" ||
		d.MQTT.KeepAlive != time.Minute || d.Outbox.FlushInterval != 200*time.Millisecond || d.Outbox.MaxBytes != 256<<20 ||
		d.Outbox.MaxAge != 720*time.Hour || d.Uplink.BatchMaxRecords != 600 || d.Uplink.MinBatchAge != 0 || d.Uplink.BatchMaxAge != 0 ||
		d.Uplink.Inflight != 8 || d.Uplink.AckTimeout != 30*time.Second || d.HTTP.Listen != "127.0.0.1:9100" ||
		d.Log.Level != "info" || d.Log.Format != "text" || d.OBD.Interval != time.Second {
		t.Errorf("DefaultConfig() = %+v", d)
	}
	if got := cfg.ClientID(); got != "fleetgate-edge-veh-002" {
		t.Errorf("ClientID() = %q", got)
	}
}

func TestFullConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/full.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		VehicleID: "veh-001",
		DataDir:   "/tmp/fleetgate-test",
		GPS:       GPSConfig{Port: "/tmp/sim/veh-001-gps", Talkers: []string{"GN", "IN"}},
		OBD:       OBDConfig{Port: "serial:///tmp/sim/veh-001-obd?baud=38400", PIDs: []string{"0C", "0D", "05", "42"}, Interval: 500 * time.Millisecond},
		MQTT: MQTTConfig{URL: "ssl://broker.example:8883", Namespace: "fleet/v1", ClientID: "custom-client", KeepAlive: 2 * time.Minute,
			TLS: TLSConfig{CA: "/etc/fleetgate/ca.pem", Cert: "/etc/fleetgate/veh-001.pem", Key: "/etc/fleetgate/veh-001.key"}},
		Outbox: OutboxConfig{FlushInterval: 100 * time.Millisecond, MaxBytes: 64 << 20, MaxAge: 240 * time.Hour},
		Uplink: UplinkConfig{BatchMaxRecords: 300, MinBatchAge: 2 * time.Second, Inflight: 4, AckTimeout: 45 * time.Second,
			StatusInterval: 30 * time.Second, BackoffMin: time.Second, BackoffMax: time.Minute},
		Clock: ClockConfig{GNSS: new(bool), MaxSkew: 5 * time.Second},
		HTTP:  HTTPConfig{Listen: "127.0.0.1:9200"},
		Log:   LogConfig{Level: "debug", Format: "json"},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.ClientID() != "custom-client" {
		t.Errorf("ClientID() = %q", cfg.ClientID())
	}
}

// uplink.batch_max_age, the old name of uplink.min_batch_age, still works:
// a partial batch always waited that long.
func TestOldBatchMaxAge(t *testing.T) {
	cfg, err := ParseConfig([]byte("vehicle_id: v\ngps:\n  port: /dev/ttyUSB0\nuplink:\n  batch_max_age: 1m\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SenderConfig().MinBatchAge; got != time.Minute {
		t.Errorf("minimum batch age %v, want 1m", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{"defaults used", map[string]string{"VEHICLE_ID": "veh-7"}, func(c *Config) {
			c.VehicleID, c.DataDir, c.GPS.Port = "veh-7", "/var/lib/fleetgate-env", "/tmp/sim/veh-7-gps"
		}},
		{"values given", map[string]string{
			"VEHICLE_ID": "veh-8", "DATA_DIR": "/data", "SIM_DIR": "/run/sim", "MQTT_HOST": "10.0.0.9",
			"MQTT_PORT": "8883", "NAMESPACE": "t1/fleet/v1", "LOG_LEVEL": "warn",
		}, func(c *Config) {
			c.VehicleID, c.DataDir, c.GPS.Port = "veh-8", "/data", "/run/sim/veh-8-gps"
			c.MQTT.URL, c.MQTT.Namespace, c.Log.Level = "tcp://10.0.0.9:8883", "t1/fleet/v1", "warn"
		}},
		{"empty counts as unset for :-", map[string]string{"VEHICLE_ID": "veh-9", "DATA_DIR": ""}, func(c *Config) {
			c.VehicleID, c.DataDir, c.GPS.Port = "veh-9", "/var/lib/fleetgate-env", "/tmp/sim/veh-9-gps"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig("testdata/env.yaml", env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tt.want(&want)
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
	if got := string(Expand([]byte("a $HOME ${X} ${Y:-d} ${Z:-} $${X} ${1BAD}"), env(map[string]string{"X": "x"}))); got != "a $HOME x d  $x ${1BAD}" {
		t.Errorf("Expand = %q", got)
	}
}

// badConfigs are configurations Validate refuses, each with the field its
// error must start with. FuzzParseConfig seeds from them too.
var badConfigs = func() []struct{ yaml, field string } {
	base := "vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n"
	return []struct{ yaml, field string }{
		{"gps:\n  port: /dev/ttyUSB0\n", "vehicle_id:"},
		{"vehicle_id: veh/1\ngps:\n  port: /dev/ttyUSB0\n", "vehicle_id:"},
		{"vehicle_id: veh-1\n", "gps.port:"},
		{"vehicle_id: veh-1\ngps:\n  port: ttyUSB0\n", "gps.port:"},
		{base + "data_dir: \"\"\n", "data_dir:"},
		{base + "obd:\n  port: udp://x:1\n", "obd.port:"},
		{base + "obd:\n  port: /dev/ttyUSB1\n  pids: [\"0C\", \"ZZ\"]\n", "obd.pids[1]:"},
		{base + "obd:\n  port: /dev/ttyUSB1\n  pids: []\n", "obd.pids:"},
		{base + "obd:\n  port: /dev/ttyUSB1\n  interval: 0s\n", "obd.interval:"},
		{base + "mqtt:\n  url: http://127.0.0.1:1883\n", "mqtt.url:"},
		{base + "mqtt:\n  url: tcp://127.0.0.1\n", "mqtt.url:"},
		// Refused by the uplink's URL parser (found by FuzzParseConfig's check).
		{base + "mqtt:\n  url: tls://broker:x\n", "mqtt.url:"},
		{base + "mqtt:\n  url: tcp://a b:1883\n", "mqtt.url:"},
		{base + "mqtt:\n  namespace: fleet/+/v1\n", "mqtt.namespace:"},
		{base + "mqtt:\n  keepalive: 10ms\n", "mqtt.keepalive:"},
		{base + "mqtt:\n  url: ssl://b:8883\n  tls:\n    cert: /c.pem\n", "mqtt.tls:"},
		{base + "mqtt:\n  tls:\n    ca: /ca.pem\n", "mqtt.tls:"},
		{base + "outbox:\n  flush_interval: -1s\n", "outbox.flush_interval:"},
		{base + "outbox:\n  max_bytes: 1KiB\n", "outbox.max_bytes:"},
		{base + "outbox:\n  max_age: 0s\n", "outbox.max_age:"},
		{base + "uplink:\n  batch_max_records: 0\n", "uplink.batch_max_records:"},
		{base + "uplink:\n  min_batch_age: -1s\n", "uplink.min_batch_age:"},
		{base + "uplink:\n  min_batch_age: 2h\n", "uplink.min_batch_age:"},
		{base + "uplink:\n  batch_max_age: -1s\n", "uplink.batch_max_age:"},
		{base + "uplink:\n  batch_max_age: 1s\n  min_batch_age: 1s\n", "uplink.batch_max_age:"},
		{base + "uplink:\n  inflight: 0\n", "uplink.inflight:"},
		{base + "uplink:\n  ack_timeout: 0s\n", "uplink.ack_timeout:"},
		{base + "uplink:\n  status_interval: 0s\n", "uplink.status_interval:"},
		{base + "uplink:\n  backoff_min: 2s\n  backoff_max: 1s\n", "uplink.backoff_max:"},
		{base + "  talkers: [GP, gn]\n", "gps.talkers[1]:"},
		{base + "  talkers: [IN, IN]\n", "gps.talkers[1]:"},
		{base + "clock:\n  max_skew: 0s\n", "clock.max_skew:"},
		{base + "http:\n  listen: 9100\n", "http.listen:"},
		{base + "log:\n  level: verbose\n", "log.level:"},
		{base + "log:\n  format: xml\n", "log.format:"},
	}
}()

func TestValidateNamesTheField(t *testing.T) {
	for _, tt := range badConfigs {
		_, err := ParseConfig([]byte(tt.yaml), env(nil))
		if err == nil || !strings.HasPrefix(err.Error(), tt.field) {
			t.Errorf("config\n%s\ngave %v; want an error starting %q", tt.yaml, err, tt.field)
		}
	}
}

func TestRejectsUnknownKeysAndBadTypes(t *testing.T) {
	base := "vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n"
	tests := []struct {
		yaml string
		say  string // the error mentions it
	}{
		{base + "gsp:\n  port: x\n", "gsp"},
		{base + "uplink:\n  batch_size: 10\n", "batch_size"},
		{"vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n  baud: 9600\n", "baud"},
		{base + "outbox:\n  flush_interval: 200\n", "into time.Duration"}, // durations need a unit
		{base + "outbox:\n  max_bytes: 256 furlongs\n", "furlongs"},
		{base + "uplink:\n  inflight: many\n", "many"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(tt.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), tt.say) {
			t.Errorf("config\n%s\ngave %v; want an error mentioning %q", tt.yaml, err, tt.say)
		}
	}
}

// Sizes ParseByteSize reads, and ones it refuses; FuzzParseByteSize seeds
// from both.
var (
	goodSizes = map[string]ByteSize{
		"0": 0, "1048576": 1 << 20, "256MiB": 256 << 20, "1GiB": 1 << 30, "512 KiB": 512 << 10,
		"10MB": 10e6, "3kB": 3000, "7B": 7,
	}
	badSizes = []string{"", "-1", "1.5GiB", "MiB", "1 XB", "99999999999999999999"}
)

func TestByteSize(t *testing.T) {
	for in, want := range goodSizes {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range badSizes {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}
