package redis

import (
	"encoding/json"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
)

// FuzzDecode: a live update read from the channel or the buffer decodes to
// an update of its kind with its content, or is refused; never a panic. An
// update that decodes encodes back (statuses and events) to JSON that
// decodes to the same content.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"kind":"position","vehicle_id":"v","time":"2026-11-27T10:00:00.000Z","stream_id":"fedcba9876543210","seq":1,"lat":43.7,"lon":7.4}`,
		`{"kind":"status","vehicle_id":"v","status":{"online":true,"time_ms":1764237600000,"received_ms":1764237600000}}`,
		`{"kind":"event","vehicle_id":"v","event":{"stream_id":1,"seq":2,"time_ms":1764237600000,"type":4,"code":"P0301"}}`,
		`{"kind":"event","vehicle_id":"v"}`, `{"kind":"weather"}`, `[]`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		u, err := decode("1-0", []byte(data))
		if err != nil {
			return
		}
		switch u.Kind {
		case cloud.LivePosition:
			if u.Position == nil {
				t.Fatalf("%s: a position update without a position", data)
			}
			return
		case cloud.LiveStatus:
			if u.Status == nil {
				t.Fatalf("%s: a status update without a status", data)
			}
		case cloud.LiveEvent:
			if u.Event == nil {
				t.Fatalf("%s: an event update without an event", data)
			}
		default:
			t.Fatalf("%s: kind %q", data, u.Kind)
		}
		b, err := encode(&u)
		if err != nil {
			t.Fatalf("%s: encode: %v", data, err)
		}
		again, err := decode("1-0", b)
		if err != nil {
			t.Fatalf("%s: decode %s: %v", data, b, err)
		}
		x, _ := json.Marshal(again)
		y, _ := json.Marshal(u)
		if string(x) != string(y) {
			t.Fatalf("%s: round trip\n%s\n%s", data, x, y)
		}
	})
}
