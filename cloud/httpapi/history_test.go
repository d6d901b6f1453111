package httpapi

// White-box: the query parsers are unexported; server_test.go drives them
// through the API.

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// FuzzParseTime: a from or to value is refused with EINVALID, or read as a
// time in UTC; a time in years 0 to 9999 written as the API writes times
// (timeFormat) reads back as the same instant, to the millisecond.
func FuzzParseTime(f *testing.F) {
	// The values of server_test.go, the unescaped '+' among them.
	for _, s := range []string{"2026-11-27T10:00:00Z", "2026-11-27T13:00:00+01:00", "2026-11-27T11:00:00.5Z",
		"2026-11-27T12:00:00 01:00", "2026-11-27T12:00:00.5 01:00", "yesterday", "2026-13-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseTime("from", v)
		if err != nil {
			if code := cloud.ErrorCode(err); code != cloud.EINVALID || !got.IsZero() {
				t.Fatalf("parseTime(%q) = %v, code %q (err %v); want the zero time and EINVALID", v, got, code, err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, not in UTC", v, got)
		}
		if y := got.Year(); y < 0 || y > 9999 {
			return // no RFC 3339 form
		}
		out := got.Format(timeFormat)
		back, err := parseTime("to", out)
		if err != nil || !back.Equal(got.Truncate(time.Millisecond)) {
			t.Fatalf("parseTime(%q) = %v, written %q, read back as %v, %v", v, got, out, back, err)
		}
	})
}

// FuzzParsePID: a pid value is refused with EINVALID, or is two or four hex
// digits that give a PID of Mode 01 or of the mode they name, written back
// the way the API writes a sample's mode and PID.
func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"0C", "0D", "010c", "090C", "XYZ", "C", "+0C", "0x0C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		pid, err := parsePID(v)
		if err != nil {
			if code := cloud.ErrorCode(err); code != cloud.EINVALID || pid != 0 {
				t.Fatalf("parsePID(%q) = %#x, code %q (err %v); want 0 and EINVALID", v, pid, code, err)
			}
			return
		}
		want := strings.ToUpper(v)
		if len(v) == 2 {
			want = "01" + want
		}
		if got := fmt.Sprintf("%02X%02X", pid>>8, pid&0xff); got != want {
			t.Fatalf("parsePID(%q) = %#04x, written back as mode and PID %s", v, pid, got)
		}
	})
}

// FuzzParseVehicleFilter: any online, bbox, near and radius_m are refused
// with EINVALID or give a filter within the ranges the store expects.
func FuzzParseVehicleFilter(f *testing.F) {
	f.Add("true", "7.40,43.72,7.44,43.76", "43.7384,7.4246", "1000")
	f.Add("", "179,-20,-171,-10", "", "")
	f.Add("maybe", "1,2,3", "95,7", "-1")
	f.Add("false", "NaN,0,1,1", "0,0", "Inf")
	f.Fuzz(func(t *testing.T, online, bbox, near, radius string) {
		q := url.Values{}
		for k, v := range map[string]string{"online": online, "bbox": bbox, "near": near, "radius_m": radius} {
			if v != "" {
				q.Set(k, v)
			}
		}
		vf, err := parseVehicleFilter(q)
		if err != nil {
			if cloud.ErrorCode(err) != cloud.EINVALID {
				t.Fatalf("%v: code %q", q, cloud.ErrorCode(err))
			}
			return
		}
		if b := vf.BBox; b != nil && (b.MinLat > b.MaxLat || b.MinLat < -90 || b.MaxLat > 90 || b.MinLon < -180 || b.MaxLon > 180 || b.MaxLon < -180 || b.MinLon > 180) {
			t.Fatalf("%v: bbox %+v", q, b)
		}
		if c := vf.Near; c != nil && (!(c.RadiusM > 0) || c.Lat < -90 || c.Lat > 90 || c.Lon < -180 || c.Lon > 180) {
			t.Fatalf("%v: near %+v", q, c)
		}
	})
}
