package gps

import (
	"bufio"
	"io"

	"github.com/fleetgate/fleetgate/edge"
)

// DefaultMaxLine is the longest sentence a LineReader accepts, '$' included and
// the line end excluded. NMEA 0183 allows 82 characters with CR LF; real
// receivers exceed it (long GSV and proprietary sentences), hence the headroom.
const DefaultMaxLine = 120

// MaxUBXPayload is the longest u-blox UBX payload a LineReader skips as a
// frame. The UBX length field allows 65535 bytes, but the messages receivers
// interleave with NMEA are far shorter; a longer "frame" is more likely two
// stray bytes that look like the sync characters, and skipping it would throw
// away seconds of NMEA, so it is read as garbage instead.
const MaxUBXPayload = 8192

// UBX frame layout: sync 0xB5 0x62, class, id, little-endian payload length,
// payload, two checksum bytes.
const (
	ubxSync1  = 0xB5
	ubxSync2  = 0x62
	ubxHeader = 6 // sync, class, id, length
	ubxCk     = 2
)

// LineReader cuts an NMEA byte stream into candidate sentences. A sentence
// starts at '$' (or '!') and ends at CR or LF. What is not a sentence is
// counted and dropped, and reading resumes at the next '$':
//
//   - gps.garbage_bytes: bytes outside a sentence (line noise, a wrong baud rate)
//   - gps.resyncs: a sentence cut short by a new '$'
//   - gps.overlong: a sentence longer than the maximum
//   - gps.binary_lines: a sentence holding a byte that is not printable ASCII
//   - gps.truncated_lines: a sentence cut short by the end of the stream
//   - gps.ubx_frames: a u-blox UBX frame (0xB5 0x62, class, id, length,
//     payload, checksum), skipped whole by its length field so that a '$'
//     inside its payload cannot start a false sentence; gps.ubx_bad_checksum
//     counts those whose Fletcher checksum is wrong (skipped all the same)
//
// A LineReader is not safe for concurrent use.
type LineReader struct {
	r        *bufio.Reader
	max      int
	counters *edge.Counters
	buf      []byte
	in       bool // inside a sentence
}

// NewLineReader returns a LineReader over r for sentences of at most maxLine
// bytes (DefaultMaxLine if maxLine <= 0). counters may be nil.
func NewLineReader(r io.Reader, maxLine int, counters *edge.Counters) *LineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &LineReader{r: bufio.NewReaderSize(r, 4096), max: maxLine, counters: counters, buf: make([]byte, 0, maxLine)}
}

// Next returns the next candidate sentence, without its line end. Checksums
// are not checked here. It returns the reader's error (io.EOF at the end of
// the stream); a sentence not ended by CR or LF before that is dropped.
func (l *LineReader) Next() (string, error) {
	for {
		b, err := l.r.ReadByte()
		if err != nil {
			l.endOfStream()
			return "", err
		}
		if b == ubxSync1 {
			if l.in {
				l.inc("gps.binary_lines")
				l.in = false
			}
			ok, err := l.skipUBX()
			if err != nil {
				return "", err
			}
			if !ok {
				l.inc("gps.garbage_bytes")
			}
			continue
		}
		switch {
		case b == '$' || b == '!':
			if l.in {
				l.inc("gps.resyncs")
			}
			l.in = true
			l.buf = append(l.buf[:0], b)
		case b == '\r' || b == '\n':
			if l.in {
				l.in = false
				if len(l.buf) > 1 {
					return string(l.buf), nil
				}
			}
		case !l.in:
			l.inc("gps.garbage_bytes")
		case b < 0x20 || b > 0x7e:
			l.inc("gps.binary_lines")
			l.in = false
		case len(l.buf) >= l.max:
			l.inc("gps.overlong")
			l.in = false
		default:
			l.buf = append(l.buf, b)
		}
	}
}

// skipUBX is called after a 0xB5. If the bytes that follow are a UBX header
// with a plausible length, it consumes the whole frame and reports true.
// Otherwise it consumes nothing more and reports false, so that a '$' right
// after a stray 0xB5 still starts a sentence.
func (l *LineReader) skipUBX() (bool, error) {
	hdr, err := l.r.Peek(ubxHeader - 1)
	if err != nil {
		if err == io.EOF || err == bufio.ErrBufferFull {
			return false, nil
		}
		return false, err
	}
	n := int(hdr[3]) | int(hdr[4])<<8
	if hdr[0] != ubxSync2 || n > MaxUBXPayload {
		return false, nil
	}
	// Class, id, length and payload are what the checksum covers.
	var ckA, ckB byte
	for i := 1; i < ubxHeader-1; i++ {
		ckA += hdr[i]
		ckB += ckA
	}
	if _, err := l.r.Discard(ubxHeader - 1); err != nil {
		return false, err
	}
	for range n {
		b, err := l.r.ReadByte()
		if err != nil {
			l.inc("gps.truncated_lines")
			return true, err
		}
		ckA += b
		ckB += ckA
	}
	var ck [ubxCk]byte
	if _, err := io.ReadFull(l.r, ck[:]); err != nil {
		l.inc("gps.truncated_lines")
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return true, err
	}
	l.inc("gps.ubx_frames")
	if ck[0] != ckA || ck[1] != ckB {
		l.inc("gps.ubx_bad_checksum")
	}
	return true, nil
}

func (l *LineReader) endOfStream() {
	if l.in {
		l.inc("gps.truncated_lines")
		l.in = false
	}
}

func (l *LineReader) inc(name string) {
	if l.counters != nil {
		l.counters.Inc(name)
	}
}
