package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// journal records, in order, what the fakes saw: "commit …", "publish …",
// "ack …" lines, so tests can check the order of commit, Ack and broker ack.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// index returns the position of the first line equal to s, -1 if none.
func (j *journal) index(s string) int { return slices.Index(j.all(), s) }

// msg is a Message whose Ack the journal sees.
type msg struct {
	topic   string
	payload []byte
	j       *journal
	mu      sync.Mutex
	acks    int
}

func (m *msg) Topic() string   { return m.topic }
func (m *msg) Payload() []byte { return m.payload }
func (m *msg) Ack() {
	m.mu.Lock()
	m.acks++
	m.mu.Unlock()
	m.j.add("ack %s", m.topic)
}

func (m *msg) acked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acks
}

// store is an IngestStore in memory. fail, when set, decides per call
// whether the commit fails (and with what); a batch with a position at
// latitude poisonLat is refused (EINVALID), as a CHECK constraint would.
type store struct {
	j        *journal
	mu       sync.Mutex
	fail     func(c *cloud.Commit) error
	block    chan struct{} // when set, Commit waits on it (or ctx)
	commits  []*cloud.Commit
	records  map[string]bool // vehicle/stream/seq
	statuses map[string]cloud.DeviceStatus
	answers  map[string]cloud.CommandResult
	commands map[string]bool // vehicle/id
	dead     []cloud.DeadLetter
	calls    int
}

const poisonLat = 123456789

func newStore(j *journal) *store {
	return &store{j: j, records: map[string]bool{}, statuses: map[string]cloud.DeviceStatus{},
		answers: map[string]cloud.CommandResult{}, commands: map[string]bool{}}
}

func (s *store) Commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, error) {
	s.mu.Lock()
	block, fail := s.block, s.fail
	s.calls++
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return cloud.CommitResult{}, cloud.Errorf(cloud.EUNAVAILABLE, "commit: %w", ctx.Err())
		}
	}
	if fail != nil {
		if err := fail(c); err != nil {
			return cloud.CommitResult{}, err
		}
	}
	for _, b := range c.Batches {
		for _, p := range b.Positions {
			if p.LatE7 == poisonLat {
				return cloud.CommitResult{}, cloud.Errorf(cloud.EINVALID, "commit: check constraint no_poison")
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var res cloud.CommitResult
	for _, b := range c.Batches {
		for _, seq := range seqsOf(b) {
			k := fmt.Sprintf("%s/%d/%d", b.VehicleID, b.StreamID, seq)
			if !s.records[k] {
				s.records[k] = true
				res.Inserted++
			}
		}
	}
	for i, st := range c.Statuses {
		if cur, ok := s.statuses[st.VehicleID]; !ok || st.Time.After(cur.Time) {
			s.statuses[st.VehicleID] = st
			res.AppliedStatuses = append(res.AppliedStatuses, i)
		}
	}
	for i, a := range c.Answers {
		k := a.VehicleID + "/" + a.CommandID
		if !s.commands[k] {
			res.UnknownCommands = append(res.UnknownCommands, i)
			continue
		}
		s.answers[k] = a.Result
	}
	s.dead = append(s.dead, c.DeadLetters...)
	s.commits = append(s.commits, c)
	var topics []string
	for _, b := range c.Batches {
		topics = append(topics, "batch:"+b.VehicleID)
	}
	for _, st := range c.Statuses {
		topics = append(topics, "status:"+st.VehicleID)
	}
	for _, a := range c.Answers {
		topics = append(topics, "answer:"+a.VehicleID)
	}
	for _, d := range c.DeadLetters {
		topics = append(topics, "dead:"+d.Topic)
	}
	s.j.add("commit %v", topics)
	return res, nil
}

func (s *store) setFail(f func(*cloud.Commit) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *store) snapshot() (commits []*cloud.Commit, records int, dead []cloud.DeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits), len(s.records), slices.Clone(s.dead)
}

// down is a fail function: the database is unreachable.
func down(*cloud.Commit) error {
	return cloud.Errorf(cloud.EUNAVAILABLE, "commit batch: dial tcp 127.0.0.1:5432: connection refused")
}

func seqsOf(b *telemetry.Batch) []uint64 {
	var out []uint64
	for _, p := range b.Positions {
		out = append(out, p.Seq)
	}
	for _, s := range b.OBD {
		out = append(out, s.Seq)
	}
	for _, e := range b.Events {
		out = append(out, e.Seq)
	}
	return out
}

// publisher is a Publisher that confirms every Ack unless fail says no.
type publisher struct {
	j    *journal
	mu   sync.Mutex
	fail func(o ingest.Outgoing) error
	acks []*telemetrypb.Ack
}

func (p *publisher) Publish(ctx context.Context, msgs []ingest.Outgoing) []error {
	errs := make([]error, len(msgs))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range msgs {
		if p.fail != nil {
			if errs[i] = p.fail(o); errs[i] != nil {
				continue
			}
		}
		var a telemetrypb.Ack
		if err := telemetry.Decode(o.Payload, &a); err != nil {
			errs[i] = err
			continue
		}
		p.acks = append(p.acks, &a)
		p.j.add("publish %s", o.Topic)
	}
	return errs
}

func (p *publisher) all() []*telemetrypb.Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acks)
}

