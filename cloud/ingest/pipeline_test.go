package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// TestMicroBatching: messages that arrive while the committer is busy are
// gathered into micro-batches, closed at MaxBatchMessages; each message is
// acknowledged once, after the commit that holds it.
func TestMicroBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		r := newRig(t, func(p *ingest.Pipeline) { p.Workers, p.MaxBatchMessages, p.QueueLen = 1, 4, 16 })
		r.store.block = block
		first := r.send(topic("veh-0", telemetry.KindBatch), batchPayload(t, "veh-0", 1, 1, 2, time.Now()))
		synctest.Wait() // the first micro-batch, alone, waits in Commit
		var msgs []*msg
		for i := 1; i <= 8; i++ {
			id := fmt.Sprintf("veh-%d", i)
			msgs = append(msgs, r.send(topic(id, telemetry.KindBatch), batchPayload(t, id, 1, 1, 2, time.Now())))
		}
		synctest.Wait()
		if first.acked() != 0 {
			t.Fatal("acknowledged before its commit")
		}
		close(block)
		synctest.Wait()
		commits, records, _ := r.store.snapshot()
		var sizes []int
		for _, c := range commits {
			sizes = append(sizes, len(c.Batches))
		}
		if fmt.Sprint(sizes) != "[1 4 4]" {
			t.Errorf("micro-batches of %v messages, want [1 4 4]", sizes)
		}
		if records != 18 {
			t.Errorf("%d records stored, want 18", records)
		}
		for _, m := range append(msgs, first) {
			if m.acked() != 1 {
				t.Errorf("%s acknowledged %d times, want 1", m.topic, m.acked())
			}
		}
		if s := r.p.Stats(); s.Commits != 3 || s.Acked != 9 || s.Held != 0 || s.Rows[ingest.KindPosition] != 18 || s.AcksPublished != 9 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestCommitThenAckThenBrokerAck: for every message, its commit comes
// before its protocol Ack, and the Ack before the broker's PUBACK.
func TestCommitThenAckThenBrokerAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		tp := topic("veh-1", telemetry.KindBatch)
		r.send(tp, batchPayload(t, "veh-1", 7, 1, 3, time.Now()))
		synctest.Wait()
		c, p, a := r.j.index("commit [batch:veh-1]"), r.j.index("publish "+topic("veh-1", telemetry.KindAck)), r.j.index("ack "+tp)
		if c < 0 || p < 0 || a < 0 || !(c < p && p < a) {
			t.Fatalf("journal %q: want commit, then publish, then ack", r.j.all())
		}
		acks := r.pub.all()
		if len(acks) != 1 {
			t.Fatalf("%d Acks", len(acks))
		}
		committed, rejected := telemetry.AckRanges(acks[0])
		if fmt.Sprint(committed) != "[{1 3}]" || len(rejected) != 0 || acks[0].GetStreamId() != 7 {
			t.Errorf("Ack %v", acks[0])
		}
	})
}

// TestSplitRefusedMicroBatch: a message whose records pass validation but
// which the store refuses is dead-lettered alone; the rest of its
// micro-batch is committed and acknowledged.
func TestSplitRefusedMicroBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		r := newRig(t, func(p *ingest.Pipeline) { p.Workers, p.MaxBatchMessages, p.QueueLen = 1, 8, 16 })
		r.store.block = block
		r.send(topic("veh-x", telemetry.KindBatch), batchPayload(t, "veh-x", 1, 1, 1, time.Now()))
		synctest.Wait()
		for i := range 8 {
			id := fmt.Sprintf("veh-%d", i)
			b := &telemetry.Batch{VehicleID: id, StreamID: 9, Positions: []telemetry.Position{
				{Seq: 1, UnixMs: time.Now().UnixMilli(), LatE7: 1}, {Seq: 2, UnixMs: time.Now().UnixMilli(), LatE7: 2}}}
			if i == 5 {
				b.Positions[1].LatE7 = poisonLat
			}
			r.send(topic(id, telemetry.KindBatch), encodeBatch(t, b))
		}
		synctest.Wait()
		close(block)
		synctest.Wait()
		_, records, dead := r.store.snapshot()
		if records != 1+7*2 {
			t.Errorf("%d records stored, want 15", records)
		}
		if len(dead) != 1 || dead[0].VehicleID != "veh-5" || !strings.HasPrefix(dead[0].Reason, "refused by the database") {
			t.Errorf("dead letters %+v, want only veh-5's", dead)
		}
		for _, a := range r.pub.all() {
			committed, rejected := telemetry.AckRanges(a)
			switch {
			case a.GetVehicleId() == "veh-5" && (len(committed) != 0 || fmt.Sprint(rejected) != "[{1 2}]"):
				t.Errorf("Ack of the poison: %v", a)
			case a.GetVehicleId() != "veh-5" && (len(rejected) != 0 || len(committed) != 1):
				t.Errorf("Ack of %s: %v", a.GetVehicleId(), a)
			}
		}
		if s := r.p.Stats(); s.Acked != 9 || s.DeadLetters[ingest.ReasonRefused] != 1 || s.Rejected != 2 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestBackpressure: while the store holds the commit, Receive takes no more
