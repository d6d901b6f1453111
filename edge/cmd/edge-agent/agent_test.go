package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sys/unix"

	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// rawPty opens a pseudo-terminal in raw mode and keeps its slave side open,
// as the simulator does; the agent opens the slave by path.
func rawPty(t *testing.T) (master *os.File, path string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s.Name()
}

// elm327 answers the agent's commands on the master side of a pty: the
// data sheet's banner and OK for AT commands, fixed values for 010C (1726
// rpm), 010D (50 km/h) and 0105 (83 °C).
func elm327(m io.ReadWriter) {
	r := bufio.NewReader(m)
	for {
		cmd, err := r.ReadString('\r')
		if err != nil {
			return
		}
		cmd = strings.TrimSpace(cmd)
		reply := map[string]string{"ATZ": "\r\rELM327 v1.5", "010C": "410C1AF8", "010D": "410D32", "0105": "41057B"}[cmd]
		if reply == "" {
			reply = "OK"
			if !strings.HasPrefix(cmd, "AT") {
				reply = "NO DATA"
			}
		}
		if _, err := io.WriteString(m, reply+"\r\r>"); err != nil {
			return
		}
	}
}

func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "edge-agent")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(buildAgent(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "edge-agent ") {
		t.Errorf("edge-agent version = %q, %v", out, err)
	}
}

func TestBadConfigExitsTwoNamingTheField(t *testing.T) {
	bin := buildAgent(t)
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("vehicle_id: veh-1\ngps:\n  port: /dev/ttyUSB0\nuplink:\n  inflight: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "uplink.inflight") {
		t.Errorf("exit %v, output %q; want status 2 naming uplink.inflight", err, out)
	}
}

