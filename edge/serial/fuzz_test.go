package serial_test

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/edge/serial"
)

// FuzzParse: any string gives an error wrapping ErrURL and no device, or a
// device of one known kind: a serial port (an absolute path, or serial:///path)
// whose rate and rates to try lie between MinBaud and MaxBaud, the rate
// first, each once; or a TCP socket (tcp://host:port, port 1 to 65535) with
// no rate. The device's String is the URL it was parsed from.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := serial.Parse(raw)
		if err != nil {
			if d != nil || !errors.Is(err, serial.ErrURL) {
				t.Fatalf("Parse(%q) = %v, %v; want no device and an error wrapping ErrURL", raw, d, err)
			}
			return
		}
		if d.String() != raw {
			t.Fatalf("Parse(%q).String() = %q", raw, d.String())
		}
		bauds := d.Bauds()
		if d.Baud() == 0 { // tcp
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != "tcp" || bauds != nil {
				t.Fatalf("Parse(%q): no rate, but not a tcp URL (bauds %v)", raw, bauds)
			}
			_, port, err := net.SplitHostPort(u.Host)
			if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
				t.Fatalf("Parse(%q): tcp address %q has no port from 1 to 65535", raw, u.Host)
			}
			return
		}
		if u, err := url.Parse(raw); !strings.HasPrefix(raw, "/") && (err != nil || u.Scheme != "serial" || !strings.HasPrefix(u.Path, "/")) {
			t.Fatalf("Parse(%q): a serial port that is neither a path nor serial:///path", raw)
		}
		if len(bauds) == 0 || bauds[0] != d.Baud() {
			t.Fatalf("Parse(%q): rate %d, rates to try %v", raw, d.Baud(), bauds)
		}
		for i, b := range bauds {
			if b < serial.MinBaud || b > serial.MaxBaud || slices.Index(bauds, b) != i {
				t.Fatalf("Parse(%q): rates to try %v", raw, bauds)
			}
		}
	})
}
