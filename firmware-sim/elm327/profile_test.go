package elm327_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
)

func newRunning(opts ...elm327.Option) (*elm327.Adapter, *ecu) {
	e := &ecu{}
	st := running
	e.st.Store(&st)
	return elm327.NewAdapter(e, opts...), e
}

// exchange sends each command and checks the whole reply.
func exchange(t *testing.T, a *elm327.Adapter, steps [][2]string) {
	t.Helper()
	for i, s := range steps {
		out, _ := a.Input([]byte(s[0] + "\r"))
		if string(out) != s[1] {
			t.Errorf("step %d: %q → %q, want %q", i, s[0], out, s[1])
		}
	}
}

func TestProfiles(t *testing.T) {
	t.Run("clone-v1.5", func(t *testing.T) {
		a, _ := newRunning(elm327.WithProfile(elm327.CloneV15))
		exchange(t, a, [][2]string{
			{"ATZ", "ATZ\r\r\rELM327 v1.5\r\r>"},
			{"ATE0", "ATE0\rOK\r\r>"},
			{"ATI", "ATI\rELM327 v1.5\r\r>"}, // the echo stays
			// 08 and 0A claimed too: 1001 1111 | 0111 1111 → 9F 7F.
			{"0100", "0100\rSEARCHING...\r41 00 9F 7F 80 03 \r\r>"},
			{"010A", "010A\rNO DATA\r\r>"},
			{"010C", "010C\rSEARCHING...\r41 0C 1A F8 \r\r>"}, // it forgot the protocol
			{"010C0A0D", "010C0A0D\r41 0C 1A F8 0D 32 \r\r>"},
			// Every fifth Mode 01 reply of several lines overflows.
			{"010C0D05", "010C0D05\r008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
			{"010C0D05", "010C0D05\r008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
			{"0902", "0902\r014\r0: 49 02 01 57 50 30 \r1: 5A 5A 5A 39 39 5A 54 \r2: 53 33 39 30 30 30 30 \r\r>"},
			{"010C0D05", "010C0D05\r008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
			{"010C0D05", "010C0D05\r008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
			{"010C0D05", "010C0D05\r008\rBUFFER FULL\r\r>"},
			{"010C0D05", "010C0D05\r008\r0: 41 0C 1A F8 0D 32 \r1: 05 7B 00 00 00 00 00 \r\r>"},
		})
	})
	t.Run("clone-v2.1", func(t *testing.T) {
		a, _ := newRunning(elm327.WithProfile(elm327.CloneV21))
		exchange(t, a, [][2]string{
			{"ATZ", "ATZ\r\r\rELM327 v2.1\r\r>"},
			{"ATE0", "ATE0\rOK\r\r>"},
			{"ATS0", "ATS0\rOK\r\r>"},
			{"ATH1", "ATH1\rOK\r\r>"},
			{"010C0D05", "010C0D05\rSEARCHING...\r41 0C 1A F8 \r\r>"}, // spaces, no headers, one PID
		})
		if d := a.Profile().Delay; d <= 0 {
			t.Errorf("the v2.1 clone is not slow: delay %v", d)
		}
	})
	for _, p := range elm327.Profiles() {
		got, err := elm327.ProfileByName(p.Name)
		if err != nil || got.Name != p.Name {
			t.Errorf("ProfileByName(%q) = %v, %v", p.Name, got.Name, err)
		}
	}
	if _, err := elm327.ProfileByName("nope"); err == nil || !strings.Contains(err.Error(), "clone-v2.1") {
		t.Errorf("ProfileByName(nope) = %v", err)
	}
}

// The other vehicle protocols, in the formats of the data sheet. Check bytes
// of the legacy lines are the sum of the bytes before them, mod 256, worked
// out by hand.
func TestVehicleProtocols(t *testing.T) {
	t.Run("CAN 29/500", func(t *testing.T) {
		a, _ := newRunning(elm327.WithProtocol(7))
		exchange(t, a, [][2]string{
			{"ATE0", "ATE0\rOK\r\r>"},
			{"010D", "SEARCHING...\r41 0D 32 \r\r>"},
			{"ATDPN", "A7\r\r>"},
			{"ATH1", "OK\r\r>"},
			{"010D", "18 DA F1 10 03 41 0D 32 00 00 00 00 \r\r>"},
			{"0902", "18 DA F1 10 10 14 49 02 01 57 50 30 \r18 DA F1 10 21 5A 5A 5A 39 39 5A 54 \r18 DA F1 10 22 53 33 39 30 30 30 30 \r\r>"},
			{"ATS0", "OK\r\r>"},
			{"010D", "18DAF11003410D3200000000\r\r>"},
		})
	})
	t.Run("ISO 9141-2", func(t *testing.T) {
		a, _ := newRunning(elm327.WithProtocol(3),
			elm327.WithDTCs([]string{"P0301", "P0302", "P0171", "C1234"}, nil, nil))
		exchange(t, a, [][2]string{
			{"ATE0", "ATE0\rOK\r\r>"},
			{"0100", "SEARCHING...\rBUS INIT: ...OK\r41 00 9E 3F 80 03 \r\r>"},
			{"ATDP", "AUTO, ISO 9141-2\r\r>"},
			{"ATH1", "OK\r\r>"},
			// 48+6B+10+41+0D+32 = 0x143 → 43.
			{"010D", "48 6B 10 41 0D 32 43 \r\r>"},
			{"010C0D", "48 6B 10 41 0C 1A F8 22 \r48 6B 10 41 0D 32 43 \r\r>"},
			{"0902", "48 6B 10 49 02 01 00 00 00 57 66 \r48 6B 10 49 02 02 50 30 5A 5A 44 \r48 6B 10 49 02 03 5A 39 39 5A 37 \r" +
				"48 6B 10 49 02 04 54 53 33 39 25 \r48 6B 10 49 02 05 30 30 30 30 D3 \r\r>"},
			{"03", "48 6B 10 43 03 01 03 02 01 71 81 \r48 6B 10 43 52 34 00 00 00 00 8C \r\r>"},
			{"ATH0", "OK\r\r>"},
			{"07", "47 00 00 00 00 00 00 \r\r>"},
		})
	})
	t.Run("ISO 14230-4 KWP fast", func(t *testing.T) {
		a, _ := newRunning(elm327.WithProtocol(5))
		exchange(t, a, [][2]string{
			{"ATE0", "ATE0\rOK\r\r>"}, {"ATH1", "OK\r\r>"},
			// 83+F1+10+41+0D+32 = 0x204 → 04.
			{"010D", "SEARCHING...\rBUS INIT: ...OK\r83 F1 10 41 0D 32 04 \r\r>"},
		})
	})
	t.Run("engine off", func(t *testing.T) {
		a, e := newRunning(elm327.WithProtocol(3))
		off := running
		off.EngineOn = false
		e.st.Store(&off)
		exchange(t, a, [][2]string{
			{"ATE0", "ATE0\rOK\r\r>"},
			{"0100", "SEARCHING...\rUNABLE TO CONNECT\r\r>"},
			{"ATSP3", "OK\r\r>"},
			{"0100", "BUS INIT: ...ERROR\r\r>"},
			{"ATSP6", "OK\r\r>"},
			{"0100", "CAN ERROR\r\r>"},
		})
	})
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault, want string
		samples     int
	}{
		{"NO DATA", "NO DATA\r\r>", 0},
		{"?", "?\r\r>", 0},
		{"CAN ERROR", "CAN ERROR\r\r>", 0},
		{"BUS INIT: ...ERROR", "BUS INIT: ...ERROR\r\r>", 0},
		{"BUS BUSY", "BUS BUSY\r\r>", 0},
		{"FB ERROR", "FB ERROR\r\r>", 0},
		{"DATA ERROR", "DATA ERROR\r\r>", 0},
		{"UNABLE TO CONNECT", "UNABLE TO CONNECT\r\r>", 0},
		{"STOPPED", "STOPPED\r\r>", 0},
		{"ACT ALERT", "ACT ALERT\r\r>", 0},
		{"ERR94", "ERR94\r\r>", 0},
		{"LV RESET", "LV RESET\r\r>", 0},
		{elm327.FaultBuffer, "41 0C 1A F8 0D 32 \rBUFFER FULL\r\r>", 0},
		{elm327.FaultDataError, "41 0C 1A F8 0D 32 <DATA ERROR\r\r>", 0},
		{elm327.FaultSearching, "SEARCHING...\r41 0C 1A F8 0D 32 \r\r>", 2},
		{elm327.FaultECUs, "41 0C 1A F8 0D 32 \r41 0C 00 00 0D 00 \r\r>", 2},
		{elm327.FaultNoPrompt, "41 0C 1A F8 0D 32 \r", 0},
		{elm327.FaultSilence, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			a, _ := newRunning()
			a.Input([]byte("ATE0\r0100\r"))
			a.SetFault(tt.fault, 1)
			if out, _ := a.Input([]byte("ATI\r")); string(out) != "ELM327 v1.5\r\r>" {
				t.Errorf("an AT command during the fault: %q", out)
			}
			out, samples := a.Input([]byte("010C0D\r"))
			if string(out) != tt.want || len(samples) != tt.samples {
				t.Errorf("010C0D → %q with %d samples, want %q with %d", out, len(samples), tt.want, tt.samples)
			}
			if a.FaultsServed() != 1 {
				t.Errorf("FaultsServed = %d", a.FaultsServed())
			}
			// One request only; after the adapter's own resets, the
			// power-up settings: echo on, automatic protocol search.
			want := "41 0D 32 \r\r>"
			if tt.fault == "LV RESET" || tt.fault == "ERR94" {
				want = "010D\rSEARCHING...\r41 0D 32 \r\r>"
			}
			if out, _ := a.Input([]byte("010D\r")); string(out) != want {
				t.Errorf("the request after: %q, want %q", out, want)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		a, _ := newRunning()
		a.Input([]byte("ATE0\r0100\r"))
		a.SetFault(elm327.FaultGarbage, 1)
		out, samples := a.Input([]byte("010D\r"))
		noise, rest, _ := bytes.Cut(out, []byte("\r"))
		if string(rest) != "41 0D 32 \r\r>" || len(samples) != 1 || len(noise) == 0 ||
			bytes.ContainsAny(noise, "0123456789ABCDEFabcdef>\n:") {
			t.Errorf("010D → %q", out)
		}
	})
	t.Run("n requests, then until cleared", func(t *testing.T) {
		a, _ := newRunning()
		a.Input([]byte("ATE0\r0100\r"))
		a.SetFault("CAN ERROR", 2)
		for i, want := range []string{"CAN ERROR\r\r>", "CAN ERROR\r\r>", "41 0D 32 \r\r>"} {
			if out, _ := a.Input([]byte("010D\r")); string(out) != want {
				t.Errorf("request %d: %q", i, out)
			}
		}
		a.SetFault("NO DATA", 0)
		for range 5 {
			if out, _ := a.Input([]byte("010D\r")); string(out) != "NO DATA\r\r>" {
				t.Errorf("until cleared: %q", out)
			}
		}
		a.SetFault("", 0)
		if out, _ := a.Input([]byte("010D\r")); string(out) != "41 0D 32 \r\r>" {
			t.Errorf("cleared: %q", out)
		}
		if a.FaultsServed() != 7 {
			t.Errorf("FaultsServed = %d, want 7", a.FaultsServed())
		}
	})
}

// SetFault and SetDTCs may be called while Serve runs (the race detector
// checks it).
func TestSetFaultWhileServing(t *testing.T) {
	a, _ := newRunning()
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, server, nil) }()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			a.SetFault([]string{"NO DATA", "", "CAN ERROR"}[i%3], i%2)
			a.SetDTCs([]string{"P0301"}, nil, nil)
		}
	})
	buf := make([]byte, 512)
	for range 100 {
		if _, err := client.Write([]byte("010D\r")); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for !bytes.HasSuffix(got, []byte(">")) {
			n, err := client.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
	}
	wg.Wait()
	cancel()
	client.Close()
	if err := <-done; err != nil && err != context.Canceled {
		t.Errorf("Serve: %v", err)
	}
}

