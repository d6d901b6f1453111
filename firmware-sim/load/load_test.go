package load_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/load"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// subscriber runs mosquitto_sub on the batch topics of ns and collects the
// decoded batches.
type subscriber struct {
	batches chan *telemetry.Batch
	errs    chan error
}

func subscribe(t *testing.T, url string, ns telemetry.Namespace) *subscriber {
	t.Helper()
	hostPort := strings.TrimPrefix(url, "tcp://")
	host, port, _ := strings.Cut(hostPort, ":")
	cmd := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-q", "1", "-t", ns.Filter(telemetry.KindBatch), "-t", string(ns)+"/probe", "-F", "%t %x")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub (Debian package mosquitto-clients): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &subscriber{batches: make(chan *telemetry.Batch, 100000), errs: make(chan error, 10)}
	probed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			topic, payload, _ := strings.Cut(sc.Text(), " ")
			if strings.HasSuffix(topic, "/probe") {
				close(probed)
				continue
			}
			b, err := hex.DecodeString(payload)
			if err == nil {
				var batch *telemetry.Batch
				if batch, err = telemetry.DecodeBatch(b); err == nil {
					s.batches <- batch
					continue
				}
			}
			s.errs <- fmt.Errorf("%s: %v", topic, err)
		}
	}()
	// Publish probes until one comes back: then the subscription is in place.
	testenv.Eventually(t, time.Minute, "mosquitto_sub subscribed", func() error {
		if out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-t", string(ns)+"/probe", "-m", "x").CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_pub: %v: %s", err, out)
		}
		select {
		case <-probed:
			return nil
		case <-time.After(200 * time.Millisecond):
			return errors.New("no probe came back")
		}
	})
	return s
}

// Load mode publishes what the agent would: batches of positions and OBD
// samples in the agent's encoding, on each vehicle's own topic, with
// consecutive sequence numbers per stream.
func TestLoadPublishesAsAgents(t *testing.T) {
	url := testenv.StartMosquitto(t, testenv.MosquittoOptions{}).URL()
	ns := telemetry.Namespace("t" + fmt.Sprint(os.Getpid()) + "/fleet/v1")
	sub := subscribe(t, url, ns)
	route, _ := firmwaresim.RouteByName("monaco-harbour")
	res, err := load.Run(context.Background(), load.Config{Vehicles: 20, Rate: 5, Duration: 3 * time.Second, MQTT: url, Namespace: ns,
		IDPrefix: "load-", Seed: 1, Route: route, OBDPIDs: []byte{0x0C, 0x0D}, MinBatchAge: 200 * time.Millisecond,
		Inflight: 1000, AckTimeout: time.Hour, NoDelay: true}) // no cloud acks here: never stop for want of one
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Vehicles != 20 || res.Generated < 20*3*5*3*8/10 || res.Sent < res.Generated*8/10 || res.Sent > res.Generated || res.Batches == 0 || res.PubAcks == 0 || res.PubAcks > res.Batches {
		t.Fatalf("result %v", res)
	}
	// 20 vehicles at 5 Hz for 3 s: at most 16 instants each (the first at its
	// offset), each a position when there is a fix and the two PIDs.
	if res.Ticks < 20*5*3*8/10 || res.Ticks > 20*16 || res.Generated > 3*res.Ticks || res.Generated < 2*res.Ticks {
		t.Errorf("%d sample instants for %d records", res.Ticks, res.Generated)
	}
	if res.Connected != 20 {
		t.Errorf("%d of 20 agents connected at the end", res.Connected)
	}
	// Everything published reaches a subscriber, decodable.
	seen := map[string]uint64{} // vehicle → records
	next := map[uint64]uint64{} // stream → next seq expected
	positions, samples := 0, 0
	var total uint64
	deadline := time.After(30 * time.Second)
	for total < res.Sent {
		select {
		case b := <-sub.batches:
			if !strings.HasPrefix(b.VehicleID, "load-") {
				t.Fatalf("batch of vehicle %q", b.VehicleID)
			}
			for _, r := range b.SeqRanges() {
				if want := next[b.StreamID]; want != 0 && r.First != want {
					t.Errorf("%s: seq %d after %d", b.VehicleID, r.First, want-1)
				}
				next[b.StreamID] = r.Last + 1
			}
			for _, p := range b.Positions {
				if p.Lat() < 43.72 || p.Lat() > 43.76 || p.Lon() < 7.40 || p.Lon() > 7.45 || p.Has&telemetry.HasSpeed == 0 {
					t.Errorf("%s: position %+v", b.VehicleID, p)
				}
			}
			for _, o := range b.OBD {
				if o.PID != 0x010C && o.PID != 0x010D {
					t.Errorf("%s: sample of PID %04X", b.VehicleID, o.PID)
				}
			}
			positions += len(b.Positions)
			samples += len(b.OBD)
			seen[b.VehicleID] += uint64(b.Len())
			total += uint64(b.Len())
		case err := <-sub.errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("received %d of %d published records", total, res.Sent)
		}
	}
	if len(seen) != 20 || len(next) != 20 || samples != 2*positions {
		t.Errorf("%d vehicles, %d streams, %d positions, %d samples", len(seen), len(next), positions, samples)
	}
}

// BenchmarkLoad runs 1,000 virtual agents at 1 Hz against a private broker
// and reports the rate achieved and the CPU it took, in seconds per second
// and as a percentage of one core (target: under one core, 100 %).
func BenchmarkLoad(b *testing.B) {
	const d = time.Minute
	url := testenv.StartMosquitto(b, testenv.MosquittoOptions{}).URL()
	route, _ := firmwaresim.RouteByName("monaco-loop")
	for b.Loop() {
		// The broker alone (no cloud to acknowledge): the window never closes.
		res, err := load.Run(context.Background(), load.Config{Vehicles: 1000, Rate: 1, Duration: d, MQTT: url,
			Namespace: "bench/fleet/v1", IDPrefix: "bench-", Seed: 1, Route: route, Inflight: 1 << 20, AckTimeout: 24 * time.Hour, NoDelay: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Log(res)
		b.ReportMetric(res.Rate(), "msgs/s")
		b.ReportMetric(res.TickRate(), "ticks/s")
		b.ReportMetric(res.CPUPerSecond(), "cpu-s/s")
		b.ReportMetric(100*res.CPUPerSecond(), "%CPU")
		b.ReportMetric(float64(res.Connected), "agents-connected")
		b.ReportMetric(res.Elapsed.Seconds(), "s-wall")
	}
}