// than the queue and one micro-batch; the rest wait in Receive (in the
// broker), and all go through once the store answers.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue, perBatch, n = 3, 2, 20
		block := make(chan struct{})
		r := newRig(t, func(p *ingest.Pipeline) { p.Workers, p.MaxBatchMessages, p.QueueLen = 1, perBatch, queue })
		r.store.block = block
		var msgs []*msg
		for i := range n {
			id := fmt.Sprintf("veh-%d", i)
			msgs = append(msgs, r.send(topic(id, telemetry.KindBatch), batchPayload(t, id, 1, 1, 1, time.Now())))
		}
		synctest.Wait()
		// In Commit: one micro-batch; gathered: another; queued: queue.
		s := r.p.Stats()
		if s.QueueDepth != queue || s.QueueMax != queue || s.Held != n {
			t.Errorf("while the store is busy: %+v; want %d queued, %d held", s, queue, n)
		}
		if s.Acked != 0 {
			t.Errorf("%d acknowledged before any commit", s.Acked)
		}
		close(block)
		synctest.Wait()
		for _, m := range msgs {
			if m.acked() != 1 {
				t.Errorf("%s acknowledged %d times", m.topic, m.acked())
			}
		}
		if s := r.p.Stats(); s.QueueMax > queue || s.Held != 0 || s.Acked != n {
			t.Errorf("after: %+v", s)
		}
	})
}

// TestRetryRule is the ingest stall after a PostgreSQL outage, without a
// broker: with the database
// away for a minute, statuses, command results and batches are all held,
// retried and never given up on; nothing is acknowledged before its commit,
// and once the database is back every one of them is.
func TestRetryRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(p *ingest.Pipeline) { p.StepBackAfter = time.Hour })
		r.store.commands["veh-1/c1"] = true
		r.store.setFail(down)
		var msgs []*msg
		for i := range 30 {
			id := fmt.Sprintf("veh-%d", i)
			msgs = append(msgs, r.send(topic(id, telemetry.KindStatus), statusPayload(t, id, true, time.Now())))
		}
		msgs = append(msgs, r.send(topic("veh-1", telemetry.KindCmdResult), resultPayload(t, "c1")))
		time.Sleep(time.Minute)
		for i := range 5 {
			id := fmt.Sprintf("veh-b%d", i)
			msgs = append(msgs, r.send(topic(id, telemetry.KindBatch), batchPayload(t, id, 1, 1, 2, time.Now())))
		}
		time.Sleep(time.Minute)
		for _, m := range msgs {
			if m.acked() != 0 {
				t.Fatalf("%s acknowledged while the database is away", m.topic)
			}
		}
		s := r.p.Stats()
		if s.StoreRetries < 10 || s.Held != int64(len(msgs)) {
			t.Fatalf("while away: %+v; want retries going on, %d held", s, len(msgs))
		}
		if s.Lag < 2*time.Minute {
			t.Errorf("lag %v while the oldest message has waited 2 minutes", s.Lag)
		}
		r.store.setFail(nil)
		time.Sleep(11 * time.Second) // at most RetryMax until the next attempt
		synctest.Wait()
		for _, m := range msgs {
			if m.acked() != 1 {
				t.Errorf("%s acknowledged %d times after the database came back", m.topic, m.acked())
			}
		}
		if len(r.store.statuses) != 30 || r.store.answers["veh-1/c1"].OK != true {
			t.Errorf("stored %d statuses, answer %+v", len(r.store.statuses), r.store.answers)
		}
		if s := r.p.Stats(); s.Lag != 0 || s.Held != 0 {
			t.Errorf("after: lag %v, %d held", s.Lag, s.Held)
		}
	})
}