// TestAgent runs the built agent against two ptys and the real broker: the
// fix and the OBD samples arrive in batches, stay in the outbox until acked,
// /health and /metrics report them, and SIGTERM stops it cleanly with an
// offline status.
func TestAgent(t *testing.T) {
	bin := buildAgent(t)
	url, ns := testenv.MQTT(t)
	vehicle := "veh-" + testenv.ID()
	port := testenv.FreePort(t)
	gpsMaster, gpsPath := rawPty(t)
	obdMaster, obdPath := rawPty(t)
	go elm327(obdMaster)
	// Written before the agent starts: the port must not lose it.
	if _, err := io.WriteString(gpsMaster,
		// The classic NMEA example, dated 2024 (a 1994 date is a GPS
		// week-rollover victim now), and the next epoch's first sentence,
		// which closes the first epoch.
		"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230324,003.1,W*61\r\n"+
			"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"+
			"$GPRMC,123520,A,4807.038,N,01131.000,E,022.4,084.4,230324,003.1,W*6B\r\n"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	config := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(config, []byte(`vehicle_id: ${VEHICLE_ID}
data_dir: ${DATA_DIR}
gps:
  port: ${GPS_PORT}
obd:
  port: serial://${OBD_PORT}?baud=38400
  pids: ["0C", "0D", "05"]
  interval: 1h
mqtt:
  url: ${MQTT_URL:-tcp://127.0.0.1:1883}
  namespace: ${NAMESPACE}
outbox:
  flush_interval: 50ms
http:
  listen: 127.0.0.1:${HTTP_PORT}
log:
  level: debug
`), 0o600); err != nil {
		t.Fatal(err)
	}

	obs := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("obs-" + testenv.ID()))
	waitTok(t, obs.Connect())
	t.Cleanup(func() { obs.Disconnect(100) })
	topic := func(k telemetry.Kind) string {
		s, err := telemetry.Namespace(ns).Topic(vehicle, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batches := make(chan *telemetry.Batch, 100)
	status := make(chan *telemetrypb.Status, 100)
	waitTok(t, obs.Subscribe(topic(telemetry.KindBatch), 1, func(_ paho.Client, m paho.Message) {
		if b, err := telemetry.DecodeBatch(m.Payload()); err == nil {
			batches <- b
		}
	}))
	waitTok(t, obs.Subscribe(topic(telemetry.KindStatus), 1, func(_ paho.Client, m paho.Message) {
		var s telemetrypb.Status
		if len(m.Payload()) > 0 && telemetry.Decode(m.Payload(), &s) == nil {
			status <- &s
		}
	}))
	t.Cleanup(func() {
		waitTok(t, obs.Publish(topic(telemetry.KindStatus), 1, true, []byte{}))
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetgate-edge-" + vehicle).SetCleanSession(true))
		waitTok(t, c.Connect())
		c.Disconnect(100)
	})

	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Env = append(os.Environ(), "VEHICLE_ID="+vehicle, "DATA_DIR="+filepath.Join(dir, "data"),
		"GPS_PORT="+gpsPath, "OBD_PORT="+obdPath, "MQTT_URL="+url, "NAMESPACE="+ns, fmt.Sprintf("HTTP_PORT=%d", port))
	logs, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("agent log:\n%s", b)
		}
	})

	// The agent's online status names its stream, which acks must name.
	var stream uint64
	statusDeadline := time.After(30 * time.Second)
	for stream == 0 {
		select {
		case s := <-status:
			if s.GetOnline() {
				stream = s.GetStreamId()
			}
		case <-statusDeadline:
			t.Fatal("no online status after 30s")
		}
	}
	health := func() map[string]any {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/health: %d, %v", resp.StatusCode, err)
		}
		return h
	}
	ack := func(last uint64) {
		t.Helper()
		p, err := telemetry.Encode(telemetry.NewAck(vehicle, stream, []telemetry.SeqRange{{First: 1, Last: last}}, nil, ""), false)
		if err != nil {
			t.Fatal(err)
		}
		waitTok(t, obs.Publish(topic(telemetry.KindAck), 1, false, p))
	}

	// Collect batches until the fix and the three samples have arrived,
	// acking each batch that leaves some out, as the cloud would: while a
	// batch awaits its ack the agent gathers the next one (adaptive
	// batching), so whether the fix and the samples share a batch depends
	// on when the adapter answered.
	var fixes []telemetry.Position
	obd := map[uint16]float64{}
	var maxSeq uint64
	deadline := time.After(30 * time.Second)
	for len(fixes) < 1 || len(obd) < 3 {
		select {
		case b := <-batches:
			if b.VehicleID != vehicle {
				t.Fatalf("batch for %q", b.VehicleID)
			}
			fixes = append(fixes, b.Positions...)
			for _, s := range b.OBD {
				obd[s.PID] = s.Value
			}
			unacked := uint64(0)
			for _, r := range b.SeqRanges() {
				maxSeq = max(maxSeq, r.Last)
				unacked += r.Last - r.First + 1
			}
			// Sent is not deleted: the records stay in the outbox until
			// the cloud's ack.
			if h := health(); h["status"] != "ok" || uint64(h["outbox_depth"].(float64)) < unacked {
				t.Errorf("/health before the ack = %v; the batch's %d records must still be stored", h, unacked)
			}
			if len(fixes) < 1 || len(obd) < 3 {
				ack(maxSeq)
			}
		case <-deadline:
			t.Fatalf("after 30s: fixes %v, OBD %v", fixes, obd)
		}
	}
	if f := fixes[0]; f.UnixMs != 1711197319000 || f.LatE7 != 481173000 || f.LonE7 != 115166667 || f.SpeedMmps != 11524 || f.SatsUsed != 8 {
		t.Errorf("fix %+v", f)
	}
	if obd[0x010C] != 1726 || obd[0x010D] != 50 || obd[0x0105] != 83 {
		t.Errorf("OBD samples %v", obd)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"fleetgate_edge_gps_fixes_total 1", "fleetgate_edge_obd_samples_total 3", "fleetgate_edge_outbox_depth ", "fleetgate_edge_mqtt_connected 1"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The cloud's ack empties the outbox.
	ack(maxSeq)
	for end := time.Now().Add(20 * time.Second); health()["outbox_depth"].(float64) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("outbox not emptied by the ack: %v", health())
		}
	}

	// outbox stats while the agent runs (through its HTTP endpoint).
	dataDir := filepath.Join(dir, "data")
	running := outboxStats(t, bin, dataDir)
	if running.Depth != 0 || running.NextSeq <= maxSeq || running.StreamID != fmt.Sprintf("%016x", stream) {
		t.Errorf("outbox stats while running: %+v (stream %016x, max seq %d)", running, stream, maxSeq)
	}

	// Commands: run once per id, answered on up/cmd-result; expired ones never run.
	results := make(chan *telemetrypb.CommandResult, 10)
	waitTok(t, obs.Subscribe(topic(telemetry.KindCmdResult), 1, func(_ paho.Client, m paho.Message) {
		var r telemetrypb.CommandResult
		if telemetry.Decode(m.Payload(), &r) == nil {
			results <- &r
		}
	}))
	send := func(c *telemetrypb.Command) *telemetrypb.CommandResult {
		t.Helper()
		p, err := telemetry.Encode(c, false)
		if err != nil {
			t.Fatal(err)
		}
		waitTok(t, obs.Publish(topic(telemetry.KindCmd), 1, false, p))
		select {
		case r := <-results:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no result for command %s", c.GetId())
		}
		return nil
	}
	later := time.Now().Add(time.Hour).UnixMilli()
	first := send(&telemetrypb.Command{Id: "c1", Type: telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL, ExpiresUnixMs: later, IntervalMs: 500})
	if !first.GetOk() || first.GetId() != "c1" {
		t.Errorf("set report interval: %v", first)
	}
	// The same id with another payload: answered from the log, not run.
	again := send(&telemetrypb.Command{Id: "c1", Type: telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL, ExpiresUnixMs: later, IntervalMs: 1})
	if !again.GetOk() || again.GetUnixMs() != first.GetUnixMs() {
		t.Errorf("repeated command id: %v, want the first result %v", again, first)
	}
	if r := send(&telemetrypb.Command{Id: "c2", Type: telemetrypb.CommandType_COMMAND_TYPE_REPORT_STATUS, ExpiresUnixMs: time.Now().Add(-time.Second).UnixMilli()}); r.GetOk() || r.GetError() != "expired" {
		t.Errorf("expired command: %v", r)
	}
	if r := send(&telemetrypb.Command{Id: "c3", Type: telemetrypb.CommandType_COMMAND_TYPE_REPORT_STATUS, ExpiresUnixMs: later}); !r.GetOk() {
		t.Errorf("report status: %v", r)
	}
	if r := send(&telemetrypb.Command{Id: "c4", Type: telemetrypb.CommandType_COMMAND_TYPE_SET_PIDS, ExpiresUnixMs: later, Pids: []uint32{0x010C}}); !r.GetOk() {
		t.Errorf("set PIDs: %v", r)
	}
	// This responder knows no Mode 03 and answers NO DATA: the command fails
	// with the adapter's words, never an invented empty list of codes.
	if r := send(&telemetrypb.Command{Id: "c5", Type: telemetrypb.CommandType_COMMAND_TYPE_READ_DTCS, ExpiresUnixMs: later}); r.GetOk() || !strings.Contains(r.GetError(), "NO DATA") || len(r.GetDtcs()) != 0 {
		t.Errorf("read DTCs from an adapter that answers NO DATA: %v", r)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("agent exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent still running 15s after SIGTERM")
	}
	// outbox stats with no agent (the file, read-only).
	if stopped := outboxStats(t, bin, dataDir); stopped.StreamID != running.StreamID || stopped.NextSeq < running.NextSeq {
		t.Errorf("outbox stats after the agent stopped: %+v, while running %+v", stopped, running)
	}
	for {
		select {
		case s := <-status:
			if !s.GetOnline() {
				return // the offline status of a clean stop
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no offline status after SIGTERM")
		}
	}
}

