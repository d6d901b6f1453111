package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// serveTCP accepts one client at a time on a free port and runs serve on
// each; it returns the tcp:// URL.
func serveTCP(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// nmeaWithChecksum frames a body as a sentence.
func nmeaWithChecksum(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X\r\n", body, sum)
}

// Item 11: a gateway whose system clock is three hours and a quarter
// behind and not synchronised (injected, as the kernel would say), with a
// receiver sending the right time. The agent's own records (the OBD
// samples, its start event) are stamped from GNSS time once the fixes have
// given it, and the batch says which records; before any fix they are
// flagged as stamped by an unsynchronised clock. The status and /metrics
// and /health report the clock's state.
func TestAgentStampsFromGNSSTime(t *testing.T) {
	const behind = 3*time.Hour + 15*time.Minute
	url, ns := testenv.MQTT(t)
	vehicle := "veh-" + testenv.ID()
	gpsURL := serveTCP(t, func(c net.Conn) {
		// 5 Hz at the pace of real time, the receiver's UTC 3h15 ahead of
		// the gateway's clock.
		for tick := time.NewTicker(200 * time.Millisecond); ; <-tick.C {
			at := time.Now().Add(behind).UTC().Truncate(200 * time.Millisecond)
			rmc := fmt.Sprintf("GPRMC,%s.%02d,A,4807.038,N,01131.000,E,0.0,0.0,%s,,,A", at.Format("150405"), at.Nanosecond()/1e7, at.Format("020106"))
			if _, err := io.WriteString(c, nmeaWithChecksum(rmc)); err != nil {
				return
			}
		}
	})
	obdURL := elmServer(t, map[string]string{"ATZ": "\r\rELM327 v1.5", "ATRV": "12.4V", "0100": "41 00 00 08 00 00", "010D": "41 0D 32"})
	port := testenv.FreePort(t)
	cfg := DefaultConfig()
	cfg.VehicleID, cfg.DataDir = vehicle, filepath.Join(t.TempDir(), "data")
	cfg.GPS.Port, cfg.OBD.Port, cfg.OBD.PIDs, cfg.OBD.Interval = gpsURL, obdURL, []string{"0D"}, 200*time.Millisecond
	cfg.MQTT.URL, cfg.MQTT.Namespace = url, ns
	cfg.Outbox.FlushInterval, cfg.Uplink.MinBatchAge, cfg.Uplink.StatusInterval = 50*time.Millisecond, 50*time.Millisecond, 500*time.Millisecond
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", port)

	obs := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("obs-" + testenv.ID()))
	if tok := obs.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer obs.Disconnect(100)
	topic := func(k telemetry.Kind) string {
		s, _ := telemetry.Namespace(ns).Topic(vehicle, k)
		return s
	}
	batches := make(chan *telemetry.Batch, 1000)
	status := make(chan *telemetrypb.Status, 100)
	obs.Subscribe(topic(telemetry.KindBatch), 1, func(c paho.Client, m paho.Message) {
		if b, err := telemetry.DecodeBatch(m.Payload()); err == nil {
			batches <- b
			// Acknowledge as the cloud does: the uplink sends the next
			// records once the batch before them is acknowledged.
			if p, err := telemetry.Encode(telemetry.NewAck(vehicle, b.StreamID, b.SeqRanges(), nil, ""), false); err == nil {
				c.Publish(topic(telemetry.KindAck), 1, false, p)
			}
		}
	}).Wait()
	obs.Subscribe(topic(telemetry.KindStatus), 1, func(_ paho.Client, m paho.Message) {
		var s telemetrypb.Status
		if len(m.Payload()) > 0 && telemetry.Decode(m.Payload(), &s) == nil {
			status <- &s
		}
	}).Wait()
	t.Cleanup(func() { obs.Publish(topic(telemetry.KindStatus), 1, true, []byte{}).Wait() })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	unsynced := system{Now: time.Now, Synced: func() (bool, error) { return false, nil }}
	go func() { done <- runAgentOn(ctx, cfg, slog.New(slog.DiscardHandler), unsynced) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("agent: %v", err)
		}
	}()

	// The start event goes out before any fix: unsynced. Then samples
	// stamped from GNSS time.
	var started, gnssSample bool
	deadline := time.After(30 * time.Second)
	for !started || !gnssSample {
		select {
		case b := <-batches:
			in := func(rs []telemetry.SeqRange, seq uint64) bool {
				for _, r := range rs {
					if r.Contains(seq) {
						return true
					}
				}
				return false
			}
			for _, e := range b.Events {
				if e.Type == telemetry.EventAgentStarted {
					started = true
					if !in(b.UnsyncedTime, e.Seq) || in(b.GNSSTime, e.Seq) {
						t.Errorf("start event %+v: ranges gnss %v unsynced %v, want unsynced", e, b.GNSSTime, b.UnsyncedTime)
					}
				}
			}
			for _, s := range b.OBD {
				skew := time.Since(time.UnixMilli(s.UnixMs).Add(-behind))
				switch {
				case in(b.GNSSTime, s.Seq):
					gnssSample = true
					if skew < -2*time.Second || skew > 2*time.Second {
						t.Errorf("sample %+v stamped %v off GNSS time", s, skew)
					}
				case in(b.UnsyncedTime, s.Seq):
					if d := time.Since(time.UnixMilli(s.UnixMs)); d < -2*time.Second || d > 10*time.Second {
						t.Errorf("unsynced sample %+v not at the system clock (%v)", s, d)
					}
				default:
					t.Errorf("sample %+v in neither range (gnss %v, unsynced %v)", s, b.GNSSTime, b.UnsyncedTime)
				}
			}
		case <-deadline:
			t.Fatalf("after 30 s: start event %v, a GNSS-stamped sample %v", started, gnssSample)
		}
	}
	for s := range status {
		if s.GetClockSource() == 2 {
			if off := time.Duration(s.GetClockOffsetMs()) * time.Millisecond; off < behind-2*time.Second || off > behind+time.Second {
				t.Errorf("status clock offset %v, want about %v", off, behind)
			}
			// The other fields the agent adds to its status.
			if s.GetObdState() != "answered" || s.GetOutboxTrouble() != "" {
				t.Errorf("status obd_state %q, outbox_trouble %q", s.GetObdState(), s.GetOutboxTrouble())
			}
			break
		}
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`fleetgate_edge_clock_source{source="gnss"} 1`, `fleetgate_edge_clock_synced 0`, `fleetgate_edge_clock_offset_seconds 11`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status string `json:"status"`
		Clock  struct {
			Source string `json:"source"`
			Synced bool   `json:"synced"`
		} `json:"clock"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Status != "ok" || h.Clock.Source != "gnss" || h.Clock.Synced {
		t.Errorf("/health %+v", h)
	}
}
