package cloud

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Cursor is a keyset pagination position: the (time, stream_id, seq) of the
// last row of a page. The next page starts strictly after it.
type Cursor struct {
	Time     time.Time
	StreamID uint64
	Seq      uint64
}

const cursorLen = 8 + 8 + 8

// String returns the cursor in its opaque URL-safe form.
func (c Cursor) String() string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[0:], uint64(c.Time.UnixMicro()))
	binary.BigEndian.PutUint64(b[8:], c.StreamID)
	binary.BigEndian.PutUint64(b[16:], c.Seq)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseCursor reads a cursor made by Cursor.String. It returns an error with
// code EINVALID for anything else.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return Cursor{}, Errorf(EINVALID, "invalid cursor %q: use the \"next\" value of a previous page", s)
	}
	return Cursor{
		Time:     time.UnixMicro(int64(binary.BigEndian.Uint64(b[0:]))).UTC(),
		StreamID: binary.BigEndian.Uint64(b[8:]),
		Seq:      binary.BigEndian.Uint64(b[16:]),
	}, nil
}