// TestBackoffIsBoundedAndJittered: the waits between attempts grow to
// RetryMax, never above it, and are jittered (never in lockstep).
func TestBackoffIsBoundedAndJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for attempt := 1; attempt < 100; attempt++ {
		d := cloud.Backoff(100*time.Millisecond, 10*time.Second, attempt)
		if d < 50*time.Millisecond || d > 10*time.Second || attempt > 10 && d < 5*time.Second {
			t.Fatalf("attempt %d: %v outside the bounds", attempt, d)
		}
		if attempt > 20 {
			seen[d] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct waits at the top: no jitter", len(seen))
	}
}

// TestAckPublishRetried: an Ack the broker does not confirm is published
// again; the message is acknowledged only once its Ack is confirmed.
func TestAckPublishRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		fails := 3
		r.pub.fail = func(ingest.Outgoing) error {
			if fails > 0 {
				fails--
				return fmt.Errorf("not connected")
			}
			return nil
		}
		m := r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-1", 1, 1, 1, time.Now()))
		synctest.Wait()
		if m.acked() != 0 {
			t.Fatal("acknowledged before its Ack was confirmed")
		}
		time.Sleep(time.Minute)
		if m.acked() != 1 || r.p.Stats().AckRetries != 3 {
			t.Errorf("acked %d, stats %+v", m.acked(), r.p.Stats())
		}
	})
}

// TestStepBackAndResume: commits failing longer than StepBackAfter pause
// the flow and make Ping fail with the reason; the first commit that works
// resumes the flow and clears Ping.
func TestStepBackAndResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(p *ingest.Pipeline) { p.StepBackAfter = 5 * time.Second })
		r.store.setFail(down)
		m := r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-1", 1, 1, 1, time.Now()))
		time.Sleep(4 * time.Second)
		if pauses, _, _ := r.flow.state(); pauses != 0 || r.p.Ping(t.Context()) != nil {
			t.Fatal("stepped back within the grace")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if pauses, _, paused := r.flow.state(); pauses != 1 || !paused {
			t.Fatalf("not paused after the grace (%d pauses)", pauses)
		}
		err := r.p.Ping(t.Context())
		if cloud.ErrorCode(err) != cloud.EUNAVAILABLE || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "stepped back") {
			t.Errorf("Ping while stepped back: %v", err)
		}
		if s := r.p.Stats(); !s.SteppedBack || s.StepBacks != 1 {
			t.Errorf("stats %+v", s)
		}
		time.Sleep(time.Minute) // still failing: no second pause, no resume
		if pauses, resumes, _ := r.flow.state(); pauses != 1 || resumes != 0 {
			t.Errorf("%d pauses, %d resumes while still failing", pauses, resumes)
		}
		r.store.setFail(nil)
		time.Sleep(16 * time.Second)
		synctest.Wait()
		if _, resumes, paused := r.flow.state(); resumes != 1 || paused {
			t.Errorf("not resumed after the database came back")
		}
		if err := r.p.Ping(t.Context()); err != nil || m.acked() != 1 || r.p.Stats().SteppedBack {
			t.Errorf("after: Ping %v, acked %d", err, m.acked())
		}
	})
}

