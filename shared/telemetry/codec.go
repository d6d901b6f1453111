package telemetry

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// ErrMalformed is wrapped by every decode error caused by the payload itself:
// truncated or corrupt bytes, inconsistent columns, values out of their type.
var ErrMalformed = errors.New("malformed payload")

// ErrVersion is wrapped by decode errors for a payload of a protocol version or
// with flags this decoder does not know.
var ErrVersion = errors.New("unsupported protocol version")

// FlagZstd, in the low nibble of the header byte, says the body is a zstd frame.
const FlagZstd byte = 0x01

// Limits a decoder enforces, so that a hostile payload costs bounded memory.
const (
	MaxPayloadBytes = 16 << 20 // decompressed body
	MaxRows         = 1 << 20  // rows in one block
)

const knownFlags = FlagZstd

var (
	// One encoder, in its lower-memory mode: by default there is one per
	// core, ~1.3 MiB each, idle most of the time on a gateway whose whole
	// budget is 20 MB (docs/BENCHMARKS.md). A batch encodes in tens of
	// microseconds, so callers that share it hardly wait.
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // only bad options fail, and these are constant
		}
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxPayloadBytes), zstd.WithDecoderConcurrency(0))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// Header returns the first byte of a payload of this Version with the given flags.
func Header(flags byte) byte { return Version<<4 | flags }

// Encode frames m: the header byte, then m's protobuf encoding, zstd-compressed
// when compress is set and compression makes it smaller.
func Encode(m proto.Message, compress bool) ([]byte, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	if compress {
		z := zenc().EncodeAll(body, []byte{Header(FlagZstd)})
		if len(z) < len(body)+1 {
			return z, nil
		}
	}
	return append([]byte{Header(0)}, body...), nil
}

// Decode reads a payload made by Encode into m. It returns an error wrapping
// ErrVersion or ErrMalformed when the payload cannot be trusted, and then
// leaves m empty: proto.Unmarshal stops at the first bad field, after those
// before it.
func Decode(p []byte, m proto.Message) error {
	body, err := unframe(p)
	if err == nil {
		if err = proto.Unmarshal(body, m); err != nil {
			err = fmt.Errorf("%w: %T: %v", ErrMalformed, m, err)
		}
	}
	if err != nil {
		proto.Reset(m)
	}
	return err
}

func unframe(p []byte) ([]byte, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	h := p[0]
	if v := h >> 4; v != Version {
		return nil, fmt.Errorf("%w: version %d (this decoder speaks %d)", ErrVersion, v, Version)
	}
	if f := h & 0x0f; f&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrVersion, f)
	}
	body := p[1:]
	if h&FlagZstd != 0 {
		out, err := zdec().DecodeAll(body, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrMalformed, err)
		}
		body = out
	}
	if len(body) > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrMalformed, len(body), MaxPayloadBytes)
	}
	return body, nil
}

// EncodeBatch frames b in columns: each column delta-encoded (times delta of
// delta), then protobuf, then zstd when compress is set and it helps. Rows are
// written in the order given; the caller sorts them if it wants better deltas.
func EncodeBatch(b *Batch, compress bool) ([]byte, error) {
	return Encode(BatchToProto(b), compress)
}

// DecodeBatch reverses EncodeBatch. It returns an error wrapping ErrVersion or
// ErrMalformed, never a partial batch.
func DecodeBatch(p []byte) (*Batch, error) {
	var pb telemetrypb.Batch
	if err := Decode(p, &pb); err != nil {
		return nil, err
	}
	b, err := BatchFromProto(&pb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}
