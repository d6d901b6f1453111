// Package chaos proves Fleetgate's delivery guarantee (docs/GUARANTEES.md)
// under faults: it runs the real chain — simulator on ptys, edge agent,
// Mosquitto, cloud server, PostgreSQL — kills and restarts its parts, cuts its
// connections, and compares what reached PostgreSQL with the simulator's
// ground truth and with what the agent committed. The helpers here run the
// chain; the private broker and the connection-cutting proxy come from
// internal/testenv; the scenarios are in chaos_test.go. The cloud-side
// scenarios (cloud_test.go) load the cloud with a Fleet of virtual agents
// and kill or restart its replicas, a private PostgreSQL and a private Redis
// (services.go).
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// BrokerOptions is the private broker the scenarios run against:
// persistent, so that a restart keeps the sessions and what they queued, and
// with a window of 100 in-flight messages per client.
var BrokerOptions = testenv.MosquittoOptions{Persistence: true, MaxInflight: 100}

// Options say how to drive a Chain.
type Options struct {
	Speed    int           // simulated seconds per real second
	Rate     int           // GPS fixes per simulated second; default 1
	Duration time.Duration // simulated driving time
	OBD      bool          // poll the simulated ELM327 too
	// Agent settings; zero values take the ones chaos runs use.
	FlushInterval time.Duration // default 100ms
	AckTimeout    time.Duration // default 3s
	MinBatchAge   time.Duration // uplink.min_batch_age; default 0, the agent's
	MaxBytes      string        // outbox.max_bytes; default the agent's
}

// Chain is the whole chain for one scenario: a fresh database, a private
// Redis prefix, one simulated vehicle and its agent. The broker is the
// caller's (a private one, started with BrokerOptions).
type Chain struct {
	t        testing.TB
	opts     Options
	Dir      string
	Bin      string
	DB       string // PostgreSQL URL
	API      cloudapi.Client
	Vehicle  string
	NS       string // MQTT namespace
	Truth    string
	Start    time.Time
	DataDir  string
	HTTPAddr string // the agent's /health and /outbox

	Cloud, Sim, Agent *testenv.Proc
	agentRuns         int
	redisURL, prefix  string
}

// NewChain prepares a chain; nothing runs yet.
func NewChain(t testing.TB, o Options) *Chain {
	t.Helper()
	if o.Rate == 0 {
		o.Rate = 1
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 3 * time.Second
	}
	c := &Chain{t: t, opts: o, Dir: t.TempDir(), Bin: testenv.Binaries(t), DB: testenv.Postgres(t)}
	c.redisURL, c.prefix = testenv.Redis(t)
	id := testenv.ID()
	c.Vehicle = "chaos" + id + "-001"
	c.NS = "c" + id + "/fleet/v1"
	c.Truth = filepath.Join(c.Dir, "truth.jsonl")
	c.DataDir = filepath.Join(c.Dir, "agent-data")
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	return c
}

// StartCloud runs cloud-server against brokerURL and waits until it is ready.
func (c *Chain) StartCloud(brokerURL string) {
	c.t.Helper()
	port := testenv.FreePort(c.t)
	c.API = cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}
	c.Cloud = testenv.StartProcess(c.t, c.Dir, "cloud-server", filepath.Join(c.Bin, "cloud-server"), []string{
		"DATABASE_URL=" + c.DB, "REDIS_URL=" + c.redisURL, "REDIS_PREFIX=" + c.prefix,
		"MQTT_URL=" + brokerURL, "MQTT_NAMESPACE=" + c.NS, "MQTT_CLIENT_ID=chaos-cloud-" + testenv.ID(),
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=info",
	}, "run")
	e2e.WaitReady(c.t, 30*time.Second, c.API, c.Cloud)
	c.API.Token = e2e.Token(c.t, c.Cloud)
}

