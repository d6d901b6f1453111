package cloud

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// Cursor is a keyset pagination position: the sort key of the last row of a
// page. The next page starts strictly after it. Record lists (positions, OBD
// samples, events, device history) use Time, StreamID and Seq; lists ordered
// by a text key (vehicles, commands, dead letters) use Time and Key.
type Cursor struct {
	Time     time.Time
	StreamID uint64
	Seq      uint64
	Key      string // at most MaxCursorKey bytes
}

// MaxCursorKey bounds Cursor.Key.
const MaxCursorKey = 64

const (
	cursorVersion = 2
	cursorFixed   = 1 + 8 + 8 + 8 // version, time, stream, seq
	cursorCheck   = 4
)

// Encode returns the cursor in its opaque URL-safe form, bound to scope: the
// list it pages through and its filters, e.g. "positions veh-001". A cursor
// used on another list, or edited, or made up, then fails ParseCursor. (The
// check is a truncated SHA-256, not a secret MAC: it catches mistakes and
// forgeries by accident; a cursor grants nothing a request could not ask for
// directly.)
func (c Cursor) Encode(scope string) string {
	b := make([]byte, cursorFixed, cursorFixed+len(c.Key)+cursorCheck)
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(c.Time.UnixMicro()))
	binary.BigEndian.PutUint64(b[9:], c.StreamID)
	binary.BigEndian.PutUint64(b[17:], c.Seq)
	b = append(b, c.Key...)
	sum := cursorSum(scope, b)
	return base64.RawURLEncoding.EncodeToString(append(b, sum[:]...))
}

func cursorSum(scope string, payload []byte) [cursorCheck]byte {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(payload)
	var out [cursorCheck]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ParseCursor reads a cursor made by Encode with the same scope. It returns
// an error with code EINVALID for anything else.
func ParseCursor(s, scope string) (Cursor, error) {
	// Go's base64 decoders skip CR and LF even in Strict mode: a cursor
	// with a line break in it would decode as the one without, a string the
	// API never wrote passing as a "next" value.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") || len(b) < cursorFixed+cursorCheck || len(b) > cursorFixed+MaxCursorKey+cursorCheck || b[0] != cursorVersion {
		return Cursor{}, Errorf(EINVALID, "invalid cursor %q: use the \"next\" value of a previous page", s)
	}
	payload, check := b[:len(b)-cursorCheck], b[len(b)-cursorCheck:]
	if sum := cursorSum(scope, payload); string(sum[:]) != string(check) {
		return Cursor{}, Errorf(EINVALID, "invalid cursor %q: not the \"next\" value of a page of this list with these filters", s)
	}
	return Cursor{
		Time:     time.UnixMicro(int64(binary.BigEndian.Uint64(payload[1:]))).UTC(),
		StreamID: binary.BigEndian.Uint64(payload[9:]),
		Seq:      binary.BigEndian.Uint64(payload[17:]),
		Key:      string(payload[cursorFixed:]),
	}, nil
}
