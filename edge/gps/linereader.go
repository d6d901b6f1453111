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

// LineReader cuts an NMEA byte stream into candidate sentences. A sentence
// starts at '$' (or '!') and ends at CR or LF. Bytes outside a sentence are
// counted as gps.garbage_bytes; a sentence cut short by a new '$' counts as
// gps.resyncs; one longer than MaxLine as gps.overlong, one holding a byte that
// is not printable ASCII as gps.binary_lines: each is dropped, and reading
// resumes at the next '$'. A LineReader is not safe for concurrent use.
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
			if l.in {
				l.inc("gps.truncated_lines")
				l.in = false
			}
			return "", err
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

func (l *LineReader) inc(name string) {
	if l.counters != nil {
		l.counters.Inc(name)
	}
}
