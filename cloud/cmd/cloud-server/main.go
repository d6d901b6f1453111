// Command cloud-server is Fleetgate's cloud service: MQTT ingest into
// PostgreSQL and Redis, and the HTTP API. It wires the cloud adapters
// together; configuration comes from the environment (config.go).
//
//	cloud-server run          ingest + API; applies the embedded migrations at start
//	cloud-server migrate      creates the database if missing, applies migrations, exits
//	cloud-server check        checks PostgreSQL, Redis and the broker; exit 1 if one is down
//	cloud-server healthcheck  GET http://127.0.0.1:<port>/health; exit 0 or 1 (for Docker)
//	cloud-server retire ID    removes the broker session of a replica gone for good
//	cloud-server token …      creates, lists and revokes API tokens
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/fleetgate/fleetgate/cloud/dispatch"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/cloud/mqtt"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/cloud/web"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

const usage = `usage: cloud-server <command>

commands:
  run          ingest + API; applies the embedded migrations at start
  migrate      create the database if missing, apply migrations, exit
  check        check PostgreSQL, Redis and the broker; exit 1 if one is down
  healthcheck  GET http://127.0.0.1:<port>/health; exit 0 or 1
  retire ID    remove the broker session of a replica gone for good (its
               MQTT_CLIENT_ID), so the broker stops handing it a share of the
               batches; not this replica's own id
  token create --name NAME --role viewer|operator|admin [--ttl DURATION]
               make an API token and print it (once) on standard output
  token list   the tokens not revoked: name, role, created, expires, last used
  token revoke NAME
               revoke a token at once

Configuration is read from the environment; see cloud/README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command in args and returns the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (len(args) != 1 && args[0] != "retire" && args[0] != "token") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "cloud-server: configuration: %v\n", err)
		return 2
	}
	logger := newLogger(&cfg, stderr)
	switch args[0] {
	case "run":
		err = runServer(ctx, &cfg, logger, stderr)
	case "migrate":
		err = postgres.Migrate(ctx, cfg.DatabaseURL)
		if err == nil {
			fmt.Fprintf(stdout, "database %s is migrated\n", redact(cfg.DatabaseURL))
		}
	case "check":
		if !check(ctx, &cfg, stdout) {
			return 1
		}
		return 0
	case "healthcheck":
		err = healthcheck(ctx, &cfg)
	case "retire":
		if len(args) != 2 || args[1] == "" {
			fmt.Fprint(stderr, "cloud-server retire: want the client id of the replica to retire\n\n", usage)
			return 2
		}
		if args[1] == cfg.MQTTClientID {
			fmt.Fprintf(stderr, "cloud-server retire: %s is this replica's own MQTT_CLIENT_ID; retire another replica's\n", args[1])
			return 2
		}
		// A broker that binds client ids to logins (deploy/mosquitto:
		// use_username_as_clientid) would reset the session of the login
		// instead of args[1]'s.
		if u, _ := url.Parse(cfg.MQTTURL); u.User != nil && u.User.Username() != "" && u.User.Username() != args[1] {
			fmt.Fprintf(stderr, "cloud-server retire: MQTT_URL logs in as %s; a broker that makes logins client ids would reset %s's session, not %s's: set MQTT_URL with %s's login\n",
				u.User.Username(), u.User.Username(), args[1], args[1])
			return 2
		}
		if err = mqtt.RemoveSession(ctx, cfg.MQTTURL, args[1]); err == nil {
			fmt.Fprintf(stdout, "removed the broker session of %s at %s: the broker no longer queues a share of the batches for it\n", args[1], redact(cfg.MQTTURL))
		}
	case "token":
		return tokenCommand(ctx, &cfg, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cloud-server: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "cloud-server %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := cfg.level() // validated
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runServer checks the services, migrates, opens the stores and runs ingest,
// the API and partition maintenance until ctx is done; then ingest stops
// taking messages and finishes those in flight, the API finishes its
// requests, and the pools close.
func runServer(ctx context.Context, cfg *Config, logger *slog.Logger, stderr io.Writer) error {
	if !check(ctx, cfg, stderr) {
		return errors.New("a required service is not reachable")
	}
	if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	apiCfg, _ := cfg.api() // validated
	dash, err := web.New(cfg.web())
	if err != nil {
		return err
	}
	db := postgres.NewDB(cfg.DatabaseURL)
	db.StatementTimeout = apiCfg.StatementTimeout
	db.Logger = logger.With("component", "postgres")
	if err := db.Open(ctx); err != nil {
		return err
	}
	defer db.Close()
	live := redis.NewLiveState(cfg.RedisURL, cfg.RedisPrefix)
	live.Buffer = apiCfg.LiveBuffer
	if err := live.Open(ctx); err != nil {
		return err
	}
	defer live.Close()

	maxAhead, stepBack, _ := cfg.durations() // validated
	sess := mqtt.NewSession(cfg.MQTTURL, cfg.MQTTClientID)
	sess.Namespace = telemetry.Namespace(cfg.MQTTNamespace)
	sess.ShareGroup = cfg.MQTTShareGroup
	sess.Logger = logger.With("component", "mqtt")
	pl := ingest.New(db, sess)
	pl.Namespace = sess.Namespace
	pl.Live, pl.Flow = live, sess
	pl.MaxClockAhead, pl.StepBackAfter = maxAhead, stepBack
	pl.Logger = logger.With("component", "ingest")
	sess.Deliver = pl.Receive

	disp := dispatch.New(db, sess)
	disp.Logger = logger.With("component", "dispatch")
	hub := httpapi.NewHub(live)
	hub.Logger = logger.With("component", "live")

	jobs := newJobs(cfg, db, logger) // trips, map matching, retention: jobs.go
	api := httpapi.NewServer(cfg.ListenAddr)
	api.Vehicles, api.Positions, api.OBD, api.Events, api.Statuses = db, db, db, db, db
	api.Commands, api.Sender, api.DeadLetters, api.Tokens = db, disp, db, db
	api.Live, api.Hub, api.Slots, api.Trips = live, hub, live, db
	api.CORSOrigins, api.SecureCookie, api.SessionMaxAge = apiCfg.CORSOrigins, apiCfg.SecureCookie, apiCfg.SessionMaxAge
	api.RequestTimeout, api.RateLimit, api.RateBurst = apiCfg.RequestTimeout, rate.Limit(apiCfg.RateLimit), apiCfg.RateBurst
	api.MaxStreams, api.ListCacheTTL = apiCfg.MaxStreams, apiCfg.ListCacheTTL
	api.Ready = []httpapi.Check{{Name: "PostgreSQL", Pinger: db}, {Name: "Redis", Pinger: live},
		{Name: "broker", Pinger: sess}, {Name: "ingest", Pinger: pl}}
	api.Web = dash
	m := newMetrics(pl, sess, hub)
	m.reg.MustRegister(jobs.metrics) // the background jobs' (jobs.go)
	api.Metrics, api.Observe = m.Handler(), m.Observe
	api.Logger = logger.With("component", "http")

	logger.Info("cloud-server starting", "listen", cfg.ListenAddr, "mqtt", redact(cfg.MQTTURL), "namespace", cfg.MQTTNamespace,
		"filters", sess.Filters(), "client_id", cfg.MQTTClientID, "database", redact(cfg.DatabaseURL), "redis_prefix", cfg.RedisPrefix,
		"max_clock_ahead", maxAhead, "step_back_after", stepBack, "cors_origins", apiCfg.CORSOrigins,
		"rate_limit", apiCfg.RateLimit, "map_tiles", cfg.MapTileURL != "", "request_timeout", apiCfg.RequestTimeout, "statement_timeout", apiCfg.StatementTimeout,
		"list_cache_ttl", apiCfg.ListCacheTTL)
	if err := sess.Open(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// The session outlives the pipeline's drain: it publishes the
		// last Acks and acknowledges the last messages.
		defer sess.Close()
		return pl.Run(gctx)
	})
	g.Go(func() error { return api.Run(gctx) })
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return disp.Run(gctx) })
	g.Go(func() error { return db.RunMaintenance(gctx, 6*time.Hour) })
	jobs.start(g, gctx)
	err = g.Wait()
	s := pl.Stats()
	logger.Info("cloud-server stopped", "messages", s.Received, "acked", s.Acked, "inserted", s.Inserted,
		"commits", s.Commits, "dead_letters", s.Rows[ingest.KindDeadLetter], "live_failures", s.LiveFailures)
	return err
}

// service is one dependency as `check` reports it.
type service struct {
	name, url, start string
	ping             func(ctx context.Context) error
}

// startCommands are the commands that start the services on a development
// machine.
var startCommands = map[string]string{
	"PostgreSQL":  "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
	"Redis":       `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`,
	"MQTT broker": "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
}

// check asks PostgreSQL, Redis and the broker at once and writes one line
// per service to w, with the command that starts a local one that is down.
// It reports whether all answered.
func check(ctx context.Context, cfg *Config, w io.Writer) bool {
	services := []service{
		{"PostgreSQL", cfg.DatabaseURL, startCommands["PostgreSQL"], func(ctx context.Context) error { return postgres.Reachable(ctx, cfg.DatabaseURL) }},
		{"Redis", cfg.RedisURL, startCommands["Redis"], func(ctx context.Context) error {
			s := redis.NewLiveState(cfg.RedisURL, cfg.RedisPrefix)
			defer s.Close()
			return s.Open(ctx)
		}},
		{"MQTT broker", cfg.MQTTURL, startCommands["MQTT broker"], func(ctx context.Context) error { return mqtt.Reachable(ctx, cfg.MQTTURL) }},
	}
	errs := make([]error, len(services))
	done := make(chan int)
	for i, s := range services {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			errs[i] = s.ping(ctx)
			done <- i
		}()
	}
	for range services {
		<-done
	}
	ok := true
	for i, s := range services {
		addr := hostPort(s.url)
		if errs[i] == nil {
			fmt.Fprintf(w, "%s is reachable at %s\n", s.name, addr)
			continue
		}
		ok = false
		fmt.Fprintf(w, "%s is not reachable at %s: %v\n", s.name, addr, errs[i])
		if isLoopback(addr) {
			fmt.Fprintf(w, "  start it with: %s\n", s.start)
		} else {
			fmt.Fprintf(w, "  check that it runs and that the URL is right\n")
		}
	}
	return ok
}

// healthcheck asks the local API's /health.
func healthcheck(ctx context.Context, cfg *Config) error {
	_, port, _ := net.SplitHostPort(cfg.ListenAddr) // validated
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := "http://" + net.JoinHostPort("127.0.0.1", port) + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact hides a password in a URL for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