type outboxJSON struct {
	Depth            uint64  `json:"depth"`
	Bytes            uint64  `json:"bytes"`
	OldestUnsentAgeS float64 `json:"oldest_unsent_age_s"`
	Dropped          uint64  `json:"dropped"`
	StreamID         string  `json:"stream_id"`
	NextSeq          uint64  `json:"next_seq"`
}

func outboxStats(t *testing.T, bin, dir string) outboxJSON {
	t.Helper()
	out, err := exec.Command(bin, "outbox", "stats", "--data", dir).Output()
	if err != nil {
		t.Fatalf("edge-agent outbox stats: %v", err)
	}
	var st outboxJSON
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("outbox stats output %q: %v", out, err)
	}
	return st
}

func waitTok(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho: %v", tok.Error())
	}
}

// TestReportIntervalSurvivesRestart: a report interval commanded by the
// cloud is kept in the data directory, so the agent restarted on it applies
// it again; a configuration changed since the command wins over it.
func TestReportIntervalSurvivesRestart(t *testing.T) {
	bin := buildAgent(t)
	url, ns := testenv.MQTT(t)
	vehicle := "veh-" + testenv.ID()
	_, gpsPath := rawPty(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	config := filepath.Join(dir, "agent.yaml")
	writeConfig := func(extra string) {
		t.Helper()
		yaml := fmt.Sprintf("vehicle_id: %s\ndata_dir: %s\ngps:\n  port: %s\nmqtt:\n  url: %s\n  namespace: %s\nhttp:\n  listen: 127.0.0.1:%d\n%s",
			vehicle, filepath.Join(dir, "data"), gpsPath, url, ns, port, extra)
		if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	topic := func(k telemetry.Kind) string {
		s, err := telemetry.Namespace(ns).Topic(vehicle, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	obs := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("obs-" + testenv.ID()))
	waitTok(t, obs.Connect())
	t.Cleanup(func() {
		waitTok(t, obs.Publish(topic(telemetry.KindStatus), 1, true, []byte{}))
		obs.Disconnect(100)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetgate-edge-" + vehicle).SetCleanSession(true))
		waitTok(t, c.Connect())
		c.Disconnect(100)
	})
	results := make(chan *telemetrypb.CommandResult, 10)
	waitTok(t, obs.Subscribe(topic(telemetry.KindCmdResult), 1, func(_ paho.Client, m paho.Message) {
		var r telemetrypb.CommandResult
		if telemetry.Decode(m.Payload(), &r) == nil {
			results <- &r
		}
	}))
	// run starts the agent and returns its minimum batch age once /health
	// says it is connected, and the agent.
	runs := 0
	run := func() (float64, *testenv.Proc) {
		t.Helper()
		runs++
		agent := testenv.StartProcess(t, dir, fmt.Sprintf("edge-agent-%d", runs), bin, nil, "run", "--config", config)
		var h map[string]any
		testenv.Eventually(t, 30*time.Second, "the agent connected", func() error {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			h = nil
			if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
				return err
			}
			return testenv.True(h["mqtt_connected"] == true)
		}, agent)
		return h["min_batch_age_s"].(float64), agent
	}
	stop := func(agent *testenv.Proc) {
		t.Helper()
		if err := agent.Stop(t); err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	}

	writeConfig("")
	age, agent := run()
	if age != 0 {
		t.Fatalf("minimum batch age %v s with the defaults, want 0", age)
	}
	p, err := telemetry.Encode(&telemetrypb.Command{Id: "ri-" + testenv.ID(), Type: telemetrypb.CommandType_COMMAND_TYPE_SET_REPORT_INTERVAL,
		ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli(), IntervalMs: 60000}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitTok(t, obs.Publish(topic(telemetry.KindCmd), 1, false, p))
	select {
	case r := <-results:
		if !r.GetOk() {
			t.Fatalf("set report interval: %v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no command result within 20s")
	}
	stop(agent)

	if age, agent = run(); age != 60 {
		t.Errorf("after a restart: minimum batch age %v s, want the commanded 60", age)
	}
	stop(agent)
	writeConfig("uplink:\n  min_batch_age: 5s\n")
	if age, agent = run(); age != 5 {
		t.Errorf("after the configuration changed: minimum batch age %v s, want the configured 5", age)
	}
	stop(agent)
}
