package truth_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// The three example lines of firmware-sim/README.md ("Ground truth"), byte
// for byte.
const contractExample = `{"type":"fix","vehicle":"veh-001","time":"2026-11-27T10:00:00.000Z","lat":43.7384166667,"lon":7.4246333333,"alt_m":52.3,"speed_mps":13.891,"course_deg":45.2,"quality":1,"sats":9,"hdop":0.9}
{"type":"obd","vehicle":"veh-001","time":"2026-11-27T10:00:00.412Z","pid":"0C","mode":"01","value":1303.75,"unit":"rpm","reply":"41 0C 14 5F"}
{"type":"end","vehicle":"veh-001","time":"2026-11-27T10:05:00.000Z"}
`

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestWriterMatchesContract(t *testing.T) {
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	paris := time.FixedZone("CET", 3600) // times are written in UTC whatever their zone
	if err := w.Fix(truth.Fix{Vehicle: "veh-001", Time: t0.In(paris), Lat: 43.7384166667, Lon: 7.4246333333, AltM: 52.3,
		SpeedMps: 13.891, CourseDeg: 45.2, Quality: 1, Sats: 9, HDOP: 0.9}); err != nil {
		t.Fatal(err)
	}
	if err := w.OBD(truth.OBD{Vehicle: "veh-001", Time: t0.Add(412*time.Millisecond + 999*time.Microsecond), Mode: 0x01, PID: 0x0C,
		Value: 1303.75, Unit: "rpm", Reply: "41 0C 14 5F"}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Error("lines reached the file before a flush")
	}
	if err := w.End("veh-001", t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(contractExample, buf.String()); diff != "" {
		t.Errorf("truth lines (-contract +got):\n%s", diff)
	}
}

func TestRead(t *testing.T) {
	lines, err := truth.Read(bytes.NewBufferString(contractExample))
	if err != nil {
		t.Fatal(err)
	}
	want := []truth.Line{
		{Type: "fix", Vehicle: "veh-001", Time: t0, Lat: 43.7384166667, Lon: 7.4246333333, AltM: 52.3, SpeedMps: 13.891,
			CourseDeg: 45.2, Quality: 1, Sats: 9, HDOP: 0.9},
		{Type: "obd", Vehicle: "veh-001", Time: t0.Add(412 * time.Millisecond), PID: "0C", Mode: "01", Value: 1303.75, Unit: "rpm", Reply: "41 0C 14 5F"},
		{Type: "end", Vehicle: "veh-001", Time: t0.Add(5 * time.Minute)},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := truth.Read(bytes.NewBufferString(contractExample + "{\"type\":\"nope\"}\n")); err == nil {
		t.Error("Read accepted an unknown line type")
	}
}

func TestRunFlushesAtTheEnd(t *testing.T) {
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx, time.Hour) }()
	if err := w.Fix(truth.Fix{Vehicle: "v", Time: t0}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lines, err := truth.Read(&buf); err != nil || len(lines) != 1 {
		t.Errorf("after Run ended: %d lines, %v", len(lines), err)
	}
}

func TestFaultLines(t *testing.T) {
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	for _, f := range []truth.Fault{
		{Vehicle: "veh-001", Time: t0.Add(time.Minute), Fault: "unplug", Device: "obd", Phase: "begin", Until: t0.Add(70 * time.Second)},
		{Vehicle: "veh-001", Time: t0.Add(70 * time.Second), Fault: "unplug", Device: "obd", Phase: "end"},
		{Vehicle: "veh-001", Time: t0.Add(2 * time.Minute), Fault: "garbage", Device: "gps", Phase: "instant", Bytes: 64},
		{Vehicle: "veh-001", Time: t0.Add(3 * time.Minute), Fault: "clock_jump", Device: "gps", Phase: "begin", Offset: -90 * time.Minute},
		{Vehicle: "veh-001", Time: t0.Add(4 * time.Minute), Fault: "obd_reply", Device: "obd", Phase: "instant", Count: 3, Reply: "STOPPED"},
	} {
		if err := w.Fault(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"fault","vehicle":"veh-001","time":"2026-11-27T10:01:00.000Z","fault":"unplug","device":"obd","phase":"begin","until":"2026-11-27T10:01:10.000Z"}
{"type":"fault","vehicle":"veh-001","time":"2026-11-27T10:01:10.000Z","fault":"unplug","device":"obd","phase":"end"}
{"type":"fault","vehicle":"veh-001","time":"2026-11-27T10:02:00.000Z","fault":"garbage","device":"gps","phase":"instant","bytes":64}
{"type":"fault","vehicle":"veh-001","time":"2026-11-27T10:03:00.000Z","fault":"clock_jump","device":"gps","phase":"begin","offset":"-1h30m0s"}
{"type":"fault","vehicle":"veh-001","time":"2026-11-27T10:04:00.000Z","fault":"obd_reply","device":"obd","phase":"instant","count":3,"reply":"STOPPED"}
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	lines, err := truth.Read(&buf)
	if err != nil || len(lines) != 5 {
		t.Fatalf("read back: %d lines, %v", len(lines), err)
	}
	if l := lines[0]; l.Type != "fault" || l.Fault != "unplug" || l.Phase != "begin" || !l.Until.Equal(t0.Add(70*time.Second)) {
		t.Errorf("line 1 read back as %+v", l)
	}
	if l := lines[4]; l.Count != 3 || l.Reply != "STOPPED" {
		t.Errorf("line 5 read back as %+v", l)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		lines         int
		err           string // "" when the file must read; else in the error, after the file's name
	}{
		{"contract", contractExample, 3, ""},
		{"being written", contractExample + `{"type":"fix","vehicle":"veh-001","ti`, 3, ""},
		{"empty", "", 0, ""},
		{"not json", contractExample + "fix veh-001\n", 0, ":4: invalid character"},
		{"unknown type", `{"type":"nope","vehicle":"v","time":"2026-11-27T10:00:00.000Z"}` + "\n", 0, `:1: unknown type "nope"`},
		{"no vehicle", `{"type":"fix","time":"2026-11-27T10:00:00.000Z","lat":1,"lon":2}` + "\n", 0, ":1: fix line without a vehicle"},
		{"no time", `{"type":"end","vehicle":"v"}` + "\n", 0, ":1: end line without a time"},
		{"no pid", `{"type":"obd","vehicle":"v","time":"2026-11-27T10:00:00.000Z","mode":"01","value":3}` + "\n", 0, ":1: obd line without a pid or mode"},
	}
	for i, tc := range tests {
		path := filepath.Join(dir, fmt.Sprintf("t%d.jsonl", i))
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		lines, err := truth.ReadFile(path)
		switch {
		case tc.err == "" && (err != nil || len(lines) != tc.lines):
			t.Errorf("%s: %d lines, %v; want %d lines", tc.name, len(lines), err, tc.lines)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), path+tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, path+tc.err)
		}
	}
	if _, err := truth.ReadFile(filepath.Join(dir, "none.jsonl")); err == nil || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestVehicles(t *testing.T) {
	lines, err := truth.Read(strings.NewReader(`{"type":"fault","vehicle":"b","time":"2026-11-27T09:59:00.000Z","fault":"unplug","device":"obd","phase":"begin"}
{"type":"fix","vehicle":"a","time":"2026-11-27T10:00:01.000Z","lat":43.7,"lon":7.4}
{"type":"fix","vehicle":"b","time":"2026-11-27T10:00:00.000Z","lat":43.8,"lon":7.5}
{"type":"obd","vehicle":"a","time":"2026-11-27T10:00:00.500Z","pid":"0C","mode":"01","value":800}
{"type":"end","vehicle":"a","time":"2026-11-27T10:00:02.000Z"}
`))
	if err != nil {
		t.Fatal(err)
	}
	vs := truth.Vehicles(lines)
	a, b := vs["a"], vs["b"]
	if len(vs) != 2 || a.ID != "a" || len(a.Fixes) != 1 || len(a.OBD) != 1 || len(a.Faults) != 0 || !a.Ended ||
		!a.First.Equal(t0.Add(500*time.Millisecond)) || !a.Last.Equal(t0.Add(2*time.Second)) {
		t.Errorf("vehicle a: %+v", a)
	}
	if len(b.Fixes) != 1 || len(b.Faults) != 1 || b.Ended || !b.First.Equal(t0.Add(-time.Minute)) || !b.Last.Equal(t0) {
		t.Errorf("vehicle b: %+v", b)
	}
}
