package obd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/obd"
)

// SET_PIDS: from the next wait the source polls exactly the commanded PIDs
// that the vehicle supports; an unknown PID is refused and changes nothing.
func TestSetPIDsByCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar() // supports 05 0A 0C 0D
		src := &obd.Source{Device: &fakeDevice{car: car}, PIDs: []byte{0x0C}, Interval: time.Second, NoVIN: true, DTCInterval: -1}
		out, stop := run(t, src)
		defer stop()
		time.Sleep(5 * time.Second)
		if got := drain(out); countPrefix(got, "sample 010C") == 0 || countPrefix(got, "sample 010D") != 0 {
			t.Fatalf("before the command: %q", got)
		}
		if err := src.SetPIDs([]byte{0xE5}); !errors.Is(err, edge.ErrNotSupported) {
			t.Errorf("SetPIDs(E5) = %v, want ErrNotSupported", err)
		}
		// 0D and 05 are supported; 11 is in the decode table but not in the car's bitmap.
		if err := src.SetPIDs([]byte{0x0D, 0x05, 0x11}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // the current wait ends with the change
		drain(out)
		time.Sleep(10 * time.Second)
		got := drain(out)
		if n := countPrefix(got, "sample 010C"); n != 0 {
			t.Errorf("%d samples of 0C after the command removed it", n)
		}
		for _, pid := range []string{"010D", "0105"} {
			if n := countPrefix(got, "sample "+pid+" "); n < 9 || n > 11 {
				t.Errorf("%d samples of %s in 10 s after the command, want 10", n, pid)
			}
		}
		if n := countPrefix(got, "sample 0111"); n != 0 {
			t.Errorf("%d samples of 11, which the vehicle does not support", n)
		}
	})
}

// READ_DTCS: the running session reads Mode 03 between rounds and answers
// with the codes; the DTC events follow as for a scheduled reading.
func TestReadDTCsByCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		car := newFakeCar()
		car.stored = []string{"0301", "C123"}
		src := &obd.Source{Device: &fakeDevice{car: car}, PIDs: []byte{0x0C}, Interval: time.Second, NoVIN: true, DTCInterval: -1}
		out, stop := run(t, src)
		defer stop()
		time.Sleep(3 * time.Second)
		before := car.count("03")
		codes, err := src.ReadDTCs(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"P0301", "U0123"}; !slices.Equal(codes, want) {
			t.Errorf("ReadDTCs = %q, want %q", codes, want)
		}
		if n := car.count("03") - before; n != 1 {
			t.Errorf("%d Mode 03 requests for one command", n)
		}
		time.Sleep(time.Second)
		got := drain(out)
		if countPrefix(got, "event DTC_SET P0301 stored") != 1 || countPrefix(got, "event DTC_SET U0123 stored") != 1 {
			t.Errorf("events after the command: %q", got)
		}
	})
}

// deadDevice never opens: no session ever runs.
type deadDevice struct{}

func (deadDevice) Open(context.Context) (io.ReadWriteCloser, error) {
	return nil, fmt.Errorf("open /dev/ttyUSB9: no such device: %w", edge.ErrTransient)
}
func (deadDevice) String() string { return "dead" }

// With no adapter session (the device is unplugged) READ_DTCS says so after
// DTCRequestWait instead of hanging or inventing an empty list.
func TestReadDTCsWithoutSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &obd.Source{Device: deadDevice{}, PIDs: []byte{0x0C}, Backoff: edge.Backoff{Min: time.Second, Max: time.Second}}
		_, stop := run(t, src)
		defer stop()
		start := time.Now()
		codes, err := src.ReadDTCs(t.Context())
		if !errors.Is(err, obd.ErrNotConnected) || codes != nil {
			t.Errorf("ReadDTCs = %q, %v; want ErrNotConnected", codes, err)
		}
		if waited := time.Since(start); waited != obd.DTCRequestWait {
			t.Errorf("gave up after %v, want %v", waited, obd.DTCRequestWait)
		}
	})
}
