// Package testenv is the repository's test support, in one place. It gives
// tests their own isolated piece of the real services on this machine (a fresh
// PostgreSQL database, a Redis key prefix, an MQTT topic namespace, free
// ports), starts what a test may break on purpose (a private Mosquitto it can
// kill and restart, a TCP proxy that cuts connections at chosen moments),
// starts programs with their logs kept for failures, waits for conditions
// (Eventually), and builds the repository's binaries once per test process,
// removing them afterwards (Main). A shared service that is not running fails
// the test with the command that starts it (deploy/setup.sh starts them all);
// nothing here skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Addresses of the shared services, overridable for unusual machines.
var (
	PostgresAdmin = env("FLEETGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	RedisAddr     = env("FLEETGATE_TEST_REDIS", "127.0.0.1:6379")
	MQTTAddr      = env("FLEETGATE_TEST_MQTT", "127.0.0.1:1883")
)

// StartCommands says how to start each shared service by hand;
// deploy/setup.sh runs the same commands for every service that is down.
var StartCommands = map[string]string{
	"PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
	"Redis":      `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`,
	"Mosquitto":  "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ID returns a short random identifier, unique enough to name a test's database,
// key prefix, topic namespace or vehicles.
func ID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func unavailable(t testing.TB, service, addr string, err error) {
	t.Helper()
	t.Fatalf("%s is not reachable at %s (%v). Start it with:\n  %s", service, addr, err, StartCommands[service])
}

// Postgres creates an empty database for the test, drops it when the test ends,
// and returns its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PostgresAdmin)
	if err != nil {
		unavailable(t, "PostgreSQL", PostgresAdmin, err)
	}
	defer admin.Close(ctx)
	name := "fg_test_" + ID()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, PostgresAdmin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg, err := pgx.ParseConfig(PostgresAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// Redis returns the URL of the shared Redis and a key prefix of the test's own
// ("fgtest:<id>:"); the keys under it are deleted when the test ends.
func Redis(t testing.TB) (url, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		unavailable(t, "Redis", RedisAddr, err)
	}
	prefix = "fgtest:" + ID() + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean Redis prefix %s: %v", prefix, err)
		}
	})
	return "redis://" + RedisAddr + "/0", prefix
}

// MQTT checks the shared broker is up and returns its URL and a topic namespace
// of the test's own ("t<id>/fleet/v1"), so that its messages meet no other test's.
func MQTT(t testing.TB) (url, namespace string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", MQTTAddr, 5*time.Second)
	if err != nil {
		unavailable(t, "Mosquitto", MQTTAddr, err)
	}
	c.Close()
	return "tcp://" + MQTTAddr, "t" + ID() + "/fleet/v1"
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
