package main

import (
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/obd"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// FuzzParseConfig feeds arbitrary YAML and environment (NAME=value lines) to
// ParseConfig. It must not panic, and a configuration it accepts must hold
// what Validate promises, checked here by the parts that use it: a vehicle id
// of [A-Za-z0-9_-]{1,64}, device URLs serial.Parse takes, OBD settings Apply
// takes with each PID once, a broker URL and namespace mqtt.New takes,
// positive durations, sizes and counts within their bounds, a known log level
// and format.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		if raw, err := os.ReadFile(name); err == nil {
			f.Add(raw, "VEHICLE_ID=veh-7")
			f.Add(raw, "VEHICLE_ID=veh-8\nDATA_DIR=/data\nSIM_DIR=/run/sim\nMQTT_HOST=10.0.0.9\nMQTT_PORT=8883\nNAMESPACE=t1/fleet/v1\nLOG_LEVEL=warn")
		}
	}
	for _, c := range badConfigs {
		f.Add([]byte(c.yaml), "")
	}
	f.Add([]byte("vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\n  bauds: [9600, 4800]\nobd:\n  port: tcp://127.0.0.1:35000\n"+
		"  pids: [{pid: \"0C\", every: 200ms}, \"0D\", {pid: \"05\", every: 10s}]\n  timeout: 500ms\n  vin: false\n"), "")
	f.Fuzz(func(t *testing.T, raw []byte, vars string) {
		m := map[string]string{}
		for l := range strings.Lines(vars) {
			k, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), "=")
			m[k] = v
		}
		c, err := ParseConfig(raw, env(m))
		if err != nil {
			return
		}
		if err := checkConfig(c); err != "" {
			t.Fatalf("ParseConfig accepted\n%s\nwith %q, but %s", raw, vars, err)
		}
	})
}

var vehicleIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// checkConfig returns what is wrong with a validated configuration, or "".
func checkConfig(c Config) string {
	if !vehicleIDRe.MatchString(c.VehicleID) {
		return "vehicle_id " + strconv.Quote(c.VehicleID) + " is not [A-Za-z0-9_-]{1,64}"
	}
	if c.DataDir == "" {
		return "data_dir is empty"
	}
	if _, err := serial.Parse(c.GPS.Port); err != nil {
		return "gps.port: " + err.Error()
	}
	for i, b := range c.GPS.Bauds {
		if b < serial.MinBaud || b > serial.MaxBaud || slices.Index(c.GPS.Bauds, b) != i {
			return "gps.bauds " + strconv.Itoa(b)
		}
	}
	if c.OBD.Port != "" {
		if _, err := serial.Parse(c.OBD.Port); err != nil {
			return "obd.port: " + err.Error()
		}
		var src obd.Source
		if err := c.OBD.Apply(&src); err != nil {
			return "obd: Apply: " + err.Error()
		}
		pids := slices.Clone(src.PIDs)
		for _, p := range src.Polls {
			if p.Every < 10*time.Millisecond {
				return "obd: PID polled every " + p.Every.String()
			}
			pids = append(pids, p.PID)
		}
		slices.Sort(pids)
		if len(pids) == 0 || len(slices.Compact(pids)) != len(src.PIDs)+len(src.Polls) {
			return "obd: PIDs " + strings.Join(c.OBD.PIDs, " ") + " are not one or more, each once"
		}
		if src.Interval <= 0 || (src.Timeout != 0 && src.Timeout < 10*time.Millisecond) || src.OffInterval < 0 {
			return "obd: interval, timeout or off_interval out of bounds"
		}
	}
	s, err := uplink.New(c.SenderConfig(), nil, nil, nil)
	if err != nil {
		return "uplink.New: " + err.Error()
	}
	if _, err := mqtt.New(c.ConnConfig(nil), c.VehicleID, s, nil, nil); err != nil {
		return "mqtt.New: " + err.Error()
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") || (c.MQTT.TLS != TLSConfig{} && strings.HasPrefix(c.MQTT.URL, "tcp:")) {
		return "mqtt.tls does not fit mqtt.url " + c.MQTT.URL
	}
	for _, d := range []time.Duration{c.MQTT.KeepAlive, c.Outbox.FlushInterval, c.Outbox.MaxAge,
		c.Uplink.AckTimeout, c.Uplink.StatusInterval, c.Uplink.BackoffMin} {
		if d <= 0 {
			return "a duration is not positive"
		}
	}
	if a := c.Uplink.EffectiveMinBatchAge(); a < 0 || a > uplink.MaxMinBatchAge {
		return "the minimum batch age is out of bounds"
	}
	if c.Uplink.BackoffMax < c.Uplink.BackoffMin {
		return "uplink.backoff_max is below uplink.backoff_min"
	}
	if c.Outbox.MaxBytes < 1<<20 || c.Uplink.BatchMaxRecords < 1 || c.Uplink.BatchMaxRecords > telemetry.MaxRows ||
		c.Uplink.Inflight < 1 || c.Uplink.Inflight > 1000 {
		return "outbox.max_bytes, uplink.batch_max_records or uplink.inflight out of bounds"
	}
	if c.HTTP.Listen != "" {
		if _, err := HealthURL(c.HTTP.Listen); err != nil {
			return "http.listen: " + err.Error()
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil || (c.Log.Format != "text" && c.Log.Format != "json") {
		return "log level " + c.Log.Level + " or format " + c.Log.Format
	}
	return ""
}

// FuzzParseByteSize: a size ParseByteSize reads is its digits times its
// unit, exactly (no overflow), non-negative and at most 2⁶²; written as plain
// bytes it reads back the same; and a size is refused as too large only when
// it is.
func FuzzParseByteSize(f *testing.F) {
	for s := range goodSizes {
		f.Add(s)
	}
	for _, s := range badSizes {
		f.Add(s)
	}
	f.Add("4611686018427387904")
	f.Add("4194304TiB")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		trimmed := strings.TrimSpace(s)
		i := strings.IndexFunc(trimmed, func(r rune) bool { return r < '0' || r > '9' })
		if i < 0 {
			i = len(trimmed)
		}
		digits, unit := new(big.Int), strings.TrimSpace(trimmed[i:])
		digits.SetString(trimmed[:i], 10)
		want := digits.Mul(digits, big.NewInt(sizeUnits[unit]))
		if err != nil {
			if strings.Contains(err.Error(), "too large") && want.Cmp(big.NewInt(1<<62)) <= 0 {
				t.Fatalf("ParseByteSize(%q): %v, but it is %v bytes", s, err, want)
			}
			return
		}
		if n < 0 || want.Cmp(big.NewInt(int64(n))) != 0 || n > 1<<62 {
			t.Fatalf("ParseByteSize(%q) = %d, want %v", s, n, want)
		}
		if back, err := ParseByteSize(strconv.FormatInt(int64(n), 10)); err != nil || back != n {
			t.Fatalf("ParseByteSize(%d) = %d, %v", n, back, err)
		}
	})
}
