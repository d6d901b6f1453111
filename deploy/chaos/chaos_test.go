package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/deploy/chaos"
	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// The scenarios' sizes: the full form (make chaos, FLEETGATE_FULL=1) and the
// short one that every `make test` runs.
type sizes struct {
	kills, restarts, cuts int
	capDrops              uint64 // records the cap scenario must see dropped
	// restartEvery is the real time the drive allows per broker restart:
	// paho backs the cloud's reconnects off exponentially (up to 10 s) when
	// its connection keeps being lost, so a long series of restarts slows.
	restartEvery time.Duration
	// The cloud-side scenarios (cloud_test.go): virtual agents at 10 Hz
	// each, replica kills, PostgreSQL and Redis restarts.
	vehicles, replicaKills, pgRestarts, redisRestarts int
}

var (
	full = sizes{kills: 50, restarts: 20, cuts: 1000, capDrops: 20000, restartEvery: 10 * time.Second,
		vehicles: 30, replicaKills: 20, pgRestarts: 10, redisRestarts: 3}
	short = sizes{kills: 5, restarts: 3, cuts: 50, capDrops: 1000, restartEvery: 4 * time.Second,
		vehicles: 8, replicaKills: 3, pgRestarts: 2, redisRestarts: 1}
)

// row is one line of the final table.
type row struct {
	scenario  string
	faults    string
	sent      int // records the simulator emitted (ground truth)
	committed int // records the agent committed to its outbox (seqs given)
	stored    int // records in PostgreSQL
	lost      int // committed, neither stored nor counted as dropped
	dups      int // extra copies in PostgreSQL
	dropped   int // dropped by the outbox cap, counted and reported
	uncommit  int // read by an agent that was killed before committing them
	// stall is the longest time the cloud acknowledged nothing while
	// records waited (cloud-side scenarios; 0: not measured).
	stall time.Duration
	note  string
}

// TestChaos runs every scenario and prints one table. Each compares what
// reached PostgreSQL with the agent's outbox (what it committed) and with
// the simulator's ground truth (what it emitted).
//
// The guarantee tested (docs/GUARANTEES.md, made precise): every record the agent
// committed to its outbox reaches PostgreSQL exactly once, whatever is
// killed, restarted or cut; the only records that may not arrive are those
// the overflow policy dropped (each counted, persisted and reported) and, when
// the agent itself is killed, those it had read from the serial port but not
// yet committed — what it read in the last flush interval before the kill
// (right after a restart that can be the whole backlog the port buffered
// meanwhile, up to the tty's 4 KiB), plus the NMEA epoch being parsed. The
// serial line cannot be read again, so that window cannot be closed, only
// kept short; the kill scenario measures it and fails if any run of missing
// fixes is longer than that bound or if there are more runs than kills.
func TestChaos(t *testing.T) {
	sz := short
	if os.Getenv("FLEETGATE_FULL") == "1" {
		sz = full
	}
	var rows []row
	for _, sc := range []struct {
		name string
		run  func(*testing.T, sizes) row
	}{
		{"AgentKill", agentKill},
		{"BrokerRestart", brokerRestart},
		{"ConnectionCut", connectionCut},
		{"OutboxCap", outboxCap},
		{"ReplicaKill", replicaKill},
		{"PostgresRestart", postgresRestart},
		{"RedisRestart", redisRestart},
		{"StallRegression", stallRegression},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.run(t, sz)
			rows = append(rows, r)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CHAOS TABLE\n%-18s %-26s %8s %9s %8s %5s %10s %8s %11s %8s  %s\n",
		"scenario", "faults", "sent", "committed", "stored", "lost", "duplicated", "dropped", "uncommitted", "stall", "note")
	for _, r := range rows {
		stall := "-"
		if r.stall > 0 {
			stall = r.stall.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-18s %-26s %8d %9d %8d %5d %10d %8d %11d %8s  %s\n",
			r.scenario, r.faults, r.sent, r.committed, r.stored, r.lost, r.dups, r.dropped, r.uncommit, stall, r.note)
	}
	b.WriteString("END CHAOS TABLE\n")
	t.Log("\n" + b.String())
	fmt.Print(b.String())
}

