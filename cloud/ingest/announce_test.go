package ingest_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/ingest"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// announcer is the live fake that also announces statuses and events.
type announcer struct {
	*live
	mu        sync.Mutex
	announced []cloud.LiveUpdate
}

func (a *announcer) Announce(_ context.Context, us []cloud.LiveUpdate) error {
	a.live.mu.Lock()
	fail := a.live.fail
	a.live.mu.Unlock()
	if fail {
		return cloud.Errorf(cloud.EUNAVAILABLE, "announce in Redis: connection refused")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announced = append(a.announced, us...)
	return nil
}

func (a *announcer) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, u := range a.announced {
		switch u.Kind {
		case cloud.LiveStatus:
			out = append(out, "status "+u.VehicleID)
		case cloud.LiveEvent:
			out = append(out, "event "+u.VehicleID+" "+u.Event.Code)
		}
	}
	return out
}

// TestAnnounceStatusesAndEvents: a status that changed the stored one and
// the events of committed batches are announced to the live stream, once
// Redis takes them; a status that changed nothing (the same report again)
// is not.
func TestAnnounceStatusesAndEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &announcer{live: &live{}}
		r := newRig(t, func(p *ingest.Pipeline) { p.Live = a })
		a.setFail(true)
		at := time.Now()
		r.send(topic("veh-1", telemetry.KindStatus), statusPayload(t, "veh-1", true, at))
		synctest.Wait()
		r.send(topic("veh-1", telemetry.KindStatus), statusPayload(t, "veh-1", true, at))
		r.send(topic("veh-1", telemetry.KindBatch), encodeBatch(t, &telemetry.Batch{VehicleID: "veh-1", StreamID: 1, Events: []telemetry.Event{
			{Seq: 1, UnixMs: at.UnixMilli(), Type: telemetry.EventDTCSet, Code: "P0301"},
			{Seq: 2, UnixMs: at.UnixMilli(), Type: telemetry.EventDTCCleared, Code: "P0301"},
		}}))
		synctest.Wait()
		if got := a.got(); len(got) != 0 {
			t.Fatalf("announced while Redis is down: %v", got)
		}
		a.setFail(false)
		time.Sleep(time.Minute)
		if got, want := a.got(), []string{"status veh-1", "event veh-1 P0301", "event veh-1 P0301"}; !slices.Equal(got, want) {
			t.Errorf("announced %v, want %v", got, want)
		}
	})
}
