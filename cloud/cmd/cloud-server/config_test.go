package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/postgres"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	host, _ := os.Hostname()
	want := Config{
		DatabaseURL: "postgres://postgres@127.0.0.1:5432/fleetgate?sslmode=disable", RedisURL: "redis://127.0.0.1:6379/0",
		RedisPrefix: "fleetgate:", MQTTURL: "tcp://127.0.0.1:1883", MQTTNamespace: "fleet/v1", MQTTShareGroup: "ingest",
		MQTTClientID: "fleetgate-cloud-" + host,
		OSRMURL:      "http://127.0.0.1:5000", ListenAddr: ":8000", LogLevel: "info", LogFormat: "text",
		Jobs:          DefaultJobsConfig(),
		MaxClockAhead: "5m0s", StepBackAfter: "5s",
		RateLimit: "50", RateBurst: "100", RequestTimeout: "30s", SecureCookie: "false", SessionMaxAge: "12h0m0s",
		StatementTimeout: "15s", MaxStreams: "10", LiveBuffer: "100000", ListCacheTTL: "1s",
	}
	if c != want {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
}

// overrides sets every variable to a value other than its default.
var overrides = map[string]string{
	"DATABASE_URL": "postgresql://u:p@db:5432/fleet", "REDIS_URL": "rediss://r:6380/2", "REDIS_PREFIX": "x:",
	"MQTT_URL": "ssl://broker:8883", "MQTT_NAMESPACE": "t1/fleet/v1", "MQTT_SHARE_GROUP": "g",
	"MQTT_CLIENT_ID": "cloud-1", "OSRM_URL": "https://osrm", "LISTEN_ADDR": "127.0.0.1:9000",
	"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "INGEST_MAX_CLOCK_AHEAD": "1m", "INGEST_STEP_BACK_AFTER": "2s",
	"CORS_ALLOWED_ORIGINS": "https://dash.example.com, http://localhost:5173", "API_RATE_LIMIT": "5", "API_RATE_BURST": "10",
	"API_REQUEST_TIMEOUT": "10s", "API_SECURE_COOKIE": "true", "API_SESSION_MAX_AGE": "1h", "DATABASE_STATEMENT_TIMEOUT": "5s",
	"LIVE_MAX_STREAMS_PER_TOKEN": "3", "LIVE_BUFFER": "5000", "API_LIST_CACHE_TTL": "250ms",
	"MAP_TILE_URL": "https://{s}.tile.example.org/{z}/{x}/{y}.png", "MAP_TILE_ATTRIBUTION": "© Example",
}

func TestEnvironmentOverrides(t *testing.T) {
	c, err := LoadConfig(env(overrides))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgresql://u:p@db:5432/fleet" || c.RedisPrefix != "x:" || c.MQTTNamespace != "t1/fleet/v1" ||
		c.MQTTClientID != "cloud-1" || c.ListenAddr != "127.0.0.1:9000" || c.LogFormat != "json" {
		t.Errorf("config %+v", c)
	}
	a, err := c.api()
	if err != nil || len(a.CORSOrigins) != 2 || a.CORSOrigins[1] != "http://localhost:5173" || a.RateLimit != 5 || a.RateBurst != 10 ||
		a.RequestTimeout != 10*time.Second || !a.SecureCookie || a.SessionMaxAge != time.Hour || a.StatementTimeout != 5*time.Second ||
		a.MaxStreams != 3 || a.LiveBuffer != 5000 || a.ListCacheTTL != 250*time.Millisecond {
		t.Errorf("API settings %+v, %v", a, err)
	}
	if w := c.web(); w.TileURL != "https://{s}.tile.example.org/{z}/{x}/{y}.png" || w.TileAttribution != "© Example" {
		t.Errorf("dashboard settings %+v", w)
	}
}

