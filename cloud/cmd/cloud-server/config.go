package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/cloud/osrm"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/cloud/web"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// Config is cloud-server's configuration, read from the environment
// (cloud/README.md lists the variables); every variable has a default.
type Config struct {
	DatabaseURL    string // DATABASE_URL
	RedisURL       string // REDIS_URL
	RedisPrefix    string // REDIS_PREFIX
	MQTTURL        string // MQTT_URL
	MQTTNamespace  string // MQTT_NAMESPACE
	MQTTShareGroup string // MQTT_SHARE_GROUP
	MQTTClientID   string // MQTT_CLIENT_ID
	OSRMURL        string // OSRM_URL
	ListenAddr     string // LISTEN_ADDR
	LogLevel       string // LOG_LEVEL
	LogFormat      string // LOG_FORMAT
	Jobs           JobsConfig
	// MaxClockAhead (INGEST_MAX_CLOCK_AHEAD) and StepBackAfter
	// (INGEST_STEP_BACK_AFTER) are durations ("5m", "5s"); see ingest.Pipeline.
	MaxClockAhead string
	StepBackAfter string
	// The API's settings; see apiSettings.
	CORSOrigins      string // CORS_ALLOWED_ORIGINS, comma-separated; "" none
	RateLimit        string // API_RATE_LIMIT, requests a second per token; 0 off
	RateBurst        string // API_RATE_BURST
	RequestTimeout   string // API_REQUEST_TIMEOUT
	SecureCookie     string // API_SECURE_COOKIE: true or false
	SessionMaxAge    string // API_SESSION_MAX_AGE
	StatementTimeout string // DATABASE_STATEMENT_TIMEOUT
	MaxStreams       string // LIVE_MAX_STREAMS_PER_TOKEN
	LiveBuffer       string // LIVE_BUFFER, updates kept for resuming streams
	ListCacheTTL     string // API_LIST_CACHE_TTL, how long a replica keeps a vehicle list's PostgreSQL part
	// The dashboard's map; see web.Config.
	MapTileURL         string // MAP_TILE_URL; "" a plain background
	MapTileAttribution string // MAP_TILE_ATTRIBUTION
}

// DefaultConfig returns the documented defaults. The MQTT client id is
// fleetgate-cloud-<hostname>: stable across restarts, so the broker keeps the
// server's session and the QoS 1 messages queued while it was down. (An id that
// changed on every start would leave a stale member in the shared subscription,
// to which Mosquitto keeps handing a share of the messages.)
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return Config{
		DatabaseURL:    "postgres://postgres@127.0.0.1:5432/fleetgate?sslmode=disable",
		RedisURL:       "redis://127.0.0.1:6379/0",
		RedisPrefix:    "fleetgate:",
		MQTTURL:        "tcp://127.0.0.1:1883",
		MQTTNamespace:  string(telemetry.DefaultNamespace),
		MQTTShareGroup: "ingest",
		MQTTClientID:   "fleetgate-cloud-" + host,
		OSRMURL:        "http://127.0.0.1:5000",
		ListenAddr:     ":8000",
		LogLevel:       "info",
		LogFormat:      "text",
		Jobs:           DefaultJobsConfig(),
		MaxClockAhead:  cloud.DefaultMaxClockAhead.String(),
		StepBackAfter:  ingest.DefaultStepBackAfter.String(),

		RateLimit:        strconv.Itoa(httpapi.DefaultRateLimit),
		RateBurst:        strconv.Itoa(httpapi.DefaultRateBurst),
		RequestTimeout:   httpapi.DefaultRequestTimeout.String(),
		SecureCookie:     "false",
		SessionMaxAge:    httpapi.DefaultSessionMaxAge.String(),
		StatementTimeout: postgres.DefaultStatementTimeout.String(),
		MaxStreams:       strconv.Itoa(httpapi.DefaultMaxStreams),
		LiveBuffer:       strconv.Itoa(redis.DefaultBuffer),
		ListCacheTTL:     httpapi.DefaultListCacheTTL.String(),
	}
}

