package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud/redis"
	"github.com/fleetgate/fleetgate/deploy/chaos"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// maxResume is the liveness bar of docs/GUARANTEES.md: ingest resumes within
// 10 s of a fault ending (a liveness bound, generous for a loaded machine).
const maxResume = 10 * time.Second

// cloudSetup is what the cloud-side scenarios share: a private broker, a
// namespace and a fleet of virtual agents.
type cloudSetup struct {
	broker *testenv.Mosquitto
	ns     string
	prefix string // the fleet's vehicle id prefix
}

func newCloudSetup(t *testing.T) *cloudSetup {
	id := testenv.ID()
	return &cloudSetup{broker: testenv.StartMosquitto(t, chaos.BrokerOptions), ns: "c" + id + "/fleet/v1", prefix: "cc" + id + "-"}
}

func (s *cloudSetup) fleet(t *testing.T, vehicles int, status time.Duration) *chaos.Fleet {
	return chaos.StartFleet(t, s.broker.URL(), telemetry.Namespace(s.ns),
		chaos.FleetOptions{Vehicles: vehicles, IDPrefix: s.prefix, Period: 100 * time.Millisecond, StatusInterval: status})
}

func (s *cloudSetup) cloud(t *testing.T, db, redisURL, redisPrefix, clientID string) *chaos.Cloud {
	return chaos.StartCloud(t, chaos.CloudOptions{DatabaseURL: db, RedisURL: redisURL, RedisPrefix: redisPrefix,
		BrokerURL: s.broker.URL(), Namespace: s.ns, ClientID: clientID})
}

