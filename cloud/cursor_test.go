package cloud_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// Cursors that round-trip, and strings ParseCursor refuses; FuzzParseCursor
// seeds from both.
var (
	cursors = []cloud.Cursor{
		{Time: time.Date(2026, 11, 27, 10, 0, 0, 123_000_000, time.UTC), StreamID: 0xfedcba9876543210, Seq: 12},
		{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), StreamID: 1, Seq: 1<<63 - 1},
	}
	badCursors = []string{"", "x", "not base64!", "AAAA", cloud.Cursor{}.String() + "AA"}
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range cursors {
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
	for _, s := range badCursors {
		_, err := cloud.ParseCursor(s)
		if code := cloud.ErrorCode(err); code != cloud.EINVALID {
			t.Errorf("ParseCursor(%q) code %q (err %v), want EINVALID", s, code, err)
		}
	}
}

// FuzzParseCursor: any string is refused with EINVALID and a zero cursor, or
// gives a cursor in UTC whose String is the input (less the line breaks
// base64 skips) and parses back to the same cursor.
func FuzzParseCursor(f *testing.F) {
	for _, c := range cursors {
		f.Add(c.String())
	}
	for _, s := range badCursors {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := cloud.ParseCursor(s)
		if err != nil {
			if code := cloud.ErrorCode(err); code != cloud.EINVALID || c != (cloud.Cursor{}) {
				t.Fatalf("ParseCursor(%q) = %+v, code %q (err %v); want a zero cursor and EINVALID", s, c, code, err)
			}
			return
		}
		if c.Time.Location() != time.UTC {
			t.Fatalf("ParseCursor(%q): time %v not in UTC", s, c.Time)
		}
		again := c.String()
		if again != strings.NewReplacer("\r", "", "\n", "").Replace(s) {
			t.Fatalf("ParseCursor(%q).String() = %q", s, again)
		}
		c2, err := cloud.ParseCursor(again)
		if err != nil || c2 != c {
			t.Fatalf("ParseCursor(%q) = %+v, %v; want %+v", again, c2, err, c)
		}
	})
}