// vars lists the environment variables and the fields they set.
func (c *Config) vars() []struct {
	name  string
	field *string
} {
	return []struct {
		name  string
		field *string
	}{
		{"DATABASE_URL", &c.DatabaseURL}, {"REDIS_URL", &c.RedisURL}, {"REDIS_PREFIX", &c.RedisPrefix},
		{"MQTT_URL", &c.MQTTURL}, {"MQTT_NAMESPACE", &c.MQTTNamespace}, {"MQTT_SHARE_GROUP", &c.MQTTShareGroup},
		{"MQTT_CLIENT_ID", &c.MQTTClientID}, {"OSRM_URL", &c.OSRMURL}, {"LISTEN_ADDR", &c.ListenAddr},
		{"LOG_LEVEL", &c.LogLevel}, {"LOG_FORMAT", &c.LogFormat},
		{"INGEST_MAX_CLOCK_AHEAD", &c.MaxClockAhead}, {"INGEST_STEP_BACK_AFTER", &c.StepBackAfter},
		{"CORS_ALLOWED_ORIGINS", &c.CORSOrigins}, {"API_RATE_LIMIT", &c.RateLimit}, {"API_RATE_BURST", &c.RateBurst},
		{"API_REQUEST_TIMEOUT", &c.RequestTimeout}, {"API_SECURE_COOKIE", &c.SecureCookie},
		{"API_SESSION_MAX_AGE", &c.SessionMaxAge}, {"DATABASE_STATEMENT_TIMEOUT", &c.StatementTimeout},
		{"LIVE_MAX_STREAMS_PER_TOKEN", &c.MaxStreams}, {"LIVE_BUFFER", &c.LiveBuffer}, {"API_LIST_CACHE_TTL", &c.ListCacheTTL},
		{"MAP_TILE_URL", &c.MapTileURL}, {"MAP_TILE_ATTRIBUTION", &c.MapTileAttribution},
	}
}

// LoadConfig returns the defaults overridden by the variables getenv finds
// (a variable set to "" counts as unset), validated.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	for _, v := range c.vars() {
		if s := getenv(v.name); s != "" {
			*v.field = s
		}
	}
	var err error
	if c.Jobs, err = loadJobs(getenv); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate returns an error naming the first variable with an unusable value.
func (c *Config) Validate() error {
	checkURL := func(name, v string, schemes ...string) error {
		u, err := url.Parse(v)
		switch {
		case err != nil:
			return fmt.Errorf("%s: %v", name, err) // url's error quotes the value, password included: not it
		case !slices.Contains(schemes, u.Scheme):
			return fmt.Errorf("%s %q: scheme %q, want one of %s", name, u.Redacted(), u.Scheme, strings.Join(schemes, ", "))
		case u.Host == "":
			return fmt.Errorf("%s %q: no host", name, u.Redacted())
		}
		return nil
	}
	if err := checkURL("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql"); err != nil {
		return err
	}
	if u, _ := url.Parse(c.DatabaseURL); strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("DATABASE_URL %q: no database name", u.Redacted())
	}
	// What the clients themselves refuse (sslmode=bogus, a Redis database
	// that is not a number) is refused here, as a configuration error.
	if err := postgres.CheckURL(c.DatabaseURL); err != nil {
		return fmt.Errorf("DATABASE_URL %q: %v", redact(c.DatabaseURL), err)
	}
	if err := checkURL("REDIS_URL", c.RedisURL, "redis", "rediss"); err != nil {
		return err
	}
	if err := redis.CheckURL(c.RedisURL); err != nil {
		return fmt.Errorf("REDIS_URL %q: %v", redact(c.RedisURL), err)
	}
	if err := checkURL("MQTT_URL", c.MQTTURL, "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"); err != nil {
		return err
	}
	if err := telemetry.Namespace(c.MQTTNamespace).Valid(); err != nil {
		return fmt.Errorf("MQTT_NAMESPACE: %v", err)
	}
	if strings.ContainsAny(c.MQTTShareGroup, "/+#") {
		return fmt.Errorf("MQTT_SHARE_GROUP %q: must not contain / + or #", c.MQTTShareGroup)
	}
	if len(c.MQTTClientID) > 65535 {
		return fmt.Errorf("MQTT_CLIENT_ID: longer than 65535 bytes")
	}
	if err := checkURL("OSRM_URL", c.OSRMURL, "http", "https"); err != nil {
		return err
	}
	if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("LISTEN_ADDR %q: %v", c.ListenAddr, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("LISTEN_ADDR %q: port %q is not 0 to 65535", c.ListenAddr, port)
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat)
	}
	if _, _, err := c.durations(); err != nil {
		return err
	}
	if _, err := c.api(); err != nil {
		return err
	}
	if err := c.web().Validate(); err != nil {
		return fmt.Errorf("MAP_TILE_URL: %v", err)
	}
	return nil
}

// web returns the dashboard's settings.
func (c *Config) web() web.Config {
	return web.Config{TileURL: c.MapTileURL, TileAttribution: c.MapTileAttribution}
}

// apiSettings are the API's settings, parsed.
type apiSettings struct {
	CORSOrigins      []string
	RateLimit        float64
	RateBurst        int
	RequestTimeout   time.Duration
	SecureCookie     bool
	SessionMaxAge    time.Duration
	StatementTimeout time.Duration
	MaxStreams       int
	LiveBuffer       int
	ListCacheTTL     time.Duration
}

