package transport

import (
	"io"
	"testing"
)

// The bytes of a write are counted as unread right after it, though they
// may still be in the terminal's flip buffer: Unplug must not take a reply
// written just before it for one the client has read. (TIOCINQ alone
// reads 0 after about half of such writes.)
func TestUnreadCountsBytesOnTheirWay(t *testing.T) {
	p, err := OpenPTY("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pp := p.cur
	const reply = "7E8 06 41 0C 14 5F\r7E8 03 41 0D 20\r\r>"
	buf := make([]byte, len(reply))
	for i := range 500 {
		if _, err := pp.master.Write([]byte(reply)); err != nil {
			t.Fatal(err)
		}
		n, err := unread(pp.slave)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(reply) {
			t.Fatalf("write %d: %d bytes unread right after writing %d", i, n, len(reply))
		}
		if _, err := io.ReadFull(pp.slave, buf); err != nil {
			t.Fatal(err)
		}
		if n, err := unread(pp.slave); err != nil || n != 0 {
			t.Fatalf("write %d: %d bytes unread (%v) once the client read them all", i, n, err)
		}
	}
}
