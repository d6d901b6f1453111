package bench

// Sizes of MQTT 3.1.1 control packets on the wire (OASIS MQTT 3.1.1, §2 and
// §3): a fixed header of one byte and the remaining length (1 to 4 bytes,
// 7 bits each), then the variable header and the payload. TCP/IP headers and
// TLS records are not counted; TestWireModel checks these against the bytes
// the agent's MQTT connection counts on a real broker.

// remaining returns the size of a fixed header for a remaining length n.
func fixedHeader(n int) int {
	h := 2
	for n >= 128 {
		n >>= 7
		h++
	}
	return h
}

// PublishBytes is the size of a PUBLISH of payload on topic; QoS 1 and 2 add
// a packet identifier.
func PublishBytes(topic string, payload, qos int) int {
	n := 2 + len(topic) + payload
	if qos > 0 {
		n += 2
	}
	return fixedHeader(n) + n
}

// The packets of a fixed size: PUBACK (answering a QoS 1 PUBLISH), PINGREQ
// and PINGRESP (keepalive), CONNACK, DISCONNECT.
const (
	PubackBytes     = 4
	PingreqBytes    = 2
	PingrespBytes   = 2
	ConnackBytes    = 4
	DisconnectBytes = 2
)

// ConnectBytes is the size of a CONNECT with a client id and a will (topic
// and message), no user name or password.
func ConnectBytes(clientID, willTopic string, willPayload int) int {
	n := 10 + 2 + len(clientID) // "MQTT", level, flags, keepalive
	if willTopic != "" {
		n += 2 + len(willTopic) + 2 + willPayload
	}
	return fixedHeader(n) + n
}

// SubscribeBytes is the size of a SUBSCRIBE to filters, and of its SUBACK.
func SubscribeBytes(filters ...string) (subscribe, suback int) {
	n := 2
	for _, f := range filters {
		n += 2 + len(f) + 1
	}
	m := 2 + len(filters)
	return fixedHeader(n) + n, fixedHeader(m) + m
}
