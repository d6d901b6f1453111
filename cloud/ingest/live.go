package ingest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// liveQueue holds the newest state of each vehicle committed but not yet
// written to the LiveState: a slow or dead Redis costs a map entry per
// vehicle, never ingest time. When the LiveState is also a
// cloud.LiveAnnouncer, it holds the statuses and events to announce too, at
// most MaxLiveNotices (the oldest go first: the live stream is a view, and
// PostgreSQL has everything).
type liveQueue struct {
	mu      sync.Mutex
	pending map[string]cloud.VehicleState
	notices []cloud.LiveUpdate
	wake    chan struct{} // capacity 1
}

// MaxLiveNotices bounds the statuses and events waiting to be announced.
const MaxLiveNotices = 10_000

// notice queues u for announcement.
func (q *liveQueue) notice(u cloud.LiveUpdate) {
	if len(q.notices) >= MaxLiveNotices {
		q.notices = slices.Delete(q.notices, 0, 1)
	}
	q.notices = append(q.notices, u)
}

// put keeps st unless a newer state of its vehicle is pending, and reports
// whether it kept it.
func (q *liveQueue) put(st cloud.VehicleState) bool {
	if q.pending == nil {
		q.pending = map[string]cloud.VehicleState{}
	}
	if cur, ok := q.pending[st.VehicleID]; ok && !st.Position.Time.After(cur.Position.Time) {
		return false
	}
	q.pending[st.VehicleID] = st
	return true
}

// noteLive queues the newest fix of each vehicle of the committed items for
// the LiveState (fixes stamped beyond MaxClockAhead never are).
func (p *Pipeline) noteLive(items []*item) {
	if p.Live == nil {
		return
	}
	_, announce := p.Live.(cloud.LiveAnnouncer)
	q := &p.live
	q.mu.Lock()
	for _, it := range items {
		if announce && it.status != nil && it.statusApplied {
			q.notice(cloud.LiveUpdate{Kind: cloud.LiveStatus, VehicleID: it.status.VehicleID, Status: it.status})
		}
		if it.accepted == nil {
			continue
		}
		for i := range it.accepted.Events {
			if announce {
				q.notice(liveEvent(it.accepted, &it.accepted.Events[i]))
			}
		}
		if len(it.accepted.Positions) == 0 {
			continue
		}
		for _, f := range cloud.NewestFixes([]*telemetry.Batch{it.accepted}, it.limit) {
			q.put(liveState(f, it.received, it.limit))
		}
	}
	n := len(q.pending) + len(q.notices)
	q.mu.Unlock()
	if n > 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// runLive writes queued states to the LiveState until committed is closed
// (and once more then). A failed write is counted, logged (at the start of
// an outage and then every doubling of failures) and retried with backoff;
// states committed meanwhile replace older ones of the same vehicle.
func (p *Pipeline) runLive(ctx context.Context, committed <-chan struct{}) {
	if p.Live == nil {
		return
	}
	q := &p.live
	failures := 0
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for last := false; !last; {
		select {
		case <-q.wake:
			if failures > 0 {
				continue // wait for the retry
			}
		case <-retry.C:
		case <-committed:
			last = true
		}
		q.mu.Lock()
		pending, notices := q.pending, q.notices
		q.pending, q.notices = nil, nil
		q.mu.Unlock()
		if len(pending) == 0 && len(notices) == 0 {
			continue
		}
		states := make([]cloud.VehicleState, 0, len(pending))
		for _, id := range slices.Sorted(maps.Keys(pending)) {
			states = append(states, pending[id])
		}
		uctx, cancel := context.WithTimeout(ctx, p.LiveTimeout)
		err := p.Live.UpdateLatest(uctx, states)
		if a, ok := p.Live.(cloud.LiveAnnouncer); ok && err == nil {
			if err = a.Announce(uctx, notices); err == nil {
				notices = nil
			}
		}
		cancel()
		if err == nil {
			if failures > 0 {
				p.Logger.Info("live state updates work again", "failures", failures)
			}
			failures = 0
			continue
		}
		p.stats.liveFailures.Add(1)
		failures++
		if logEvery(failures) {
			p.Logger.Warn("live state update failed; PostgreSQL has the data, will retry", "vehicles", len(states), "failures", failures, "err", err)
		}
		q.mu.Lock()
		for _, st := range states {
			q.put(st)
		}
		later := q.notices
		q.notices = nil
		for _, u := range append(notices, later...) {
			q.notice(u)
		}
		q.mu.Unlock()
		retry.Reset(cloud.Backoff(p.RetryMin, p.RetryMax, failures))
	}
}

// liveEvent returns an event of a batch as a live update.
func liveEvent(b *telemetry.Batch, e *telemetry.Event) cloud.LiveUpdate {
	return cloud.LiveUpdate{Kind: cloud.LiveEvent, VehicleID: b.VehicleID, Event: &cloud.Event{
		VehicleID: b.VehicleID, StreamID: b.StreamID, Seq: e.Seq, Time: time.UnixMilli(e.UnixMs).UTC(),
		Type: e.Type, Code: e.Code, Detail: e.Detail, Value: e.Value}}
}

// liveState returns a fix as a live state.
func liveState(f cloud.Fix, received, limit time.Time) cloud.VehicleState {
	p := cloud.Position{VehicleID: f.VehicleID, StreamID: f.StreamID, Seq: f.Seq, Time: f.Time(), Lat: f.Lat(), Lon: f.Lon()}
	if f.Has&telemetry.HasSpeed != 0 {
		s := float64(f.SpeedMmps) / 1000
		p.SpeedMPS = &s
	}
	if f.Has&telemetry.HasCourse != 0 {
		c := float64(f.CourseCdeg) / 100
		p.CourseDeg = &c
	}
	return cloud.VehicleState{VehicleID: f.VehicleID, Position: p, UpdatedAt: received, ClockLimit: limit}
}