// api returns the API's settings parsed, or an error naming the variable.
func (c *Config) api() (apiSettings, error) {
	var a apiSettings
	for _, o := range strings.Split(c.CORSOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return a, fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an origin such as https://dash.example.com", o)
		}
		a.CORSOrigins = append(a.CORSOrigins, u.Scheme+"://"+u.Host)
	}
	var err error
	num := func(name, v string, lo, hi float64) float64 {
		f, perr := strconv.ParseFloat(v, 64)
		if err == nil && (perr != nil || !(f >= lo && f <= hi)) {
			err = fmt.Errorf("%s %q: want a number from %v to %v", name, v, lo, hi)
		}
		return f
	}
	dur := func(name, v string, lo, hi time.Duration) time.Duration {
		d, perr := time.ParseDuration(v)
		if err == nil && (perr != nil || d < lo || d > hi) {
			err = fmt.Errorf("%s %q: want a duration from %s to %s, such as 30s", name, v, lo, hi)
		}
		return d
	}
	a.RateLimit = num("API_RATE_LIMIT", c.RateLimit, 0, 1e6)
	a.RateBurst = int(num("API_RATE_BURST", c.RateBurst, 1, 1e6))
	a.RequestTimeout = dur("API_REQUEST_TIMEOUT", c.RequestTimeout, time.Second, time.Hour)
	a.SessionMaxAge = dur("API_SESSION_MAX_AGE", c.SessionMaxAge, time.Minute, 90*24*time.Hour)
	a.StatementTimeout = dur("DATABASE_STATEMENT_TIMEOUT", c.StatementTimeout, 0, time.Hour)
	a.MaxStreams = int(num("LIVE_MAX_STREAMS_PER_TOKEN", c.MaxStreams, 1, 1e6))
	a.LiveBuffer = int(num("LIVE_BUFFER", c.LiveBuffer, 100, 1e8))
	a.ListCacheTTL = dur("API_LIST_CACHE_TTL", c.ListCacheTTL, 0, time.Minute)
	if err != nil {
		return a, err
	}
	switch c.SecureCookie {
	case "true", "false":
		a.SecureCookie = c.SecureCookie == "true"
	default:
		return a, fmt.Errorf("API_SECURE_COOKIE %q: want true (the API is served over HTTPS, or behind a TLS proxy) or false", c.SecureCookie)
	}
	return a, nil
}

// durations returns MaxClockAhead and StepBackAfter parsed, or an error
// naming the variable.
func (c *Config) durations() (maxClockAhead, stepBackAfter time.Duration, err error) {
	for _, d := range []struct {
		name, value string
		dst         *time.Duration
		min         time.Duration
	}{
		{"INGEST_MAX_CLOCK_AHEAD", c.MaxClockAhead, &maxClockAhead, 0},
		{"INGEST_STEP_BACK_AFTER", c.StepBackAfter, &stepBackAfter, 0},
	} {
		v, err := time.ParseDuration(d.value)
		if err != nil {
			return 0, 0, fmt.Errorf("%s %q: want a duration such as 5m or 10s", d.name, d.value)
		}
		if v < d.min || v > 24*time.Hour {
			return 0, 0, fmt.Errorf("%s %q: want 0 to 24h", d.name, d.value)
		}
		*d.dst = v
	}
	return maxClockAhead, stepBackAfter, nil
}

func (c *Config) level() (slog.Level, error) {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel)
}

// JobsConfig configures the background jobs: trip detection, map matching
// and retention (TRIP_*, OSRM_*, RETENTION_* variables; see cloud/README.md).
type JobsConfig struct {
	Trip         cloud.TripConfig // TRIP_STOP_DURATION, TRIP_MOVING_SPEED, TRIP_STATIONARY_RADIUS, TRIP_MIN_DISTANCE, TRIP_TANK_LITRES
	TripInterval time.Duration    // TRIP_INTERVAL

	OSRMProfile        string        // OSRM_PROFILE
	OSRMMaxCoordinates int           // OSRM_MAX_COORDINATES
	OSRMTimeout        time.Duration // OSRM_TIMEOUT
	OSRMUERE           float64       // OSRM_UERE
	MatchInterval      time.Duration // OSRM_MATCH_INTERVAL

	Retention         postgres.Retention // RETENTION_<TABLE>_DAYS
	RetentionInterval time.Duration      // RETENTION_INTERVAL
}

// Job defaults (the others come from the packages).
const (
	DefaultTripInterval      = 30 * time.Second
	DefaultMatchInterval     = time.Minute
	DefaultRetentionInterval = time.Hour
)

