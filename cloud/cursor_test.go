package cloud_test

import (
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
		{Time: time.Unix(0, 0).UTC(), Key: "veh-001"},
	}
	badCursors = []string{"", "x", "not base64!", "AAAA",
		"gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // a forged one, as tried by hand
		cloud.Cursor{}.Encode("positions veh-001") + "AA",
		cloud.Cursor{Key: string(make([]byte, cloud.MaxCursorKey+1))}.Encode("positions veh-001"),
		// A good cursor with a line break in it (base64 decoders skip them;
		// found by FuzzParseCursor).
		func() string { c := cloud.Cursor{Seq: 7}.Encode("positions veh-001"); return c[:10] + "\n" + c[10:] }(),
		func() string { c := cloud.Cursor{Seq: 7}.Encode("positions veh-001"); return c + "\r" }(),
	}
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range cursors {
		s := c.Encode("positions veh-001")
		got, err := cloud.ParseCursor(s, "positions veh-001")
		if err != nil {
			t.Fatalf("ParseCursor(%q): %v", s, err)
		}
		if !got.Time.Equal(c.Time) || got.StreamID != c.StreamID || got.Seq != c.Seq || got.Key != c.Key {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestParseCursorInvalid(t *testing.T) {
	for _, s := range badCursors {
		_, err := cloud.ParseCursor(s, "positions veh-001")
		if code := cloud.ErrorCode(err); code != cloud.EINVALID {
			t.Errorf("ParseCursor(%q) code %q (err %v), want EINVALID", s, code, err)
		}
	}
}

// A cursor is bound to its list: a page of another vehicle, or of the same
// vehicle with other filters, refuses it.
func TestCursorOfAnotherList(t *testing.T) {
	s := cursors[0].Encode("positions veh-001")
	for _, scope := range []string{"positions veh-002", "obd veh-001", "obd veh-001 pid=010C", ""} {
		if _, err := cloud.ParseCursor(s, scope); cloud.ErrorCode(err) != cloud.EINVALID {
			t.Errorf("cursor of positions veh-001 read for %q: %v, want EINVALID", scope, err)
		}
	}
}

// FuzzParseCursor: any string is refused with EINVALID and a zero cursor, or
// gives a cursor in UTC that encodes back to the input and parses back to
// the same cursor.
func FuzzParseCursor(f *testing.F) {
	for _, c := range cursors {
		f.Add(c.Encode("fuzz"))
	}
	for _, s := range badCursors {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := cloud.ParseCursor(s, "fuzz")
		if err != nil {
			if code := cloud.ErrorCode(err); code != cloud.EINVALID || c != (cloud.Cursor{}) {
				t.Fatalf("ParseCursor(%q) = %+v, code %q (err %v); want a zero cursor and EINVALID", s, c, code, err)
			}
			return
		}
		if c.Time.Location() != time.UTC {
			t.Fatalf("ParseCursor(%q): time %v not in UTC", s, c.Time)
		}
		if again := c.Encode("fuzz"); again != s {
			t.Fatalf("ParseCursor(%q).Encode() = %q", s, again)
		}
	})
}
