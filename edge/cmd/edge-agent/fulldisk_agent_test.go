package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/bolt"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// outboxJSON is the part of GET /outbox the test reads.
type outboxState struct {
	Depth     uint64            `json:"depth"`
	FileBytes int64             `json:"file_bytes"`
	CapBytes  int64             `json:"cap_bytes"`
	Trouble   string            `json:"trouble"`
	Dropped   uint64            `json:"dropped"`
	DroppedBy map[string]uint64 `json:"dropped_by"`
	NextSeq   uint64            `json:"next_seq"`
	NoSpace   uint64            `json:"no_space"`
}

// Item 12: the agent with its outbox on a 700 KiB filesystem and the broker
// unreachable, fed 100 fixes and 300 OBD samples a second: it fills what the
// filesystem holds in about 20 s. The test runs it twice that, then has
// another program take the rest of the disk, and runs on: the newest
// records keep being stored, old ones are thinned and dropped, every drop is
// counted, no append fails, /health says the outbox is in trouble, and the
// disk never fills.
func TestAgentOnAFullFilesystem(t *testing.T) {
	bin := buildAgent(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", data, "tmpfs", 0, "size=700k"); err != nil {
		t.Fatalf("mount a 700 KiB tmpfs (the test needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(data, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	gpsMaster, gpsPath := rawPty(t)
	obdMaster, obdPath := rawPty(t)
	go elm327(obdMaster)
	ctx, stopGPS := context.WithCancel(context.Background())
	defer stopGPS()
	lastFix := make(chan time.Time, 1) // the time of the last fix written
	go func() {
		// 100 Hz: RMC only, hundredths of a second.
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
			body := fmt.Sprintf("GPRMC,%s.%02d,A,48%07.4f,N,01131.000,E,22.4,84.4,%s,,,A", at.Format("150405"), at.Nanosecond()/1e7, 7+float64(i)*1e-5, at.Format("020106"))
			var sum byte
			for j := 0; j < len(body); j++ {
				sum ^= body[j]
			}
			if _, err := fmt.Fprintf(gpsMaster, "$%s*%02X\r\n", body, sum); err != nil {
				return
			}
			select {
			case <-lastFix:
			default:
			}
			lastFix <- at
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	httpPort := testenv.FreePort(t)
	config := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `vehicle_id: veh-%s
data_dir: %s
gps:
  port: %s
obd:
  port: serial://%s?baud=38400
  pids: ["0C", "0D", "05"]
  interval: 10ms
mqtt:
  url: tcp://127.0.0.1:%d
outbox:
  flush_interval: 100ms
http:
  listen: 127.0.0.1:%d
`, testenv.ID(), data, gpsPath, obdPath, testenv.FreePort(t), httpPort), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := testenv.StartProcess(t, dir, "edge-agent", bin, nil, "run", "--config", config)
	get := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path))
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode
	}
	var st outboxState
	testenv.Eventually(t, 30*time.Second, "the agent's /outbox", func() error { return testenv.True(get("/outbox", &st) == 200) }, agent)
	if st.CapBytes <= 0 || st.CapBytes >= 700<<10 || !strings.HasPrefix(st.Trouble, "filesystem full") {
		t.Errorf("at start: %+v, want a cap below the filesystem's size and the trouble said", st)
	}
	// Fill it, twice over.
	testenv.Eventually(t, 2*time.Minute, "the oldest records dropped", func() error {
		get("/outbox", &st)
		if st.DroppedBy["oldest"] == 0 {
			return fmt.Errorf("nothing dropped yet: %+v", st)
		}
		return nil
	}, agent)
	full := st
	t.Logf("filled: %+v", full)
	time.Sleep(20 * time.Second)
	get("/outbox", &st)
	if st.NextSeq < full.NextSeq+1000 || st.Dropped <= full.Dropped {
		t.Errorf("20 s after the outbox filled: %+v, then %+v: want the records flowing in and old ones dropped", full, st)
	}

	// Another program takes the rest of the disk.
	filler, err := os.Create(filepath.Join(data, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	before := st
	time.Sleep(10 * time.Second)
	get("/outbox", &st)
	t.Logf("after the filler: %+v", st)
	if st.NextSeq < before.NextSeq+500 {
		t.Errorf("10 s on a disk another program filled: %+v, then %+v: want the records flowing in", before, st)
	}
	var h map[string]any
	if code := get("/health", &h); code != 200 || h["status"] != "degraded" || !strings.HasPrefix(fmt.Sprint(h["outbox_trouble"]), "filesystem full") {
		t.Errorf("/health %d %v, want degraded with the outbox's trouble", code, h)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"fleetgate_edge_outbox_trouble 1", "fleetgate_edge_outbox_append_failing 0", `fleetgate_edge_outbox_dropped_total{reason="oldest"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(metrics), "fleetgate_edge_collector_append_errors_total") || strings.Contains(string(metrics), "fleetgate_edge_collector_dropped_total") {
		t.Errorf("appends failed:\n%s", metrics)
	}

	// Stop the agent; the file's books and its newest record.
	stopGPS()
	last := <-lastFix
	// Let the agent read what the pty still holds: until its outbox stops
	// growing (the OBD source goes on; its samples are a few a poll).
	for prev, end := st.NextSeq, time.Now().Add(30*time.Second); time.Now().Before(end); prev = st.NextSeq {
		time.Sleep(time.Second)
		get("/outbox", &st)
		if st.NextSeq < prev+400 {
			break
		}
	}
	if err := agent.Stop(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
	o, err := bolt.Open(filepath.Join(data, "outbox.db"), &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	final, err := o.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("final: next seq %d, depth %d, dropped %d (%d thinned, %d oldest), file %d bytes, no space %d",
		final.NextSeq, final.Depth, final.Dropped, final.DroppedThinned, final.DroppedOldest, final.FileBytes, final.NoSpace)
	if final.NextSeq-1 != final.Depth+final.Dropped {
		t.Errorf("seqs given %d, stored %d + dropped %d: a record went uncounted", final.NextSeq-1, final.Depth, final.Dropped)
	}
	newest, ok, err := o.Newest(context.Background(), edge.KindPosition)
	if err != nil || !ok || last.Sub(time.UnixMilli(newest.Position.UnixMs)) > 2*time.Second {
		t.Errorf("newest stored fix %v (%v, %v); the last written was %v", time.UnixMilli(newest.Position.UnixMs).UTC(), ok, err, last)
	}
	recs, err := o.Unsent(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	reported := 0
	for _, r := range recs {
		if r.Kind == edge.KindEvent && r.Event.Type == telemetry.EventRecordsDropped {
			reported++
		}
	}
	if reported == 0 {
		t.Error("no RECORDS_DROPPED event among the stored records")
	}
	if b, _ := os.ReadFile(agent.Log); strings.Contains(string(b), "outbox append failed") {
		t.Error("the agent logged a failed append")
	}
}