// flow counts Pause and Resume.
type flow struct {
	mu             sync.Mutex
	pauses, resums int
	paused         bool
}

func (f *flow) Pause() {
	f.mu.Lock()
	f.pauses++
	f.paused = true
	f.mu.Unlock()
}

func (f *flow) Resume() {
	f.mu.Lock()
	f.resums++
	f.paused = false
	f.mu.Unlock()
}

func (f *flow) state() (pauses, resumes int, paused bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pauses, f.resums, f.paused
}

// live is a LiveState that keeps the newest state per vehicle, or fails.
type live struct {
	mu     sync.Mutex
	fail   bool
	states map[string]cloud.VehicleState
	calls  int
}

func (l *live) UpdateLatest(_ context.Context, states []cloud.VehicleState) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.fail {
		return cloud.Errorf(cloud.EUNAVAILABLE, "update live state in Redis: connection refused")
	}
	if l.states == nil {
		l.states = map[string]cloud.VehicleState{}
	}
	for _, s := range states {
		if cur, ok := l.states[s.VehicleID]; !ok || s.Position.Time.After(cur.Position.Time) {
			l.states[s.VehicleID] = s
		}
	}
	return nil
}

func (l *live) get(id string) (cloud.VehicleState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.states[id]
	return s, ok
}

func (l *live) setFail(f bool) {
	l.mu.Lock()
	l.fail = f
	l.mu.Unlock()
}

// rig is a pipeline over the fakes, running until the test ends.
type rig struct {
	t     *testing.T
	j     *journal
	store *store
	pub   *publisher
	flow  *flow
	live  *live
	p     *ingest.Pipeline
	stop  func()
}

// now is the fakes' server clock at the start of a synctest bubble.
var start = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // synctest's epoch

func newRig(t *testing.T, modify ...func(*ingest.Pipeline)) *rig {
	t.Helper()
	j := &journal{}
	r := &rig{t: t, j: j, store: newStore(j), pub: &publisher{j: j}, flow: &flow{}, live: &live{}}
	r.p = ingest.New(r.store, r.pub)
	r.p.Live, r.p.Flow = r.live, r.flow
	r.p.RetryMin, r.p.RetryMax = 100*time.Millisecond, 10*time.Second
	for _, m := range modify {
		m(r.p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// send delivers a message in its own goroutine (Receive may block) and
// returns it.
func (r *rig) send(topic string, payload []byte) *msg {
	m := &msg{topic: topic, payload: payload, j: r.j}
	go func() {
		if err := r.p.Receive(context.Background(), m); err != nil {
			r.j.add("left %s: %v", topic, err)
		}
	}()
	return m
}

func topic(vehicle string, kind telemetry.Kind) string {
	t, err := telemetry.DefaultNamespace.Topic(vehicle, kind)
	if err != nil {
		panic(err)
	}
	return t
}

// batchPayload encodes n positions of vehicle from seq first, stamped at.
func batchPayload(t *testing.T, vehicle string, stream, first uint64, n int, at time.Time) []byte {
	t.Helper()
	b := &telemetry.Batch{VehicleID: vehicle, StreamID: stream}
	for i := range n {
		b.Positions = append(b.Positions, telemetry.Position{Seq: first + uint64(i), UnixMs: at.Add(time.Duration(i) * time.Second).UnixMilli(),
			LatE7: 437384166 + int32(i), LonE7: 74246333})
	}
	return encodeBatch(t, b)
}

func encodeBatch(t *testing.T, b *telemetry.Batch) []byte {
	t.Helper()
	p, err := telemetry.EncodeBatch(b, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func statusPayload(t *testing.T, vehicle string, online bool, at time.Time) []byte {
	t.Helper()
	p, err := telemetry.Encode(&telemetrypb.Status{VehicleId: vehicle, Online: online, UnixMs: at.UnixMilli(), OutboxDepth: 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resultPayload(t *testing.T, id string) []byte {
	t.Helper()
	p, err := telemetry.Encode(&telemetrypb.CommandResult{Id: id, Ok: true, UnixMs: start.UnixMilli()}, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// encodeBatchV2 encodes b in protocol version 2, which leaves out its
// vehicle id (the topic carries it).
func encodeBatchV2(t testing.TB, b *telemetry.Batch) []byte {
	t.Helper()
	p, err := telemetry.EncodeBatchV2(b, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