// badVars are values Validate refuses, each with what its error must say.
// FuzzLoadConfig seeds from them too.
var badVars = []struct{ name, value, want string }{
	{"DATABASE_URL", "mysql://x/db", "DATABASE_URL"},
	{"DATABASE_URL", "postgres://127.0.0.1:5432", "no database name"},
	{"DATABASE_URL", "postgres://u:secret@db/fleet?sslmode=bogus", "sslmode"},
	{"REDIS_URL", "127.0.0.1:6379", "REDIS_URL"},
	{"REDIS_URL", "redis://127.0.0.1:6379/x", "REDIS_URL"},
	{"MQTT_URL", "http://broker", "MQTT_URL"},
	{"MQTT_URL", "tcp://", "no host"},
	{"MQTT_NAMESPACE", "fleet/+/v1", "MQTT_NAMESPACE"},
	{"MQTT_NAMESPACE", "/fleet", "MQTT_NAMESPACE"},
	{"MQTT_SHARE_GROUP", "a/b", "MQTT_SHARE_GROUP"},
	{"OSRM_URL", "osrm:5000", "OSRM_URL"},
	{"LISTEN_ADDR", "8000", "LISTEN_ADDR"},
	{"LISTEN_ADDR", ":99999", "LISTEN_ADDR"},
	{"LOG_LEVEL", "loud", "LOG_LEVEL"},
	{"LOG_FORMAT", "xml", "LOG_FORMAT"},
	{"INGEST_MAX_CLOCK_AHEAD", "5", "INGEST_MAX_CLOCK_AHEAD"},
	{"INGEST_MAX_CLOCK_AHEAD", "-1m", "INGEST_MAX_CLOCK_AHEAD"},
	{"INGEST_STEP_BACK_AFTER", "48h", "INGEST_STEP_BACK_AFTER"},
	{"CORS_ALLOWED_ORIGINS", "*", "CORS_ALLOWED_ORIGINS"},
	{"CORS_ALLOWED_ORIGINS", "https://a.example.com/path", "CORS_ALLOWED_ORIGINS"},
	{"API_RATE_LIMIT", "fast", "API_RATE_LIMIT"},
	{"API_RATE_LIMIT", "-1", "API_RATE_LIMIT"},
	{"API_RATE_BURST", "0", "API_RATE_BURST"},
	{"API_REQUEST_TIMEOUT", "30", "API_REQUEST_TIMEOUT"},
	{"API_SECURE_COOKIE", "yes", "API_SECURE_COOKIE"},
	{"API_SESSION_MAX_AGE", "1s", "API_SESSION_MAX_AGE"},
	{"DATABASE_STATEMENT_TIMEOUT", "2h", "DATABASE_STATEMENT_TIMEOUT"},
	{"LIVE_MAX_STREAMS_PER_TOKEN", "0", "LIVE_MAX_STREAMS_PER_TOKEN"},
	{"LIVE_BUFFER", "10", "LIVE_BUFFER"},
	{"API_LIST_CACHE_TTL", "1", "API_LIST_CACHE_TTL"},
	{"API_LIST_CACHE_TTL", "-1s", "API_LIST_CACHE_TTL"},
	{"API_LIST_CACHE_TTL", "2m", "API_LIST_CACHE_TTL"},
	{"MAP_TILE_URL", "tile.example.org/{z}/{x}/{y}.png", "MAP_TILE_URL"},
	{"MAP_TILE_URL", "https://tile.example.org/{z}/{x}.png", "MAP_TILE_URL"},
	{"TRIP_STOP_DURATION", "5", "TRIP_STOP_DURATION"},
	{"TRIP_STOP_DURATION", "-5m", "TRIP_STOP_DURATION"},
	{"TRIP_MOVING_SPEED", "fast", "TRIP_MOVING_SPEED"},
	{"TRIP_MIN_DISTANCE", "NaN", "TRIP_MIN_DISTANCE"},
	{"TRIP_TANK_LITRES", "-45", "TRIP_TANK_LITRES"},
	{"TRIP_INTERVAL", "0s", "TRIP_INTERVAL"},
	{"OSRM_PROFILE", "car/x", "OSRM_PROFILE"},
	{"OSRM_MAX_COORDINATES", "5", "OSRM_MAX_COORDINATES"},
	{"OSRM_TIMEOUT", "soon", "OSRM_TIMEOUT"},
	{"RETENTION_POSITIONS_DAYS", "-1", "RETENTION_POSITIONS_DAYS"},
	{"RETENTION_EVENTS_DAYS", "1.5", "RETENTION_EVENTS_DAYS"},
	{"RETENTION_INTERVAL", "hourly", "RETENTION_INTERVAL"},
}

func TestJobVariables(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{"TRIP_STOP_DURATION": "10m", "TRIP_TANK_LITRES": "45", "TRIP_MOVING_SPEED": "0.5",
		"OSRM_MAX_COORDINATES": "500", "OSRM_TIMEOUT": "3s", "RETENTION_POSITIONS_DAYS": "30", "RETENTION_OBD_DAYS": "0",
		"RETENTION_INTERVAL": "10m"}))
	if err != nil {
		t.Fatal(err)
	}
	j := c.Jobs
	if j.Trip.StopDuration != 10*time.Minute || j.Trip.TankLitres != 45 || j.Trip.MovingSpeed != 0.5 || j.OSRMMaxCoordinates != 500 ||
		j.OSRMTimeout != 3*time.Second || j.Retention.Positions != 30*24*time.Hour || j.Retention.OBD != 0 || j.RetentionInterval != 10*time.Minute {
		t.Errorf("jobs config %+v", j)
	}
	if j.Retention.Events != postgres.DefaultRetention().Events || j.Trip.MinDistance != cloud.DefaultMinTripDistance {
		t.Errorf("the variables not given did not keep their defaults: %+v", j)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	for _, tt := range badVars {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := LoadConfig(env(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %v shows the password", err)
			}
		})
	}
}