// StartSim runs the simulator for one vehicle and waits for its ports.
// Simulated time runs in the past, so that accelerated time never makes
// fixes from the future.
func (c *Chain) StartSim() {
	c.t.Helper()
	c.Start = time.Now().UTC().Add(-c.opts.Duration - time.Hour).Truncate(time.Second)
	links := filepath.Join(c.Dir, "dev")
	c.Sim = testenv.StartProcess(c.t, c.Dir, "firmware-sim", filepath.Join(c.Bin, "firmware-sim"), nil, "run",
		"--vehicles", "1", "--id-prefix", strings.TrimSuffix(c.Vehicle, "001"),
		"--speed", strconv.Itoa(c.opts.Speed), "--rate", strconv.Itoa(c.opts.Rate), "--start", c.Start.Format(time.RFC3339),
		"--baud", "115200", // a 10 Hz receiver needs more than 9600 baud (the simulator paces output to the line)
		"--duration", c.opts.Duration.String(), "--truth", c.Truth, "--link-dir", links, "--seed", "11")
	for _, dev := range []string{"gps", "obd"} {
		link := filepath.Join(links, c.Vehicle+"-"+dev)
		testenv.Eventually(c.t, 20*time.Second, link, func() error { _, err := os.Stat(link); return err }, c.Sim)
	}
}

// StartAgent (re)starts the edge agent against brokerURL with the chain's
// data directory: a restarted agent continues the same outbox. The GPS port
// keeps the default baud detection: what the pty buffered while the agent was
// down must survive the hunt and arrive.
func (c *Chain) StartAgent(brokerURL string) *testenv.Proc {
	c.t.Helper()
	c.agentRuns++
	obd := ""
	if c.opts.OBD {
		obd = fmt.Sprintf("obd:\n  port: %s\n  pids: [\"0C\", \"0D\", \"05\"]\n  interval: 200ms\n", filepath.Join(c.Dir, "dev", c.Vehicle+"-obd"))
	}
	maxBytes := ""
	if c.opts.MaxBytes != "" {
		maxBytes = "  max_bytes: " + c.opts.MaxBytes + "\n"
	}
	cfg := filepath.Join(c.Dir, fmt.Sprintf("agent-%d.yaml", c.agentRuns))
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`vehicle_id: %s
data_dir: %s
gps:
  port: %s
%smqtt:
  url: %s
  namespace: %s
  keepalive: 5s
outbox:
  flush_interval: %s
%suplink:
  min_batch_age: %s
  ack_timeout: %s
  status_interval: 2s
  backoff_min: 20ms
  backoff_max: 200ms
http:
  listen: %s
log:
  level: info
`, c.Vehicle, c.DataDir, filepath.Join(c.Dir, "dev", c.Vehicle+"-gps"), obd, brokerURL, c.NS,
		c.opts.FlushInterval, maxBytes, c.opts.MinBatchAge, c.opts.AckTimeout, c.HTTPAddr)), 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	c.Agent = testenv.StartProcess(c.t, c.Dir, fmt.Sprintf("edge-agent-%d", c.agentRuns), filepath.Join(c.Bin, "edge-agent"), nil, "run", "--config", cfg)
	return c.Agent
}

// KillAgent kills the agent with SIGKILL and waits for it to be gone.
func (c *Chain) KillAgent() {
	c.t.Helper()
	syscall.Kill(c.Agent.Cmd.Process.Pid, syscall.SIGKILL)
	c.Agent.Stop(c.t)
}

// OutboxStats is the agent's GET /outbox (what `edge-agent outbox stats`
// prints).
type OutboxStats struct {
	Depth     uint64            `json:"depth"`
	Bytes     uint64            `json:"bytes"`
	FileBytes int64             `json:"file_bytes"`
	MaxBytes  int64             `json:"max_bytes"`
	Dropped   uint64            `json:"dropped"`
	DroppedBy map[string]uint64 `json:"dropped_by"`
	StreamID  string            `json:"stream_id"`
	NextSeq   uint64            `json:"next_seq"`
}

