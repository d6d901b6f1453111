package main

import (
	"strings"
	"testing"
	"time"
)

func TestValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		change func(*Config)
		field  string // "" = valid
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.Start = "2026-11-27T10:00:00.123+01:00"; c.Duration = time.Minute }, ""},
		{func(c *Config) { c.Vehicles = 0 }, "--vehicles"},
		{func(c *Config) { c.Vehicles = 1000 }, "--vehicles"},
		{func(c *Config) { c.IDPrefix = "veh/" }, "--id-prefix"},
		{func(c *Config) { c.IDPrefix = strings.Repeat("x", 62) }, "--id-prefix"},
		{func(c *Config) { c.Rate = 0 }, "--rate"},
		{func(c *Config) { c.Rate = 26 }, "--rate"},
		{func(c *Config) { c.Speed = 0 }, "--speed"},
		{func(c *Config) { c.Duration = -time.Second }, "--duration"},
		{func(c *Config) { c.Route = "atlantis" }, "--route"},
		{func(c *Config) { c.Start = "yesterday" }, "--start"},
	}
	for i, tt := range tests {
		c := DefaultConfig()
		tt.change(&c)
		err := c.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("case %d: %v", i, err)
		case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
			t.Errorf("case %d: error %v does not name %s", i, err, tt.field)
		}
	}
}

func TestStartTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 5, 437_000_000, time.FixedZone("CET", 3600))
	tests := []struct{ start, want string }{
		{"now", "2026-11-27T09:00:05Z"},
		{"NOW", "2026-11-27T09:00:05Z"},
		{"2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z"},
		{"2026-11-27T11:00:00.4567+01:00", "2026-11-27T10:00:00.45Z"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Start = tt.start
		got, err := c.startTime(now)
		if err != nil || got.Format(time.RFC3339Nano) != tt.want {
			t.Errorf("start %q: %v %v, want %s", tt.start, got.Format(time.RFC3339Nano), err, tt.want)
		}
	}
}
