package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/memory"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// FleetOptions say what a Fleet sends.
type FleetOptions struct {
	Vehicles int           // virtual agents; ids IDPrefix0001, ...
	IDPrefix string        // e.g. "chaos1234-"
	Period   time.Duration // one position per vehicle per Period; default 100ms
	// StatusInterval is the agents' status refresh (a retained up/status);
	// default 1s.
	StatusInterval time.Duration
	// AckTimeout: an agent resends what no Ack covers after it; default 3s.
	AckTimeout time.Duration
}

// Fleet is a load of virtual agents for the cloud-side scenarios: each
// appends a position every Period to an in-memory outbox (edge/memory) and
// sends it with the agent's own uplink (edge/uplink on edge/mqtt), which
// resends what the cloud has not acknowledged, publishes its status and
// answers commands. It records the cloud's progress (records acknowledged)
// over time, to measure stalls.
type Fleet struct {
	t               testing.TB
	opts            FleetOptions
	NS              telemetry.Namespace
	agents          []*fleetAgent
	stopGen, stopUp context.CancelFunc
	gen, up         sync.WaitGroup
	answered        atomic.Int64 // commands the agents answered

	mu       sync.Mutex
	last     time.Time // of the last increase of the records acknowledged
	acked    uint64
	longest  time.Duration
	sampling bool
	sampler  sync.WaitGroup
	stopSamp chan struct{}
}

type fleetAgent struct {
	id       string
	outbox   *memory.Outbox
	sender   *uplink.Sender
	uplink   *mqtt.Uplink
	counters *edge.Counters
}

// StartFleet starts the agents against the broker at url under namespace
// ns; they run until the test ends or Close.
func StartFleet(t testing.TB, url string, ns telemetry.Namespace, o FleetOptions) *Fleet {
	t.Helper()
	if o.Period == 0 {
		o.Period = 100 * time.Millisecond
	}
	if o.StatusInterval == 0 {
		o.StatusInterval = time.Second
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 3 * time.Second
	}
	f := &Fleet{t: t, opts: o, NS: ns, stopSamp: make(chan struct{})}
	upCtx, stopUp := context.WithCancel(context.Background())
	genCtx, stopGen := context.WithCancel(context.Background())
	f.stopUp, f.stopGen = stopUp, stopGen
	for i := range o.Vehicles {
		a := &fleetAgent{id: fmt.Sprintf("%s%04d", o.IDPrefix, i+1), outbox: memory.NewOutbox(uint64(i+1)*7919, 1<<22), counters: new(edge.Counters)}
		var err error
		a.sender, err = uplink.New(uplink.Config{VehicleID: a.id, MinBatchAge: 200 * time.Millisecond, AckTimeout: o.AckTimeout},
			a.outbox, slog.New(slog.DiscardHandler), a.counters)
		if err != nil {
			t.Fatalf("fleet uplink: %v", err)
		}
		up, err := mqtt.New(mqtt.Config{URL: url, Namespace: ns, StatusInterval: o.StatusInterval, KeepAlive: 5 * time.Second,
			Backoff: edge.Backoff{Min: 50 * time.Millisecond, Max: time.Second}, Status: uplink.StatusInfo{AgentVersion: "chaos fleet"},
			Commands: func(_ context.Context, c *telemetrypb.Command) (*telemetrypb.CommandResult, error) {
				f.answered.Add(1)
				return &telemetrypb.CommandResult{Id: c.GetId(), Ok: true, UnixMs: time.Now().UnixMilli()}, nil
			}}, a.id, a.sender, slog.New(slog.DiscardHandler), a.counters)
		if err != nil {
			t.Fatalf("fleet uplink: %v", err)
		}
		a.uplink = up
		f.agents = append(f.agents, a)
		f.up.Add(1)
		go func() {
			defer f.up.Done()
			if err := up.Run(upCtx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("fleet uplink %s: %v", a.id, err)
			}
		}()
		f.gen.Add(1)
		go func() {
			defer f.gen.Done()
			f.generate(genCtx, a, time.Duration(int64(o.Period)*int64(i)/int64(o.Vehicles)))
		}()
	}
	f.last = time.Now()
	f.sampling = true
	f.sampler.Add(1)
	go f.sample()
	t.Cleanup(f.Close)
	return f
}

// generate appends a position every Period until ctx is done; positions are
// stamped with the time of their making (never ahead of the cloud's clock).
func (f *Fleet) generate(ctx context.Context, a *fleetAgent, offset time.Duration) {
	t := time.NewTimer(offset)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := telemetry.Position{UnixMs: time.Now().UnixMilli(), LatE7: 437300000 + int32(i%1000)*100, LonE7: 74200000 + int32(i%1000)*100,
			Has: telemetry.HasSpeed, SpeedMmps: int32(i%30) * 1000}
		if err := a.outbox.Append(ctx, []edge.Record{edge.PositionRecord(p)}); err != nil {
			return
		}
		a.sender.Notify()
		t.Reset(f.opts.Period)
	}
}

