package main

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

// FuzzLoadConfig sets the variables LoadConfig reads to arbitrary values: the
// input split at NUL bytes (which no environment value holds), in the order of
// Config.vars. LoadConfig must not panic nor read a variable not in that list;
// an error starts with the name of the variable at fault; a configuration it
// accepts holds each value given, the default where the value is "", and
// what main takes as validated: a listen port, a log level.
func FuzzLoadConfig(f *testing.F) {
	var names []string
	var defaults []string
	d := DefaultConfig()
	for _, v := range d.vars() {
		names = append(names, v.name)
		defaults = append(defaults, *v.field)
	}
	names = append(names, jobVars...) // typed: checked by their own tests
	values := func(m map[string]string) string {
		vs := make([]string, len(names))
		for i, n := range names {
			vs[i] = m[n]
		}
		return strings.Join(vs, "\x00")
	}
	f.Add("")
	f.Add(values(overrides))
	for _, tt := range badVars {
		f.Add(values(map[string]string{tt.name: tt.value}))
	}
	f.Fuzz(func(t *testing.T, in string) {
		given := strings.Split(in, "\x00")
		c, err := LoadConfig(func(name string) string {
			i := slices.Index(names, name)
			if i < 0 {
				t.Fatalf("LoadConfig reads %s, which Config.vars does not list", name)
			}
			if i < len(given) {
				return given[i]
			}
			return ""
		})
		if err != nil {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(err.Error(), n) }) {
				t.Fatalf("values %q: error %q does not start with a variable's name", given, err)
			}
			return
		}
		for i, v := range c.vars() {
			want := defaults[i]
			if i < len(given) && given[i] != "" {
				want = given[i]
			}
			if *v.field != want {
				t.Fatalf("values %q: %s = %q, want %q", given, v.name, *v.field, want)
			}
		}
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			t.Fatalf("LISTEN_ADDR %q accepted: %v", c.ListenAddr, err)
		}
		if _, err := c.level(); err != nil {
			t.Fatal(err)
		}
		newLogger(&c, io.Discard).Info("fuzz", "database", redact(c.DatabaseURL), "mqtt", redact(c.MQTTURL))
	})
}
