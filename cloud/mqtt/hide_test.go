package mqtt

import (
	"errors"
	"testing"
)

// An error that quotes the broker URL (as a WebSocket dial error does)
// loses the password, and keeps the rest.
func TestHidePassword(t *testing.T) {
	url := "wss://fleetgate.cloud:s3cret-pw@broker.example.com:443/mqtt"
	err := hidePassword(errors.New(`dial "wss://fleetgate.cloud:s3cret-pw@broker.example.com:443/mqtt": bad handshake`), url)
	if err.Error() != `dial "wss://fleetgate.cloud:xxxxx@broker.example.com:443/mqtt": bad handshake` {
		t.Errorf("%v", err)
	}
	plain := errors.New("connection lost")
	if hidePassword(plain, url) != plain || hidePassword(plain, "tcp://127.0.0.1:1883") != plain || hidePassword(nil, url) != nil {
		t.Error("an error without the password was changed")
	}
}