// DefaultJobsConfig returns the documented defaults.
func DefaultJobsConfig() JobsConfig {
	return JobsConfig{Trip: cloud.DefaultTripConfig(), TripInterval: DefaultTripInterval,
		OSRMProfile: osrm.DefaultProfile, OSRMMaxCoordinates: osrm.DefaultMaxCoordinates, OSRMTimeout: osrm.DefaultTimeout,
		OSRMUERE: osrm.DefaultUERE, MatchInterval: DefaultMatchInterval,
		Retention: postgres.DefaultRetention(), RetentionInterval: DefaultRetentionInterval}
}

// jobVars lists the variables loadJobs reads.
var jobVars = []string{"TRIP_STOP_DURATION", "TRIP_MOVING_SPEED", "TRIP_STATIONARY_RADIUS", "TRIP_MIN_DISTANCE",
	"TRIP_TANK_LITRES", "TRIP_INTERVAL", "OSRM_PROFILE", "OSRM_MAX_COORDINATES", "OSRM_TIMEOUT", "OSRM_UERE",
	"OSRM_MATCH_INTERVAL", "RETENTION_POSITIONS_DAYS", "RETENTION_OBD_DAYS", "RETENTION_EVENTS_DAYS",
	"RETENTION_DEAD_LETTERS_DAYS", "RETENTION_COMMANDS_DAYS", "RETENTION_DEVICE_STATUS_DAYS", "RETENTION_TRIPS_DAYS",
	"RETENTION_INTERVAL"}

// loadJobs overrides the defaults with the variables getenv finds and
// validates the result, naming the variable at fault.
func loadJobs(getenv func(string) string) (JobsConfig, error) {
	c := DefaultJobsConfig()
	var errs []error
	dur := func(name string, v *time.Duration) {
		if s := getenv(name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s %q: want a positive duration such as 30s or 5m", name, s))
				return
			}
			*v = d
		}
	}
	num := func(name string, v *float64, lo, hi float64) {
		if s := getenv(name); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f >= lo && f <= hi) {
				errs = append(errs, fmt.Errorf("%s %q: want a number from %g to %g", name, s, lo, hi))
				return
			}
			*v = f
		}
	}
	days := func(name string, v *time.Duration) {
		if s := getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 100*365 {
				errs = append(errs, fmt.Errorf("%s %q: want whole days from 0 (keep for ever) to 36500", name, s))
				return
			}
			*v = time.Duration(n) * 24 * time.Hour
		}
	}
	dur("TRIP_STOP_DURATION", &c.Trip.StopDuration)
	num("TRIP_MOVING_SPEED", &c.Trip.MovingSpeed, 0.1, 50)
	num("TRIP_STATIONARY_RADIUS", &c.Trip.StationaryRadius, 1, 100_000)
	num("TRIP_MIN_DISTANCE", &c.Trip.MinDistance, 1, 1_000_000)
	num("TRIP_TANK_LITRES", &c.Trip.TankLitres, 0, 10_000)
	dur("TRIP_INTERVAL", &c.TripInterval)
	if s := getenv("OSRM_PROFILE"); s != "" {
		c.OSRMProfile = s
	}
	maxCoords := float64(c.OSRMMaxCoordinates)
	num("OSRM_MAX_COORDINATES", &maxCoords, 2*osrm.DefaultOverlap+2, 100_000)
	c.OSRMMaxCoordinates = int(maxCoords)
	dur("OSRM_TIMEOUT", &c.OSRMTimeout)
	num("OSRM_UERE", &c.OSRMUERE, 0.1, 100)
	dur("OSRM_MATCH_INTERVAL", &c.MatchInterval)
	days("RETENTION_POSITIONS_DAYS", &c.Retention.Positions)
	days("RETENTION_OBD_DAYS", &c.Retention.OBD)
	days("RETENTION_EVENTS_DAYS", &c.Retention.Events)
	days("RETENTION_DEAD_LETTERS_DAYS", &c.Retention.DeadLetters)
	days("RETENTION_COMMANDS_DAYS", &c.Retention.Commands)
	days("RETENTION_DEVICE_STATUS_DAYS", &c.Retention.DeviceStatus)
	days("RETENTION_TRIPS_DAYS", &c.Retention.Trips)
	dur("RETENTION_INTERVAL", &c.RetentionInterval)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.OSRMProfile == "" || strings.ContainsAny(c.OSRMProfile, "/?#;, ") {
		return c, fmt.Errorf("OSRM_PROFILE %q: want a profile name such as driving", c.OSRMProfile)
	}
	return c, nil
}