// finish stops the fleet's records, waits until the cloud acknowledged all
// of them, and makes the scenario's row: every record the agents appended
// stored exactly once.
func finish(t *testing.T, f *chaos.Fleet, db, name, faults, note string, resume time.Duration) row {
	t.Helper()
	f.StopGenerating()
	f.Drain(3 * time.Minute)
	a, err := f.Account(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if a.Lost != 0 || a.Duplicated != 0 || a.Foreign != 0 {
		t.Errorf("%s: %d records lost, %d duplicated, %d stored that no agent sent", name, a.Lost, a.Duplicated, a.Foreign)
	}
	if resume > maxResume {
		t.Errorf("%s: ingest resumed %v after a fault ended; the bar is %v", name, resume.Round(time.Millisecond), maxResume)
	}
	stall := f.LongestStall()
	t.Logf("%s: %d sent, %d stored; longest stall %v; slowest resume %v", name, a.Sent, a.Stored, stall.Round(time.Millisecond), resume.Round(time.Millisecond))
	note = strings.TrimSuffix(fmt.Sprintf("resume ≤ %v; %s", resume.Round(10*time.Millisecond), note), "; ")
	return row{scenario: name, faults: faults, sent: a.Sent, committed: a.Sent, stored: a.Stored, lost: a.Lost,
		dups: a.Duplicated, stall: stall, note: note}
}

// replicaKill: two replicas in one share group under load; one is killed
// with SIGKILL again and again and started again with its client id (its
// broker session kept what was queued for it).
func replicaKill(t *testing.T, sz sizes) row {
	s := newCloudSetup(t)
	db := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	victim := s.cloud(t, db, redisURL, prefix, "chaos-a-"+testenv.ID())
	s.cloud(t, db, redisURL, prefix, "chaos-b-"+testenv.ID())
	f := s.fleet(t, sz.vehicles, time.Second)
	f.WaitProgress(time.Minute)
	var resume time.Duration
	for k := range sz.replicaKills {
		time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
		victim.Kill()
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		victim.Start()
		if d := f.WaitProgress(time.Minute); d > resume {
			resume = d
		}
		t.Logf("kill %d: resumed", k+1)
	}
	return finish(t, f, db, "replica kill -9", fmt.Sprintf("%d SIGKILLs of 1 of 2", sz.replicaKills),
		fmt.Sprintf("%d vehicles at 10 Hz", sz.vehicles), resume)
}

// commander posts commands to random vehicles of the fleet through the
// API until stopped, and remembers those the API took (202).
type commander struct {
	mu      sync.Mutex
	created []string // vehicle/id
	stop    chan struct{}
	done    sync.WaitGroup
}

func startCommander(t *testing.T, c *chaos.Cloud, vehicles []string) *commander {
	cm := &commander{stop: make(chan struct{})}
	cm.done.Add(1)
	go func() {
		defer cm.done.Done()
		for i := 0; ; i++ {
			select {
			case <-cm.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			v := vehicles[i%len(vehicles)]
			code, body, err := post(context.Background(), c.API, "/api/v1/vehicles/"+v+"/commands", `{"type":"report_status"}`)
			if err != nil || code != http.StatusAccepted {
				continue // PostgreSQL or the broker away: the API said so; not a command sent
			}
			id := jsonField(string(body), "id")
			cm.mu.Lock()
			cm.created = append(cm.created, v+"/"+id)
			cm.mu.Unlock()
		}
	}()
	t.Cleanup(cm.finish)
	return cm
}

func (cm *commander) finish() {
	select {
	case <-cm.stop:
	default:
		close(cm.stop)
	}
	cm.done.Wait()
}

// jsonField returns the string value of "key" in a flat JSON object.
func jsonField(body, key string) string {
	_, rest, ok := strings.Cut(body, `"`+key+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// answered waits until every command the API took has its result stored,
// and returns how many there were.
func (cm *commander) answered(t *testing.T, c *chaos.Cloud) int {
	t.Helper()
	cm.finish()
	for _, vid := range cm.created {
		v, id, _ := strings.Cut(vid, "/")
		testenv.Eventually(t, 2*time.Minute, "the result of command "+id, func() error {
			var got command
			if err := c.API.Get(context.Background(), "/api/v1/vehicles/"+v+"/commands/"+id, &got); err != nil {
				return err
			}
			if got.Status != "done" {
				return fmt.Errorf("status %s", got.Status)
			}
			return nil
		}, c.Proc)
	}
	return len(cm.created)
}

// statusesStored checks that every vehicle's status is in device_status,
// and returns how many rows there are.
func statusesStored(t *testing.T, db string, vehicles []string) int {
	t.Helper()
	var n int
	testenv.Eventually(t, time.Minute, "every vehicle's status stored", func() error {
		conn, err := pgx.Connect(context.Background(), db)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM device_status WHERE vehicle_id = ANY($1)", vehicles).Scan(&n); err != nil {
			return err
		}
		if n != len(vehicles) {
			return fmt.Errorf("%d of %d", n, len(vehicles))
		}
		return nil
	})
	return n
}

// postgresRestart: a private PostgreSQL stopped in immediate mode and
// started again while the fleet sends batches and statuses and the API
// sends commands whose results come back; outages alternate between shorter
// and longer than the step-back grace (5 s).
func postgresRestart(t *testing.T, sz sizes) row {
	s := newCloudSetup(t)
	pg := chaos.StartPostgres(t)
	db := pg.URL("fleetgate")
	redisURL, prefix := testenv.Redis(t)
	c := s.cloud(t, db, redisURL, prefix, "chaos-pg-"+testenv.ID())
	f := s.fleet(t, sz.vehicles, 500*time.Millisecond)
	f.WaitProgress(time.Minute)
	cm := startCommander(t, c, f.Vehicles())
	var resume time.Duration
	for k := range sz.pgRestarts {
		time.Sleep(time.Duration(1000+rand.IntN(1500)) * time.Millisecond)
		pg.StopImmediate()
		outage := 2 * time.Second
		if k%2 == 1 {
			outage = 7 * time.Second
		}
		time.Sleep(outage)
		pg.Start()
		d := f.WaitProgress(time.Minute)
		resume = max(resume, d)
		t.Logf("restart %d (%v away): ingest resumed in %v", k+1, outage, d.Round(time.Millisecond))
	}
	r := finish(t, f, db, "PostgreSQL restart", fmt.Sprintf("%d immediate stops", sz.pgRestarts),
		"", resume)
	cmds := cm.answered(t, c)
	sts := statusesStored(t, db, f.Vehicles())
	r.note += fmt.Sprintf("; %d commands all answered (%d answers); %d vehicles' statuses stored", cmds, f.Answered(), sts)
	return r
}

// redisRestart: Redis killed and started again (empty) under load: storage
// goes on while it is away, and afterwards every vehicle's live state
// catches up with its newest fix in PostgreSQL.
func redisRestart(t *testing.T, sz sizes) row {
	s := newCloudSetup(t)
	db := testenv.Postgres(t)
	rs := chaos.StartRedis(t)
	c := s.cloud(t, db, rs.URL(), "chaos:", "chaos-redis-"+testenv.ID())
	f := s.fleet(t, sz.vehicles, time.Second)
	f.WaitProgress(time.Minute)
	var resume time.Duration
	for k := range sz.redisRestarts {
		rs.Kill()
		time.Sleep(time.Second)
		// Storage goes on without Redis.
		if d := f.WaitProgress(time.Minute); d > maxResume {
			t.Errorf("kill %d: nothing stored for %v with Redis away", k+1, d)
		}
		time.Sleep(2 * time.Second)
		rs.Start()
		resume = max(resume, f.WaitProgress(time.Minute))
		time.Sleep(time.Second)
	}
	r := finish(t, f, db, "Redis restart", fmt.Sprintf("%d kills", sz.redisRestarts), "", resume)
	live := redis.NewLiveState(rs.URL(), "chaos:")
	if err := live.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	caught := 0
	for _, v := range f.Vehicles() {
		testenv.Eventually(t, time.Minute, "the live state of "+v+" catching up", func() error {
			var pv struct {
				Position *struct {
					Time string `json:"time"`
				} `json:"position"`
			}
			if err := c.API.Get(context.Background(), "/api/v1/vehicles/"+v, &pv); err != nil {
				return err
			}
			st, err := live.Latest(context.Background(), v)
			if err != nil {
				return err
			}
			if pv.Position == nil || st.Position.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") != pv.Position.Time {
				return fmt.Errorf("Redis has %v, PostgreSQL %v", st.Position.Time, pv.Position)
			}
			return nil
		}, c.Proc)
		caught++
	}
	r.note += fmt.Sprintf("; live state of %d/%d vehicles caught up", caught, len(f.Vehicles()))
	return r
}

// stallRegression is the ingest stall after a PostgreSQL outage (a replica
// whose in-flight window filled with unacked messages) through the whole
// server: a PostgreSQL outage of 8 s while the fleet's statuses come five a second per
// vehicle, far more than the broker's in-flight window of 100. Statuses used
// to be given up on after five quick retries and left unacknowledged; once
// the window was full no batch reached the replica again. Now ingest resumes
// after the outage, and /ready said 503 with the reason meanwhile.
func stallRegression(t *testing.T, sz sizes) row {
	s := newCloudSetup(t)
	pg := chaos.StartPostgres(t)
	db := pg.URL("fleetgate")
	redisURL, prefix := testenv.Redis(t)
	c := s.cloud(t, db, redisURL, prefix, "chaos-stall-"+testenv.ID())
	f := s.fleet(t, sz.vehicles, 200*time.Millisecond)
	f.WaitProgress(time.Minute)
	time.Sleep(2 * time.Second)
	pg.StopImmediate()
	stepped := ""
	testenv.Eventually(t, 30*time.Second, "/ready 503 with the reason", func() error {
		code, body, _ := get(c, "/ready")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "stepped back") {
			stepped = body
			return nil
		}
		return fmt.Errorf("/ready %d %s", code, body)
	}, c.Proc)
	time.Sleep(3 * time.Second) // 8 s in all
	pg.Start()
	resume := f.WaitProgress(time.Minute)
	testenv.Eventually(t, 30*time.Second, "/ready 200 again", func() error {
		code, body, _ := get(c, "/ready")
		if code != http.StatusOK {
			return fmt.Errorf("/ready %d %s", code, body)
		}
		return nil
	}, c.Proc)
	time.Sleep(3 * time.Second)
	t.Logf("while stepped back, /ready said: %s", stepped)
	return finish(t, f, db, "stall after an outage", "PostgreSQL away 8 s", fmt.Sprintf("%d vehicles, statuses at 5/s each; /ready 503 while stepped back", sz.vehicles), resume)
}

// get returns the status code and body of GET path on the cloud's API.
func get(c *chaos.Cloud, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, c.API.Base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String(), nil
}
