package elm327_test

import (
	"bytes"
	"testing"

	"github.com/fleetgate/fleetgate/firmware-sim/elm327"
)

// FuzzInput feeds the adapter arbitrary bytes: it must never panic, must end
// every reply with the prompt, and must answer each CR with exactly one prompt.
func FuzzInput(f *testing.F) {
	for _, s := range []string{"ATZ\r", "010C\r", "01 0C 0D 05 0F 10 11\r", "\r\r", "ATSPA\r", "ATSH\r",
		"AT SP A 6\r", "0\r", "ATST\r", "\x00\xff\r", "ATE0\r0902\rATH1\r010C0D05\r", "ATS0\rATL1\r0100\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e := &ecu{}
		st := running
		e.st.Store(&st)
		a := elm327.NewAdapter(e)
		out, _ := a.Input(in)
		crs := bytes.Count(in, []byte("\r"))
		// The prompt follows an end of line; an echoed ">" never does.
		if got := bytes.Count(out, []byte("\r>")) + bytes.Count(out, []byte("\n>")); got != crs {
			t.Fatalf("%q: %d prompts for %d commands: %q", in, got, crs, out)
		}
		if crs > 0 && !bytes.HasSuffix(out, []byte(">")) {
			t.Fatalf("%q: reply does not end with the prompt: %q", in, out)
		}
	})
}
