package obd_test

import (
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// BenchmarkReply measures the whole path of one multi-PID reply with
// headers, from the adapter's bytes to decoded values: ParseReply,
// ParseMessages, Mode01 and the decode table.
func BenchmarkReply(b *testing.B) {
	raw := []byte("7E8 10 0C 41 0C 1A F8 0D 32 \r7E8 21 05 7B 2F 80 11 26 00 \r7E9 03 41 0D 31 00 00 00 00 \r\r")
	req := []byte{0x0C, 0x0D, 0x05, 0x2F, 0x11}
	b.ReportAllocs()
	for b.Loop() {
		r, err := obd.ParseReply(raw, "010C0D052F11")
		if err != nil {
			b.Fatal(err)
		}
		msgs, _, err := obd.ParseMessages(r.Lines, can11)
		if err != nil {
			b.Fatal(err)
		}
		data, err := obd.Mode01(msgs, req)
		if err != nil || len(data) != 5 {
			b.Fatal(data, err)
		}
		for pid, d := range data {
			p, _ := obd.Lookup(pid)
			if _, err := p.Values(d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replies/s")
}