// Outbox asks the running agent for its outbox's state.
func (c *Chain) Outbox() (OutboxStats, error) {
	var st OutboxStats
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTPAddr+"/outbox", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /outbox: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// OpenOutbox opens the stopped agent's outbox read-only; it is closed when
// the test ends, or by the caller.
func (c *Chain) OpenOutbox() *bolt.Outbox {
	c.t.Helper()
	o, err := bolt.Open(filepath.Join(c.DataDir, "outbox.db"), &bolt.Options{ReadOnly: true, LockTimeout: 5 * time.Second})
	if err != nil {
		c.t.Fatalf("open the outbox read-only: %v", err)
	}
	c.t.Cleanup(func() { o.Close() })
	return o
}

// Stored is what PostgreSQL holds for the chain's vehicle: how many rows
// carry each (stream, seq), over positions, OBD samples and events.
type Stored struct {
	Rows      map[uint64]map[uint64]int // stream → seq → rows
	Positions int
	OBD       int
	Events    int
	// DropReports sums the values of the EventRecordsDropped events.
	DropReports int64
	// Quarantines counts the EventOutboxQuarantined events.
	Quarantines int
}

// Count returns the number of distinct records and of extra copies.
func (s *Stored) Count() (records, duplicates int) {
	for _, seqs := range s.Rows {
		for _, n := range seqs {
			records++
			duplicates += n - 1
		}
	}
	return records, duplicates
}

// QueryStored reads every record identity of the vehicle from PostgreSQL.
func (c *Chain) QueryStored(ctx context.Context) (*Stored, error) {
	conn, err := pgx.Connect(ctx, c.DB)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	s := &Stored{Rows: map[uint64]map[uint64]int{}}
	for _, table := range []struct {
		name string
		n    *int
	}{{"positions", &s.Positions}, {"obd_samples", &s.OBD}, {"events", &s.Events}} {
		rows, err := conn.Query(ctx, "SELECT stream_id, seq FROM "+table.name+" WHERE vehicle_id = $1", c.Vehicle)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var stream, seq int64
			if err := rows.Scan(&stream, &seq); err != nil {
				rows.Close()
				return nil, err
			}
			m := s.Rows[uint64(stream)]
			if m == nil {
				m = map[uint64]int{}
				s.Rows[uint64(stream)] = m
			}
			m[uint64(seq)]++
			*table.n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(value) FILTER (WHERE type = 11), 0), count(*) FILTER (WHERE type = 10)
FROM events WHERE vehicle_id = $1`, c.Vehicle).Scan(&s.DropReports, &s.Quarantines)
	return s, err
}

// WaitTruthEnd waits for the simulator's end line and returns the vehicle's
// truth.
func (c *Chain) WaitTruthEnd(within time.Duration) truth.Vehicle {
	c.t.Helper()
	var tr truth.Vehicle
	testenv.Eventually(c.t, within, "the simulator's end of drive", func() error {
		lines, err := truth.ReadFile(c.Truth)
		if err != nil {
			return err
		}
		if tr = truth.Vehicles(lines)[c.Vehicle]; !tr.Ended {
			return fmt.Errorf("no end line yet (%d fixes so far)", len(tr.Fixes))
		}
		return nil
	}, c.Sim, c.Cloud)
	return tr
}

// Ended reports whether the simulator has written its end line.
func (c *Chain) Ended() bool {
	lines, err := truth.ReadFile(c.Truth)
	return err == nil && truth.Vehicles(lines)[c.Vehicle].Ended
}

// Compare compares PostgreSQL, through the API, with the truth: fixes and,
// with OBD, samples.
func (c *Chain) Compare(ctx context.Context, tr truth.Vehicle) (fixes, obd truth.Diff, err error) {
	from, to := c.Start.Add(-time.Hour), time.Now().Add(time.Hour)
	ps, err := c.API.Positions(ctx, c.Vehicle, from, to)
	if err != nil {
		return fixes, obd, err
	}
	fixes = truth.CompareFixes(tr.Fixes, ps)
	if c.opts.OBD {
		samples, err := c.API.OBD(ctx, c.Vehicle, from, to)
		if err != nil {
			return fixes, obd, err
		}
		obd = truth.CompareOBD(tr.OBD, samples)
	}
	return fixes, obd, nil
}