// waitProgress waits until the agent has committed past seq (or the drive
// ended), and returns the agent's next seq.
func waitProgress(t *testing.T, c *chaos.Chain, past uint64) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, fmt.Sprintf("the agent to commit past seq %d", past), func() error {
		if c.Ended() {
			return nil
		}
		st, err := c.Outbox()
		if err != nil {
			return err
		}
		if st.NextSeq > past+1 {
			return nil
		}
		return fmt.Errorf("next seq %d", st.NextSeq)
	}, c.Agent, c.Sim)
}

// drain waits until the end of the drive is in PostgreSQL — the truth's last
// fix and, with obd, as many OBD samples as the truth has — and then until
// the running agent's outbox is empty: everything it committed has been
// acknowledged by the cloud.
func drain(t *testing.T, c *chaos.Chain, tr truth.Vehicle, obd bool) chaos.OutboxStats {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 3*time.Minute, "the end of the drive in PostgreSQL", func() error {
		if len(tr.Fixes) > 0 {
			last := tr.Fixes[len(tr.Fixes)-1].Time
			ps, err := c.API.Positions(ctx, c.Vehicle, last, last.Add(time.Millisecond))
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return fmt.Errorf("the last fix (%s) is not stored yet", last.Format(time.RFC3339Nano))
			}
		}
		if obd {
			samples, err := c.API.OBD(ctx, c.Vehicle, c.Start.Add(-time.Hour), time.Now().Add(time.Hour))
			if err != nil {
				return err
			}
			if len(samples) < len(tr.OBD) {
				return fmt.Errorf("%d of %d OBD samples stored", len(samples), len(tr.OBD))
			}
		}
		return nil
	}, c.Agent, c.Cloud)
	var st chaos.OutboxStats
	testenv.Eventually(t, 3*time.Minute, "the outbox to drain", func() error {
		var err error
		if st, err = c.Outbox(); err != nil {
			return err
		}
		if st.Depth != 0 {
			return fmt.Errorf("%d records not acknowledged yet", st.Depth)
		}
		return nil
	}, c.Agent, c.Cloud)
	return st
}

// accounting is the committed set against PostgreSQL, read after the agent
// stopped: every seq the outbox gave is stored once, still pending in the
// outbox (appended at shutdown), or dropped by the cap.
type accounting struct {
	committed, stored, dups, missing int
}

func account(t *testing.T, c *chaos.Chain) (accounting, edge.OutboxStats) {
	t.Helper()
	ctx := context.Background()
	if err := c.Agent.Stop(t); err != nil {
		t.Errorf("agent exit on SIGTERM: %v", err)
	}
	o := c.OpenOutbox()
	defer o.Close() // the agent may be started again
	if err := o.Check(ctx); err != nil {
		t.Errorf("bbolt check of the final outbox: %v", err)
	}
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[uint64]bool{}
	recs, err := o.Unsent(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		pending[r.Seq()] = true
	}
	stored, err := c.QueryStored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var a accounting
	a.stored, a.dups = stored.Count()
	for stream := range stored.Rows {
		if stream != st.StreamID {
			t.Errorf("PostgreSQL holds stream %016x; the outbox's is %016x", stream, st.StreamID)
		}
	}
	seqs := stored.Rows[st.StreamID]
	a.committed = int(st.NextSeq - 1)
	for seq := uint64(1); seq < st.NextSeq; seq++ {
		if seqs[seq] == 0 && !pending[seq] {
			a.missing++
		}
	}
	for seq := range seqs {
		if seq >= st.NextSeq {
			t.Errorf("PostgreSQL holds seq %d, which the outbox never gave (next %d)", seq, st.NextSeq)
		}
	}
	return a, st
}