// At least the 25 AT commands real clients send are understood: none of the
// listed ones gets "?".
func TestATCommands(t *testing.T) {
	args := map[string]string{"h": "6", "hh": "32", "hhh": "7E0", "hhhhhh": "686AF1", "hhhhhhhh": "18DB33F1",
		"Ah": "A6", "dddd": "1250", "hh..": "300000"}
	a, _ := newRunning()
	a.Input([]byte("ATE0\r"))
	for _, c := range elm327.ATCommands {
		cmd := "AT"
		for _, f := range strings.Fields(c) {
			if v, ok := args[f]; ok {
				f = v
			}
			cmd += f
		}
		out, _ := a.Input([]byte(cmd + "\r"))
		if bytes.HasPrefix(out, []byte("?")) && c != "@2" {
			t.Errorf("%s (%s) → %q", c, cmd, out)
		}
		a.Input([]byte("ATD\rATE0\rATR1\rATSH7DF\r"))
	}
	if n := len(elm327.ATCommands); n < 25 {
		t.Errorf("%d AT commands", n)
	}
}

// WithLatency holds every reply for its latency; WithSearchTime writes
// SEARCHING... at once and the rest of the search's reply that much later;
// WithoutSupply reads 0.0V. (Lower bounds only: a reply is never early.)
func TestLatencySearchTimeAndSupply(t *testing.T) {
	const latency, search = 60 * time.Millisecond, 250 * time.Millisecond
	a, _ := newRunning(elm327.WithLatency(latency), elm327.WithSearchTime(search), elm327.WithoutSupply())
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, server, nil) }()
	defer func() {
		cancel()
		client.Close()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("Serve: %v", err)
		}
	}()
	buf := make([]byte, 512)
	// read returns the next write of the adapter and how long it took.
	read := func(cmd string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		if cmd != "" {
			if _, err := client.Write([]byte(cmd + "\r")); err != nil {
				t.Fatal(err)
			}
		}
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n]), time.Since(start)
	}
	for _, cmd := range []string{"ATE0", "ATRV"} {
		got, took := read(cmd)
		if took < latency {
			t.Errorf("%s answered after %v, before the latency of %v", cmd, took, latency)
		}
		if cmd == "ATRV" && got != "0.0V\r\r>" {
			t.Errorf("ATRV → %q, want 0.0V", got)
		}
	}
	got, took := read("0100")
	if got != "SEARCHING...\r" || took < latency {
		t.Errorf("0100: first %q after %v, want SEARCHING... after the latency", got, took)
	}
	got, took = read("")
	if !strings.HasPrefix(got, "41 00 ") || !strings.HasSuffix(got, ">") || took < search {
		t.Errorf("0100: then %q after %v, want the answer after the search time %v", got, took, search)
	}
	// Found: the next request does not search again.
	if got, _ := read("010D"); !strings.HasPrefix(got, "41 0D") {
		t.Errorf("010D → %q", got)
	}
}
