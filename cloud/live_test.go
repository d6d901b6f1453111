package cloud_test

import (
	"fmt"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
)

func TestCompareLiveIDs(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0}, {"1-0", "1-1", -1}, {"2-0", "1-99", 1}, {"10-0", "9-0", 1},
		{"1764237600000-0", "1764237600000-12", -1}, {"garbage", "1-0", -1},
	} {
		if got := cloud.CompareLiveIDs(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareLiveIDs(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	for _, bad := range []string{"", "1", "-1", "1-", "1--2", "a-1", "1-2-3", "99999999999999999999-0", " 1-0"} {
		if cloud.ValidLiveID(bad) {
			t.Errorf("ValidLiveID(%q) = true", bad)
		}
	}
}

// FuzzLiveID: an id is valid exactly when it is two decimal numbers that fit
// 64 bits joined by a dash, written as ValidLiveID reads them; a valid id
// compares equal to itself and to its canonical form.
func FuzzLiveID(f *testing.F) {
	for _, s := range []string{"1-0", "1764237600000-12", "", "1--2", "18446744073709551615-1", "01-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !cloud.ValidLiveID(s) {
			return
		}
		var ms, seq uint64
		if n, err := fmt.Sscanf(s, "%d-%d", &ms, &seq); n != 2 || err != nil {
			t.Fatalf("ValidLiveID(%q) but it is not two numbers: %v", s, err)
		}
		canon := fmt.Sprintf("%d-%d", ms, seq)
		if cloud.CompareLiveIDs(s, s) != 0 || cloud.CompareLiveIDs(s, canon) != 0 {
			t.Fatalf("%q does not compare equal to itself or %q", s, canon)
		}
	})
}