// agentKill: kill -9 the agent again and again while the simulator streams.
func agentKill(t *testing.T, sz sizes) row {
	const speed = 20
	flush := 100 * time.Millisecond
	b := testenv.StartMosquitto(t, chaos.BrokerOptions)
	c := chaos.NewChain(t, chaos.Options{Speed: speed, Duration: time.Duration(sz.kills*2+8) * time.Second * speed, FlushInterval: flush})
	c.StartCloud(b.URL())
	c.StartSim()
	c.StartAgent(b.URL())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, uint64(sz.kills)))
	kills := 0
	var next uint64
	for kills < sz.kills && !c.Ended() {
		waitProgress(t, c, next+rng.Uint64N(30))
		c.KillAgent()
		kills++
		o := c.OpenOutbox()
		if err := o.Check(ctx); err != nil {
			t.Fatalf("kill %d: bbolt check: %v", kills, err)
		}
		st, err := o.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		next = st.NextSeq - 1
		o.Close()
		c.StartAgent(b.URL())
	}
	if kills < sz.kills {
		t.Errorf("the drive ended after %d kills of %d", kills, sz.kills)
	}
	tr := c.WaitTruthEnd(5 * time.Minute)
	drain(t, c, tr, false)
	ps, err := c.API.Positions(ctx, c.Vehicle, c.Start.Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fd := truth.CompareFixes(tr.Fixes, ps)
	a, _ := account(t, c)

	// The fixes read but not committed: runs of consecutive truth fixes
	// missing from PostgreSQL, at most one run per kill, each no longer than
	// what the agent can read in one flush interval: in steady running the
	// fixes of one interval (with 250 ms of slack for a slow fsync); right
	// after a restart the backlog the pty buffered while the agent was down,
	// which one read hands over at once (the tty's 4 KiB, each epoch of the
	// simulator's RMC+GGA+GSA taking at least 190 bytes); plus the epoch
	// being assembled and the partial line a new agent skips.
	stored := map[int64]bool{}
	for _, p := range ps {
		stored[p.Time.UnixMilli()] = true
	}
	var runs []int
	inRun := false
	for _, f := range tr.Fixes {
		switch {
		case !stored[f.Time.UnixMilli()] && inRun:
			runs[len(runs)-1]++
		case !stored[f.Time.UnixMilli()]:
			runs, inRun = append(runs, 1), true
		default:
			inRun = false
		}
	}
	const ttyBuffer, minEpochBytes = 4096, 190
	bound := int(math.Ceil(speed*(flush+250*time.Millisecond).Seconds())) + ttyBuffer/minEpochBytes + 3
	longest := 0
	for _, n := range runs {
		longest = max(longest, n)
	}
	if len(runs) > kills || longest > bound {
		t.Errorf("fixes missing in %d runs (longest %d) after %d kills; the guarantee allows one run per kill of at most %d", len(runs), longest, kills, bound)
	}
	if fd.Duplicated != 0 || fd.Unexpected != 0 || fd.Mismatched != 0 {
		t.Errorf("positions against the truth: %v", fd)
	}
	if a.missing != 0 || a.dups != 0 {
		t.Errorf("committed records: %d missing from PostgreSQL, %d duplicated", a.missing, a.dups)
	}
	t.Logf("%d kills; %d fixes emitted, %d stored; %d read but uncommitted at a kill, in %d runs of at most %d (bound %d)",
		kills, fd.Truth, fd.Stored, fd.Missing, len(runs), longest, bound)

	// A corrupt file at start is moved aside and a new stream begins, and the
	// cloud hears of it: garble both bbolt meta pages and restart.
	path := filepath.Join(c.DataDir, "outbox.db")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 8192), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c.StartAgent(b.URL())
	testenv.Eventually(t, time.Minute, "the quarantine event in PostgreSQL", func() error {
		s, err := c.QueryStored(ctx)
		if err != nil {
			return err
		}
		if s.Quarantines == 0 {
			return fmt.Errorf("no OUTBOX_QUARANTINED event yet")
		}
		return nil
	}, c.Agent, c.Cloud)
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 1 {
		t.Errorf("quarantined files: %v", moved)
	}
	return row{scenario: "agent kill -9", faults: fmt.Sprintf("%d kills, bbolt check each", kills),
		sent: fd.Truth, committed: a.committed, stored: a.stored, lost: a.missing, dups: a.dups + fd.Duplicated, uncommit: fd.Missing,
		note: fmt.Sprintf("fixes; uncommitted in %d runs ≤ %d long (bound %d); garbled file quarantined, event in PG", len(runs), longest, bound)}
}

