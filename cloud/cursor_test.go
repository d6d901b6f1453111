package cloud_test

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cloud.Cursor{
		{Time: time.Date(2026, 11, 27, 10, 0, 0, 123_000_000, time.UTC), StreamID: 0xfedcba9876543210, Seq: 12},
		{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), StreamID: 1, Seq: 1<<63 - 1},
	} {
		got, err := cloud.ParseCursor(c.String())
		if err != nil {
			t.Fatalf("ParseCursor(%q): %v", c.String(), err)
		}
		if !got.Time.Equal(c.Time) || got.StreamID != c.StreamID || got.Seq != c.Seq {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestParseCursorInvalid(t *testing.T) {
	for _, s := range []string{"", "x", "not base64!", "AAAA", cloud.Cursor{}.String() + "AA"} {
		_, err := cloud.ParseCursor(s)
		if code := cloud.ErrorCode(err); code != cloud.EINVALID {
			t.Errorf("ParseCursor(%q) code %q (err %v), want EINVALID", s, code, err)
		}
	}
}
