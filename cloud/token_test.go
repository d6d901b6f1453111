package cloud_test

import (
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
)

func TestWellFormedToken(t *testing.T) {
	good := cloud.NewTokenSecret()
	rest := strings.TrimPrefix(good, cloud.TokenPrefix)
	for _, tc := range []struct {
		name, s string
		want    bool
	}{
		{"made by NewTokenSecret", good, true},
		{"no prefix", rest, false},
		{"one character short", good[:len(good)-1], false},
		{"one character more", good + "A", false},
		{"not base64url", cloud.TokenPrefix + strings.Repeat("+", len(rest)), false},
		// The decoder skips line breaks: 42 characters and one would decode.
		{"a line break for the last character", good[:len(good)-1] + "\n", false},
		{"a carriage return inside", good[:10] + "\r" + good[11:], false},
		{"empty", "", false},
	} {
		if got := cloud.WellFormedToken(tc.s); got != tc.want {
			t.Errorf("%s: WellFormedToken(%q) = %v, want %v", tc.name, tc.s, got, tc.want)
		}
	}
}