// sample watches the records acknowledged every 50 ms and keeps the
// longest time without progress while sampling is on.
func (f *Fleet) sample() {
	defer f.sampler.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.stopSamp:
			return
		case <-tick.C:
		}
		n := f.Acked()
		now := time.Now()
		f.mu.Lock()
		if n > f.acked {
			f.acked, f.last = n, now
		} else if f.sampling {
			f.longest = max(f.longest, now.Sub(f.last))
		}
		f.mu.Unlock()
	}
}

// Acked returns the records the cloud has acknowledged so far, all agents.
func (f *Fleet) Acked() uint64 {
	var n uint64
	for _, a := range f.agents {
		n += a.counters.Snapshot()["uplink.records_acked"]
	}
	return n
}

// LongestStall returns the longest time, so far, in which the cloud
// acknowledged nothing while records were waiting.
func (f *Fleet) LongestStall() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.longest
}

// WaitProgress waits until the cloud acknowledges records after now, and
// returns how long that took (the time ingest needed to resume), or fails
// the test after within.
func (f *Fleet) WaitProgress(within time.Duration) time.Duration {
	f.t.Helper()
	start, from := time.Now(), f.Acked()
	for f.Acked() == from {
		if time.Since(start) > within {
			f.t.Fatalf("the cloud acknowledged nothing for %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// Answered returns how many commands the agents answered.
func (f *Fleet) Answered() int { return int(f.answered.Load()) }

// Vehicles returns the agents' vehicle ids.
func (f *Fleet) Vehicles() []string {
	ids := make([]string, len(f.agents))
	for i, a := range f.agents {
		ids[i] = a.id
	}
	return ids
}

// StopGenerating stops appending records; the uplinks go on sending.
func (f *Fleet) StopGenerating() {
	f.stopGen()
	f.gen.Wait()
}

// Drain waits until every outbox is empty: the cloud acknowledged every
// record appended. It fails the test after within.
func (f *Fleet) Drain(within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		pending := 0
		for _, a := range f.agents {
			st, err := a.outbox.Stats(context.Background())
			if err != nil {
				f.t.Fatal(err)
			}
			pending += int(st.Depth)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d records still unacknowledged after %s", pending, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.mu.Lock()
	f.sampling = false
	f.mu.Unlock()
}

// Close stops the agents.
func (f *Fleet) Close() {
	f.stopGen()
	f.gen.Wait()
	f.stopUp()
	f.up.Wait()
	select {
	case <-f.stopSamp:
	default:
		close(f.stopSamp)
	}
	f.sampler.Wait()
}

// FleetAccount is what PostgreSQL holds of a Fleet's records.
type FleetAccount struct {
	Sent       int // records the agents appended (seqs given)
	Stored     int // distinct records stored
	Lost       int // appended, not stored
	Duplicated int // extra copies stored
	Foreign    int // stored records no agent appended
}

// Account compares PostgreSQL at dbURL with what the agents appended.
func (f *Fleet) Account(ctx context.Context, dbURL string) (FleetAccount, error) {
	var a FleetAccount
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return a, err
	}
	defer conn.Close(ctx)
	type key struct {
		vehicle string
		stream  uint64
		seq     uint64
	}
	stored := map[key]int{}
	rows, err := conn.Query(ctx, "SELECT vehicle_id, stream_id, seq FROM positions WHERE vehicle_id LIKE $1", f.opts.IDPrefix+"%")
	if err != nil {
		return a, err
	}
	for rows.Next() {
		var k key
		var stream, seq int64
		if err := rows.Scan(&k.vehicle, &stream, &seq); err != nil {
			rows.Close()
			return a, err
		}
		k.stream, k.seq = uint64(stream), uint64(seq)
		stored[k]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return a, err
	}
	seen := 0
	for _, ag := range f.agents {
		st, err := ag.outbox.Stats(ctx)
		if err != nil {
			return a, err
		}
		for seq := uint64(1); seq < st.NextSeq; seq++ {
			a.Sent++
			n := stored[key{ag.id, ag.outbox.StreamID(), seq}]
			switch {
			case n == 0:
				a.Lost++
			default:
				a.Stored++
				a.Duplicated += n - 1
				seen++
			}
		}
	}
	a.Foreign = len(stored) - seen
	return a, nil
}