// brokerRestart: restart a private Mosquitto (persistence on) while the
// simulator streams GPS and OBD; every second restart is a SIGKILL.
func brokerRestart(t *testing.T, sz sizes) row {
	const speed = 20
	b := testenv.StartMosquitto(t, chaos.BrokerOptions)
	c := chaos.NewChain(t, chaos.Options{Speed: speed, Duration: (time.Duration(sz.restarts)*sz.restartEvery + 10*time.Second) * speed, OBD: true})
	c.StartCloud(b.URL())
	c.StartSim()
	c.StartAgent(b.URL())
	ctx := context.Background()
	restarts := 0
	last := 0
	began := time.Now()
	for restarts < sz.restarts && !c.Ended() {
		testenv.Eventually(t, 2*time.Minute, "records stored since the last restart", func() error {
			s, err := c.QueryStored(ctx)
			if err != nil {
				return err
			}
			if n, _ := s.Count(); n > last || c.Ended() {
				return nil
			}
			return fmt.Errorf("%d records stored", last)
		}, c.Agent, c.Cloud, c.Sim)
		b.Restart(restarts%2 == 1)
		restarts++
		// The next restart waits for records stored after this one.
		s, err := c.QueryStored(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last, _ = s.Count()
	}
	if restarts < sz.restarts {
		t.Errorf("the drive ended after %d restarts of %d", restarts, sz.restarts)
	}
	t.Logf("%d restarts in %v", restarts, time.Since(began).Round(time.Second))
	return exact(t, c, "broker restart", fmt.Sprintf("%d restarts (½ SIGKILL)", restarts), "")
}

// exact ends a scenario in which nothing may be missing: the truth, GPS and
// OBD, is in PostgreSQL exactly once, and so is every committed record.
func exact(t *testing.T, c *chaos.Chain, name, faults, note string) row {
	t.Helper()
	ctx := context.Background()
	tr := c.WaitTruthEnd(5 * time.Minute)
	drain(t, c, tr, true)
	fd, od, err := c.Compare(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if !fd.OK() {
		t.Errorf("positions: %v", fd)
	}
	if !od.OK() {
		t.Errorf("OBD samples: %v", od)
	}
	a, _ := account(t, c)
	if a.missing != 0 || a.dups != 0 {
		t.Errorf("committed records: %d missing from PostgreSQL, %d duplicated", a.missing, a.dups)
	}
	t.Logf("%s: fixes %v; OBD %v", faults, fd, od)
	return row{scenario: name, faults: faults, sent: fd.Truth + od.Truth, committed: a.committed, stored: a.stored,
		lost: a.missing + fd.Missing + od.Missing, dups: a.dups + fd.Duplicated + od.Duplicated, note: note}
}

// connectionCut: an MQTT-aware proxy between the agent and the broker cuts
// the connection right after a batch's PUBLISH reached the broker, before
// the PUBACK or the cloud's ack can come back.
func connectionCut(t *testing.T, sz sizes) row {
	const speed = 20
	b := testenv.StartMosquitto(t, chaos.BrokerOptions)
	rng := rand.New(rand.NewPCG(7, uint64(sz.cuts)))
	var p *testenv.Proxy
	var c *chaos.Chain // set before the agent connects through p
	p = testenv.StartProxy(t, b.Addr(), testenv.ProxyOptions{CutAfterPublish: func(topic string) bool {
		batch := strings.HasSuffix(topic, "/up/batch") || topic == c.NS+"/"+c.Vehicle // protocol version 1 or 2
		return batch && p.Cuts() < sz.cuts && rng.IntN(3) != 0
	}})
	c = chaos.NewChain(t, chaos.Options{Speed: speed, Duration: time.Duration(sz.cuts/8+10) * time.Second * speed, OBD: true})
	c.StartCloud(b.URL())
	c.StartSim()
	c.StartAgent(p.URL())
	ctx := context.Background()
	began := time.Now()
	var before map[string]uint32
	testenv.Eventually(t, 20*time.Minute, fmt.Sprintf("%d cuts", sz.cuts), func() error {
		if before == nil && p.Cuts() >= sz.cuts/2 {
			var err error
			if before, err = rowVersions(ctx, c); err != nil {
				return err
			}
		}
		if p.Cuts() >= sz.cuts || c.Ended() {
			return nil
		}
		return fmt.Errorf("%d cuts so far", p.Cuts())
	}, c.Agent, c.Cloud, c.Sim)
	if p.Cuts() < sz.cuts {
		t.Errorf("the drive ended after %d cuts of %d", p.Cuts(), sz.cuts)
	}
	t.Logf("%d cuts in %v", p.Cuts(), time.Since(began).Round(time.Second))
	r := exact(t, c, "connection cut", fmt.Sprintf("%d cuts after PUBLISH", p.Cuts()), "")
	// Replays were acked again, not written again: rows stored before the
	// second half of the cuts still have the same row version (xmin).
	after, err := rowVersions(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	for k, v := range before {
		if after[k] != v {
			rewritten++
		}
	}
	if rewritten != 0 || len(before) == 0 {
		t.Errorf("%d of %d rows rewritten by replays", rewritten, len(before))
	}
	r.note = fmt.Sprintf("%d connections; %d rows kept their xmin through replays", p.Conns(), len(before))
	return r
}

// rowVersions returns the xmin (the transaction that wrote the row) of
// every position and OBD row of the vehicle, by identity.
func rowVersions(ctx context.Context, c *chaos.Chain) (map[string]uint32, error) {
	conn, err := pgx.Connect(ctx, c.DB)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	out := map[string]uint32{}
	for _, table := range []string{"positions", "obd_samples"} {
		rows, err := conn.Query(ctx, "SELECT stream_id, seq, xmin::text::bigint FROM "+table+" WHERE vehicle_id = $1", c.Vehicle)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var stream, seq, xmin int64
			if err := rows.Scan(&stream, &seq, &xmin); err != nil {
				rows.Close()
				return nil, err
			}
			out[fmt.Sprintf("%s/%d/%d", table, stream, seq)] = uint32(xmin)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// outboxCap: the cloud is unreachable while the simulator streams fast into
// a 1 MiB outbox. The file stays within the cap, the drops are counted,
// persisted and reported, the file passes bbolt's check, and once the cloud
// is back everything not dropped arrives, once.
func outboxCap(t *testing.T, sz sizes) row {
	const speed, rate = 100, 10
	const maxBytes = 1 << 20
	b := testenv.NewMosquitto(t, chaos.BrokerOptions) // not started: the cloud is unreachable
	fill := time.Duration(sz.capDrops/500+20) * time.Second
	c := chaos.NewChain(t, chaos.Options{Speed: speed, Rate: rate, Duration: fill * speed, OBD: true, MaxBytes: "1MiB"})
	c.StartSim()
	c.StartAgent(b.URL())
	ctx := context.Background()
	var st chaos.OutboxStats
	largest := int64(0)
	// The whole drive happens while the cloud is away, so that every drop
	// happens before anything is sent: then the records missing from
	// PostgreSQL must be exactly the dropped ones.
	testenv.Eventually(t, 10*time.Minute, "the end of the drive, the cloud away", func() error {
		var err error
		if st, err = c.Outbox(); err != nil {
			return err
		}
		largest = max(largest, st.FileBytes)
		if st.FileBytes > maxBytes {
			t.Fatalf("outbox file %d bytes, over its cap of %d", st.FileBytes, maxBytes)
		}
		if c.Ended() {
			return nil
		}
		return fmt.Errorf("%d dropped, file %d bytes", st.Dropped, st.FileBytes)
	}, c.Agent, c.Sim)
	tr := c.WaitTruthEnd(time.Minute)
	// The last epoch may still be on its way into the outbox.
	testenv.Eventually(t, time.Minute, "every emitted record committed", func() error {
		var err error
		if st, err = c.Outbox(); err != nil {
			return err
		}
		if n := len(tr.Fixes) + len(tr.OBD); st.NextSeq-1 < uint64(n) {
			return fmt.Errorf("%d records committed, %d emitted", st.NextSeq-1, n)
		}
		return nil
	}, c.Agent)
	if st.Dropped < sz.capDrops {
		t.Errorf("only %d records dropped of the %d wanted", st.Dropped, sz.capDrops)
	}
	// A restart keeps the drop counters; the file is sound.
	if err := c.Agent.Stop(t); err != nil {
		t.Errorf("agent exit on SIGTERM: %v", err)
	}
	o := c.OpenOutbox()
	if err := o.Check(ctx); err != nil {
		t.Errorf("bbolt check of the full outbox: %v", err)
	}
	before, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	b.Start()
	c.StartCloud(b.URL())
	c.StartAgent(b.URL())
	testenv.Eventually(t, 30*time.Second, "the restarted agent", func() error {
		s, err := c.Outbox()
		if err == nil && s.Dropped < before.Dropped {
			t.Fatalf("dropped %d after a restart, %d before", s.Dropped, before.Dropped)
		}
		return err
	}, c.Agent)
	final := drain(t, c, tr, false)
	largest = max(largest, final.FileBytes)
	fd, _, err := c.Compare(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := c.QueryStored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, ls := account(t, c)
	if ls.FileBytes > maxBytes {
		t.Errorf("outbox file %d bytes at the end, over its cap of %d", ls.FileBytes, maxBytes)
	}
	// Every committed record is stored or was dropped, and the counts agree.
	if a.missing != int(ls.Dropped) || a.dups != 0 {
		t.Errorf("%d committed records not in PostgreSQL, %d counted as dropped; %d duplicated", a.missing, ls.Dropped, a.dups)
	}
	if ls.Dropped != ls.DroppedThinned+ls.DroppedOldest+ls.DroppedExpired || ls.DroppedThinned == 0 {
		t.Errorf("drop counters %+v", ls)
	}
	if stored.DropReports <= 0 || stored.DropReports > int64(ls.Dropped) {
		t.Errorf("EventRecordsDropped in PostgreSQL report %d drops; the outbox counted %d", stored.DropReports, ls.Dropped)
	}
	if fd.Duplicated != 0 || fd.Unexpected != 0 || fd.Mismatched != 0 || fd.Missing > int(ls.Dropped) {
		t.Errorf("positions against the truth: %v (dropped %d)", fd, ls.Dropped)
	}
	t.Logf("largest file %d bytes (cap %d); dropped %d (thinned %d, oldest %d); drop events report %d",
		largest, maxBytes, ls.Dropped, ls.DroppedThinned, ls.DroppedOldest, stored.DropReports)
	return row{scenario: "outbox cap", faults: "cloud away, 1 MiB cap", sent: len(tr.Fixes) + len(tr.OBD), committed: a.committed,
		stored: a.stored, lost: a.missing - int(ls.Dropped), dups: a.dups, dropped: int(ls.Dropped),
		note: fmt.Sprintf("file ≤ %d B (cap %d); thinned %d, oldest %d; drop events in PG", largest, maxBytes, ls.DroppedThinned, ls.DroppedOldest)}
}