// TestClockAhead: a status stamped beyond MaxClockAhead is a dead letter;
// records stamped beyond it are stored and acknowledged but never reach the
// live state; both are counted.
func TestClockAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(p *ingest.Pipeline) { p.MaxClockAhead = 5 * time.Minute })
		now := time.Now()
		future := r.send(topic("veh-1", telemetry.KindStatus), statusPayload(t, "veh-1", true, now.Add(time.Hour)))
		real := r.send(topic("veh-2", telemetry.KindStatus), statusPayload(t, "veh-2", true, now.Add(4*time.Minute)))
		b := &telemetry.Batch{VehicleID: "veh-3", StreamID: 1, Positions: []telemetry.Position{
			{Seq: 1, UnixMs: now.Add(time.Second).UnixMilli(), LatE7: 1},
			{Seq: 2, UnixMs: now.Add(10 * time.Hour).UnixMilli(), LatE7: 2},
		}}
		batch := r.send(topic("veh-3", telemetry.KindBatch), encodeBatch(t, b))
		synctest.Wait()
		if future.acked() != 1 || real.acked() != 1 || batch.acked() != 1 {
			t.Fatal("not all acknowledged")
		}
		_, records, dead := r.store.snapshot()
		if len(dead) != 1 || dead[0].VehicleID != "veh-1" || !strings.Contains(dead[0].Reason, "ahead of the server clock") {
			t.Errorf("dead letters %+v", dead)
		}
		if _, ok := r.store.statuses["veh-1"]; ok || len(r.store.statuses) != 1 {
			t.Errorf("statuses stored %v", r.store.statuses)
		}
		if records != 2 {
			t.Errorf("%d records stored, want both", records)
		}
		if st, ok := r.live.get("veh-3"); !ok || st.Position.Seq != 1 || !st.ClockLimit.Equal(now.Add(5*time.Minute)) {
			t.Errorf("live state %+v, want seq 1 (the fix from the future never)", st)
		}
		commits, _, _ := r.store.snapshot()
		for _, c := range commits {
			if !c.ClockLimit.Equal(now.Add(5 * time.Minute)) {
				t.Errorf("commit with clock limit %v", c.ClockLimit)
			}
		}
		if s := r.p.Stats(); s.ClockAhead[ingest.KindStatus] != 1 || s.ClockAhead[ingest.KindPosition] != 1 || s.DeadLetters[ingest.ReasonClockAhead] != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestBadMessagesAreDeadLettered: every kind of bad input is a dead letter
// with its reason, acknowledged; an undecodable batch gets no Ack (its
// ranges are unknown), a partly bad one an Ack with both ranges.
func TestBadMessagesAreDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.store.commands["veh-1/known"] = true
		partly := &telemetry.Batch{VehicleID: "veh-p", StreamID: 3, Positions: []telemetry.Position{
			{Seq: 1, UnixMs: time.Now().UnixMilli(), LatE7: 1}, {Seq: 2, UnixMs: time.Now().UnixMilli(), LatE7: 95e7}}}
		msgs := map[string]*msg{
			"topic":            r.send("elsewhere/veh-1/up/batch", []byte{1}),
			"down topic":       r.send(topic("veh-1", telemetry.KindAck), []byte{1}),
			"batch garbage":    r.send(topic("veh-1", telemetry.KindBatch), []byte{0x10, 0xff, 0xff}),
			"foreign batch":    r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-2", 1, 1, 1, time.Now())),
			"partly bad":       r.send(topic("veh-p", telemetry.KindBatch), encodeBatch(t, partly)),
			"status garbage":   r.send(topic("veh-1", telemetry.KindStatus), []byte{0x10, 0xff}),
			"foreign status":   r.send(topic("veh-1", telemetry.KindStatus), statusPayload(t, "veh-2", true, time.Now())),
			"result garbage":   r.send(topic("veh-1", telemetry.KindCmdResult), []byte{0x10, 0xff}),
			"unknown command":  r.send(topic("veh-1", telemetry.KindCmdResult), resultPayload(t, "nope")),
			"known command":    r.send(topic("veh-1", telemetry.KindCmdResult), resultPayload(t, "known")),
			"status cleared":   r.send(topic("veh-1", telemetry.KindStatus), nil),
			"result of nobody": r.send(topic("veh-1", telemetry.KindCmdResult), resultPayload(t, "")),
		}
		synctest.Wait()
		for name, m := range msgs {
			if m.acked() != 1 {
				t.Errorf("%s: acknowledged %d times", name, m.acked())
			}
		}
		s := r.p.Stats()
		want := map[string]int64{ingest.ReasonTopic: 2, ingest.ReasonDecode: 3, ingest.ReasonInvalid: 4, ingest.ReasonUnknownCommand: 1}
		for reason, n := range want {
			if s.DeadLetters[reason] != n {
				t.Errorf("%d dead letters for %s, want %d (all: %v)", s.DeadLetters[reason], reason, n, s.DeadLetters)
			}
		}
		if _, _, dead := r.store.snapshot(); len(dead) != 10 {
			t.Errorf("%d dead letters stored, want 10", len(dead))
		}
		acks := map[string]string{}
		for _, a := range r.pub.all() {
			c, rj := telemetry.AckRanges(a)
			acks[a.GetVehicleId()] = fmt.Sprint(c, rj)
		}
		if len(acks) != 2 || acks["veh-1"] != "[] [{1 1}]" || acks["veh-p"] != "[{1 1}] [{2 2}]" {
			t.Errorf("Acks %v", acks)
		}
		if !r.store.answers["veh-1/known"].OK {
			t.Errorf("the known command's answer was not stored")
		}
	})
}

