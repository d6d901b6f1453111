package dispatch_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/dispatch"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// broker is a CommandPublisher that refuses while down.
type broker struct {
	mu   sync.Mutex
	down bool
	got  []string
}

func (b *broker) PublishCommand(_ context.Context, c *cloud.Command) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return cloud.Errorf(cloud.EUNAVAILABLE, "not connected to the broker")
	}
	b.got = append(b.got, c.ID)
	return nil
}

func (b *broker) set(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

func (b *broker) published() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// TestPendingCommandIsRetried: a command whose publish failed stays pending,
// is sent by Run once the broker takes commands again, and is sent once; a
// cancelled one and an expired one are not sent.
func TestPendingCommandIsRetried(t *testing.T) {
	ctx := context.Background()
	u := testenv.Postgres(t)
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	db := postgres.NewDB(u)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	if _, err := db.Commit(ctx, &cloud.Commit{Batches: []*telemetry.Batch{{VehicleID: "veh-1", StreamID: 1,
		Positions: []telemetry.Position{{Seq: 1, UnixMs: now.UnixMilli(), LatE7: 1, LonE7: 1}}}}, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	b := &broker{down: true}
	var logs bytes.Buffer
	var logMu sync.Mutex
	d := dispatch.New(db, b)
	d.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	d.Interval, d.RetryAfter, d.Grace = 50*time.Millisecond, 100*time.Millisecond, 0
	mk := func(id string, ttl time.Duration) *cloud.Command {
		c := &cloud.Command{ID: id, VehicleID: "veh-1", Type: cloud.CommandReadDTCs, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if _, _, err := db.CreateCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := mk("c1", time.Hour)
	if err := d.Send(ctx, c); cloud.ErrorCode(err) != cloud.EUNAVAILABLE || !c.SentAt.IsZero() {
		t.Fatalf("Send while the broker is down: %v", err)
	}
	mk("cancelled", time.Hour)
	if _, err := db.CancelCommand(ctx, "veh-1", "cancelled", now); err != nil {
		t.Fatal(err)
	}
	mk("expired", time.Millisecond)

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.Eventually(t, 10*time.Second, "a failed retry logged", func() error {
		logMu.Lock()
		defer logMu.Unlock()
		return testenv.True(strings.Contains(logs.String(), "pending commands not sent"))
	})
	b.set(false)
	testenv.Eventually(t, 10*time.Second, "c1 sent", func() error {
		got, err := db.FindCommand(ctx, "veh-1", "c1")
		if err != nil {
			return err
		}
		return testenv.True(got.Status(time.Now()) == "sent")
	})
	time.Sleep(300 * time.Millisecond) // a few more looks: nothing more to send
	if got := b.published(); len(got) != 1 || got[0] != "c1" {
		t.Errorf("published %v, want c1 once", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
