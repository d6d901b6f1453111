package elm327_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
)

var at = time.Date(2026, 11, 27, 10, 0, 0, 410_000_000, time.UTC)

// ecu is a fixed engine computer state; the transcript switches it off.
type ecu struct {
	st atomic.Pointer[firmwaresim.State]
}

func (e *ecu) State() firmwaresim.State { return *e.st.Load() }

// running is a state whose PIDs encode to round numbers (SAE J1979 formulas):
// 1726 rpm → 1A F8, 50 km/h → 32, 83 °C → 7B, 12.34 g/s → 04 D2, 14.2 V → 37 78.
var running = firmwaresim.State{
	Time: at, EngineOn: true, SpeedMps: 50 / 3.6, RPM: 1726, LoadPct: 40, ThrottlePct: 15,
	MAFgps: 12.34, CoolantC: 83, IntakeC: 25, AmbientC: 18, BatteryV: 14.2, FuelPct: 62.5,
	RunTime: 300 * time.Second, DistanceM: 2500,
}

type step struct {
	send, want string
	engineOff  bool     // switch the engine off before sending
	stored     []string // set these stored trouble codes before sending (nil: leave them)
}

// transcript is written from the ELM327 data sheet's descriptions of each
// command and of its message formats: replies end with CR (CR LF after ATL1), an
// empty line and the ">" prompt; bytes are printed "41 0C 1A F8 " with a space
// after each byte; ATZ prints two empty lines before the identification.
var transcript = []step{
	{send: "ATZ\r", want: "ATZ\r\r\rELM327 v1.5\r\r>"},
	{send: "ATE0\r", want: "ATE0\rOK\r\r>"}, // echo goes off after this command
	{send: "ATI\r", want: "ELM327 v1.5\r\r>"},
	{send: "AT@1\r", want: "OBDII to RS232 Interpreter\r\r>"},
	{send: "ATL1\r", want: "OK\r\n\r\n>"},
	{send: "ati\r", want: "ELM327 v1.5\r\n\r\n>"},
	{send: "AT L0\r\n", want: "OK\r\r>"}, // the LF after CR is ignored
	{send: "ATSP0\r", want: "OK\r\r>"},
	{send: "ATDP\r", want: "AUTO\r\r>"},
	{send: "ATDPN\r", want: "A0\r\r>"},
	// 41 00 9E 3F 80 03: 1001 1110 | 0011 1111 | 1000 0000 | 0000 0011 =
	// 01 04-07 0B-10 11 1F, and 20.
	{send: "0100\r", want: "SEARCHING...\r41 00 9E 3F 80 03 \r\r>"},
	{send: "ATDPN\r", want: "A6\r\r>"},
	{send: "ATDP\r", want: "AUTO, ISO 15765-4 (CAN 11/500)\r\r>"},
	{send: "010C\r", want: "41 0C 1A F8 \r\r>"},
	{send: "\r", want: "41 0C 1A F8 \r\r>"}, // a lone CR repeats the last command
	{send: "01 0d\r", want: "41 0D 32 \r\r>"},
	{send: "0105\r", want: "41 05 7B \r\r>"},
	{send: "0104\r", want: "41 04 66 \r\r>"},
	{send: "010F\r", want: "41 0F 41 \r\r>"},
	{send: "0110\r", want: "41 10 04 D2 \r\r>"},
	{send: "0111\r", want: "41 11 26 \r\r>"},
	{send: "011F\r", want: "41 1F 01 2C \r\r>"},
	{send: "012F\r", want: "41 2F 9F \r\r>"},
	{send: "0142\r", want: "41 42 37 78 \r\r>"},
	{send: "0146\r", want: "41 46 3A \r\r>"},
	{send: "0120\r", want: "41 20 80 02 A0 01 \r\r>"}, // 21 2F 31 33, 40
	{send: "0140\r", want: "41 40 44 00 00 15 \r\r>"}, // 42 46 5C 5E, 60
	{send: "0160\r", want: "41 60 00 00 00 01 \r\r>"}, // 80
	{send: "0180\r", want: "41 80 00 00 00 01 \r\r>"}, // A0
	{send: "01A0\r", want: "41 A0 04 00 00 00 \r\r>"}, // A6
	{send: "01C0\r", want: "NO DATA\r\r>"},
	{send: "0102\r", want: "NO DATA\r\r>"},
	{send: "0108\r", want: "NO DATA\r\r>"}, // one bank
	// The PIDs derived from the state, worked out by hand: no stored code;
	// trim (15−15)/4 = 0 % → 80; long trim 83; MAP 25 + 0.75·40 = 55 kPa → 37;
	// advance 5 + 1726/250 = 11.904° → (11.904+64)·2 = 151.8 → 98; no MIL
	// distance; 1523 + 2.5 = 1525 km → 05 F5; 101 kPa → 65; oil 83 − 3 = 80 °C
	// → 78; 12.34/14.7/745·3600 = 4.0564 L/h → ·20 = 81 → 00 51; odometer
	// (48213 + 2.5)·10 = 482155 → 00 07 5B 6B.
	{send: "0101\r", want: "41 01 00 07 65 00 \r\r>"},
	{send: "0106\r", want: "41 06 80 \r\r>"},
	{send: "0107\r", want: "41 07 83 \r\r>"},
	{send: "010B\r", want: "41 0B 37 \r\r>"},
	{send: "010E\r", want: "41 0E 98 \r\r>"},
	{send: "0121\r", want: "41 21 00 00 \r\r>"},
	{send: "0131\r", want: "41 31 05 F5 \r\r>"},
	{send: "0133\r", want: "41 33 65 \r\r>"},
	{send: "015C\r", want: "41 5C 78 \r\r>"},
	{send: "015E\r", want: "41 5E 00 51 \r\r>"},
	{send: "01A6\r", want: "41 A6 00 07 5B 6B \r\r>"},
	// Mode 09: supported (02 only), the VIN in three frames.
	{send: "0900\r", want: "49 00 40 00 00 00 \r\r>"},
	{send: "0902\r", want: "014\r0: 49 02 01 57 50 30 \r1: 5A 5A 5A 39 39 5A 54 \r2: 53 33 39 30 30 30 30 \r\r>"},
	// Trouble codes: none, then two stored (MIL on, count 2), three (two frames),
	// cleared by Mode 04.
	{send: "03\r", want: "43 00 \r\r>"},
	{send: "03\r", want: "43 02 03 01 04 20 \r\r>", stored: []string{"P0301", "P0420"}},
	{send: "0101\r", want: "41 01 82 07 65 00 \r\r>"},
	{send: "0121\r", want: "41 21 00 0C \r\r>"},
	{send: "03\r", want: "008\r0: 43 03 03 01 04 20 \r1: 01 71 00 00 00 00 00 \r\r>", stored: []string{"P0301", "P0420", "P0171"}},
	{send: "07\r", want: "47 00 \r\r>"},
	{send: "0A\r", want: "4A 00 \r\r>"},
	{send: "04\r", want: "44 \r\r>"},
	{send: "03\r", want: "43 00 \r\r>"},
	{send: "010C1\r", want: "41 0C 1A F8 \r\r>"}, // trailing digit: number of responses
	{send: "010C0D\r", want: "41 0C 1A F8 0D 32 \r\r>"},
	{send: "010C0D05\r", want: "008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
	{send: "ATS0\r", want: "OK\r\r>"},
	{send: "010C\r", want: "410C1AF8\r\r>"},
	{send: "ATH1\r", want: "OK\r\r>"},
	{send: "010C\r", want: "7E804410C1AF8000000\r\r>"},
	{send: "ATS1\r", want: "OK\r\r>"},
	{send: "0105\r", want: "7E8 03 41 05 7B 00 00 00 00 \r\r>"},
	{send: "010C0D05\r", want: "7E8 10 08 41 0C 1A F8 0D 32 \r7E8 21 05 7B 00 00 00 00 00 \r\r>"},
	{send: "0902\r", want: "7E8 10 14 49 02 01 57 50 30 \r7E8 21 5A 5A 5A 39 39 5A 54 \r7E8 22 53 33 39 30 30 30 30 \r\r>"},
	{send: "ATD1\r", want: "OK\r\r>"},
	{send: "010D\r", want: "7E8 8 03 41 0D 32 00 00 00 00 \r\r>"},
	{send: "ATD0\r", want: "OK\r\r>"},
	{send: "ATCRA7E9\r", want: "OK\r\r>"},
	{send: "010D\r", want: "NO DATA\r\r>"},
	{send: "ATCRA\r", want: "OK\r\r>"},
	{send: "ATH0\r", want: "OK\r\r>"},
	{send: "ATCAF0\r", want: "OK\r\r>"},
	{send: "010D\r", want: "03 41 0D 32 00 00 00 00 \r\r>"},
	{send: "ATCAF1\r", want: "OK\r\r>"},
	{send: "ATCFC0\r", want: "OK\r\r>"},
	{send: "0902\r", want: "014\r0: 49 02 01 57 50 30 \r\r>"}, // no flow control: the First Frame only
	{send: "ATCFC1\r", want: "OK\r\r>"},
	{send: "ATR0\r", want: "OK\r\r>"},
	{send: "010D\r", want: "\r>"},
	{send: "ATR1\r", want: "OK\r\r>"},
	{send: "ATIGN\r", want: "ON\r\r>"},
	{send: "ATRV\r", want: "14.2V\r\r>"},
	{send: "ATST62\r", want: "OK\r\r>"},
	{send: "ATAT1\r", want: "OK\r\r>"},
	{send: "ATM0\r", want: "OK\r\r>"},
	{send: "ATSH7E0\r", want: "OK\r\r>"},
	{send: "010D\r", want: "41 0D 32 \r\r>"},
	{send: "ATSH7E1\r", want: "OK\r\r>"},
	{send: "010D\r", want: "NO DATA\r\r>"},
	{send: "ATSH7DF\r", want: "OK\r\r>"},
	{send: "ATCATHAT\r", want: "?\r\r>"},
	{send: "ATE\r", want: "?\r\r>"},
	{send: "AT\r", want: "?\r\r>"},
	{send: "01 GZ\r", want: "?\r\r>"},
	{send: "01 00 00 00 00 00 00 00\r", want: "?\r\r>"},
	{send: "ATSPD\r", want: "?\r\r>"},
	{send: "ATSP6\r", want: "OK\r\r>"},
	{send: "ATDPN\r", want: "6\r\r>"},
	{send: "ATDP\r", want: "ISO 15765-4 (CAN 11/500)\r\r>"},
	{send: "010D\r", want: "41 0D 32 \r\r>"},
	{send: "ATSP3\r", want: "OK\r\r>"},
	{send: "0100\r", want: "BUS INIT: ...ERROR\r\r>"},
	{send: "ATSP5\r", want: "OK\r\r>"},
	{send: "0100\r", want: "BUS INIT: ERROR\r\r>"},
	{send: "ATSP7\r", want: "OK\r\r>"},
	{send: "0100\r", want: "NO DATA\r\r>"},
	{send: "ATSPA6\r", want: "OK\r\r>"},
	{send: "ATDPN\r", want: "A6\r\r>"},
	{send: "ATDP\r", want: "AUTO, ISO 15765-4 (CAN 11/500)\r\r>"},
	{send: "010D\r", want: "SEARCHING...\r41 0D 32 \r\r>"},
	{send: "010D\r", want: "41 0D 32 \r\r>"},
	{send: "010C\r", want: "NO DATA\r\r>", engineOff: true},
	{send: "ATRV\r", want: "12.5V\r\r>"},
	{send: "ATIGN\r", want: "OFF\r\r>"},
	{send: "ATPC\r", want: "OK\r\r>"},
	{send: "0100\r", want: "SEARCHING...\rUNABLE TO CONNECT\r\r>"},
	{send: "ATE1\r", want: "OK\r\r>"},
	{send: "atrv\r", want: "atrv\r12.5V\r\r>"},
	{send: "ATWS\r", want: "ATWS\r\r\rELM327 v1.5\r\r>"},
	{send: "ATD\r", want: "ATD\rOK\r\r>"},
	{send: string(bytes.Repeat([]byte("A"), 200)) + "\r", want: string(bytes.Repeat([]byte("A"), 128)) + "\r?\r\r>"},
}

func TestTranscript(t *testing.T) {
	e := &ecu{}
	st := running
	e.st.Store(&st)
	a := elm327.NewAdapter(e)

	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var samples []elm327.Sample
	done := make(chan error, 1)
	go func() {
		done <- a.Serve(ctx, server, func(s elm327.Sample) {
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		})
	}()

	buf := make([]byte, 4096)
	for i, s := range transcript {
		if s.stored != nil {
			a.SetDTCs(s.stored, nil, nil)
		}
		if s.engineOff {
			off := running
			off.EngineOn, off.RPM, off.SpeedMps, off.BatteryV = false, 0, 0, 12.5
			e.st.Store(&off)
		}
		if _, err := client.Write([]byte(s.send)); err != nil {
			t.Fatalf("step %d: write %q: %v", i, s.send, err)
		}
		var got []byte
		for !bytes.HasSuffix(got, []byte(">")) {
			n, err := client.Read(buf)
			if err != nil {
				t.Fatalf("step %d: read after %q: %v (so far %q)", i, s.send, err, got)
			}
			got = append(got, buf[:n]...)
		}
		if string(got) != s.want {
			t.Errorf("step %d: %q → %q, want %q", i, s.send, got, s.want)
		}
	}
	cancel()
	client.Close()
	if err := <-done; err != nil && err != context.Canceled {
		t.Errorf("Serve: %v", err)
	}

	// Every data reply produced samples with the values the bytes decode to;
	// support bitmaps are not samples.
	mu.Lock()
	defer mu.Unlock()
	want := map[string]float64{
		"41 0C 1A F8": 1726, "41 0D 32": 50, "41 05 7B": 83, "41 04 66": 40, "41 0F 41": 25,
		"41 10 04 D2": 12.34, "41 11 26": 38 * 100.0 / 255, "41 1F 01 2C": 300, "41 2F 9F": 159 * 100.0 / 255,
		"41 42 37 78": 14.2, "41 46 3A": 18,
		"41 01 00 07 65 00": 0, "41 01 82 07 65 00": 1, "41 06 80": 0, "41 07 83": 300.0 / 128, "41 0B 37": 55,
		"41 0E 98": 12, "41 21 00 00": 0, "41 21 00 0C": 12, "41 31 05 F5": 1525, "41 33 65": 101, "41 5C 78": 80,
		"41 5E 00 51": 4.05, "41 A6 00 07 5B 6B": 48215.5,
	}
	seen := map[string]bool{}
	for _, s := range samples {
		v, ok := want[s.Reply]
		if !ok {
			t.Errorf("unexpected sample %+v", s)
			continue
		}
		seen[s.Reply] = true
		if diff := cmp.Diff(v, s.Value); diff != "" || !s.Time.Equal(at) || s.Mode != 1 || (s.Unit == "" && s.PID != 0x01) {
			t.Errorf("sample %+v: want value %v at %v", s, v, at)
		}
	}
	for r := range want {
		if !seen[r] {
			t.Errorf("no sample for reply %s", r)
		}
	}
}

// Decode follows the SAE J1979 formulas on example replies.
func TestDecode(t *testing.T) {
	tests := []struct {
		pid   byte
		data  []byte
		value float64
		unit  string
	}{
		{0x0C, []byte{0x1A, 0xF8}, 1726, "rpm"},
		{0x0C, []byte{0x0F, 0xA0}, 1000, "rpm"},
		{0x0C, []byte{0x14, 0x5F}, 1303.75, "rpm"},
		{0x0D, []byte{0xFF}, 255, "km/h"},
		{0x05, []byte{0x00}, -40, "degC"},
		{0x05, []byte{0xFF}, 215, "degC"},
		{0x04, []byte{0xFF}, 100, "%"},
		{0x10, []byte{0xFF, 0xFF}, 655.35, "g/s"},
		{0x42, []byte{0x30, 0xD4}, 12.5, "V"},
		{0x1F, []byte{0x01, 0x00}, 256, "s"},
	}
	for _, tt := range tests {
		v, unit, ok := elm327.Decode(tt.pid, tt.data)
		if !ok || v != tt.value || unit != tt.unit {
			t.Errorf("Decode(%02X, % X) = %v %q %v, want %v %q", tt.pid, tt.data, v, unit, ok, tt.value, tt.unit)
		}
	}
	if _, _, ok := elm327.Decode(0x0C, []byte{1}); ok {
		t.Error("Decode accepted 1 byte for the 2-byte PID 0C")
	}
	if _, _, ok := elm327.Decode(0x99, []byte{1}); ok {
		t.Error("Decode accepted an unknown PID")
	}
}