// TestLiveFailureNeverHoldsAnAck: with the live state failing, batches are
// acknowledged all the same; the newest state per vehicle is kept and
// written once the live state works again.
func TestLiveFailureNeverHoldsAnAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.live.setFail(true)
		a := r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-1", 1, 1, 2, time.Now()))
		synctest.Wait()
		b := r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-1", 1, 3, 2, time.Now().Add(time.Minute)))
		synctest.Wait()
		if a.acked() != 1 || b.acked() != 1 || r.p.Stats().LiveFailures == 0 {
			t.Fatalf("acked %d %d, stats %+v", a.acked(), b.acked(), r.p.Stats())
		}
		r.live.setFail(false)
		time.Sleep(time.Minute)
		if st, ok := r.live.get("veh-1"); !ok || st.Position.Seq != 4 {
			t.Errorf("live state after Redis came back: %+v, want seq 4", st)
		}
	})
}

// TestShutdownDrains: what is queued when Run's context ends is committed
// and acknowledged; Receive then refuses new messages, leaving them with
// the broker.
func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		r := newRig(t, func(p *ingest.Pipeline) { p.Workers = 1 })
		r.store.block = block
		var msgs []*msg
		for i := range 5 {
			id := fmt.Sprintf("veh-%d", i)
			msgs = append(msgs, r.send(topic(id, telemetry.KindBatch), batchPayload(t, id, 1, 1, 1, time.Now())))
		}
		synctest.Wait()
		go r.stop()
		synctest.Wait()
		close(block)
		synctest.Wait()
		for _, m := range msgs {
			if m.acked() != 1 {
				t.Errorf("%s not acknowledged at shutdown", m.topic)
			}
		}
		late := &msg{topic: topic("veh-9", telemetry.KindBatch), j: r.j}
		if err := r.p.Receive(t.Context(), late); err != ingest.ErrStopped {
			t.Errorf("Receive after stop: %v", err)
		}
	})
}

// TestShutdownLeavesWhatCannotCommit: with the database away at shutdown,
// the messages held stay unacknowledged (the broker keeps them) once
// DrainTimeout has passed.
func TestShutdownLeavesWhatCannotCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(p *ingest.Pipeline) { p.DrainTimeout = 10 * time.Second })
		r.store.setFail(down)
		m := r.send(topic("veh-1", telemetry.KindBatch), batchPayload(t, "veh-1", 1, 1, 1, time.Now()))
		synctest.Wait()
		r.stop()
		if m.acked() != 0 {
			t.Error("acknowledged without a commit")
		}
		if s := r.p.Stats(); s.Held != 0 {
			t.Errorf("%d still held after Run returned", s.Held)
		}
	})
}
