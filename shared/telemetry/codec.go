package telemetry

import (
	"errors"
	"fmt"
	"slices"

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

// The encoder and the decoder are made when the package is loaded, not on
// first use: made inside a testing/synctest bubble, their channels would
// belong to that bubble and fail every other. Their large buffers are
// allocated on first use either way.
var (
	// One encoder, in its lower-memory mode: by default there is one per
	// core, ~1.3 MiB each, idle most of the time on a gateway whose whole
	// budget is 20 MB (docs/BENCHMARKS.md). A batch encodes in tens of
	// microseconds, so callers that share it hardly wait.
	zenc = eager(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // only bad options fail, and these are constant
		}
		e.EncodeAll(nil, nil) // makes its channel of encoders
		return e
	})
	zdec = eager(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxPayloadBytes), zstd.WithDecoderConcurrency(0))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// eager calls f now and returns a function that returns its result.
func eager[T any](f func() T) func() T {
	v := f()
	return func() T { return v }
}

// Header returns the first byte of a protobuf payload (version 1) with the
// given flags.
func Header(flags byte) byte { return version1<<4 | flags }

// Encode frames m as version 1 does: the header byte, then m's protobuf
// encoding, zstd-compressed when compress is set and compression makes it
// smaller. Ack, Status, Command and CommandResult are framed this way in
// every version; a Batch is in version 1 (EncodeBatchV2 writes version 2).
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
	body, err := unframe(p, version1)
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

// unframe checks the header byte of p against the versions wanted and
// returns the body, decompressed.
func unframe(p []byte, versions ...byte) ([]byte, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	h := p[0]
	if v := h >> 4; !slices.Contains(versions, v) {
		return nil, fmt.Errorf("%w: version %d (this message is read in version %v)", ErrVersion, v, versions)
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

// EncodeBatch frames b in protocol version 1: columns, each delta-encoded
// (times delta of delta), then protobuf, then zstd when compress is set and
// it helps. Rows are written in the order given; the caller sorts them if it
// wants better deltas.
func EncodeBatch(b *Batch, compress bool) ([]byte, error) {
	return Encode(BatchToProto(b), compress)
}

// DecodeBatch reads a batch of either version: EncodeBatch's (version 1) or
// EncodeBatchV2's, whose VehicleID is then empty (the topic holds it; see
// DecodeBatchOn). It returns an error wrapping ErrVersion or ErrMalformed,
// never a partial batch.
func DecodeBatch(p []byte) (*Batch, error) {
	body, err := unframe(p, version1, version2)
	if err != nil {
		return nil, err
	}
	var b *Batch
	if p[0]>>4 == version2 {
		b, err = decodeBatch2(body)
	} else {
		var pb telemetrypb.Batch
		if err := proto.Unmarshal(body, &pb); err != nil {
			return nil, fmt.Errorf("%w: %T: %v", ErrMalformed, &pb, err)
		}
		b, err = BatchFromProto(&pb)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// DecodeBatchOn reads a batch received on the topic of vehicle vehicleID: as
// DecodeBatch, with the VehicleID of a version 2 batch set to vehicleID. A
// version 1 batch keeps the vehicle id it carries, for the receiver to
// compare with the topic's.
func DecodeBatchOn(vehicleID string, p []byte) (*Batch, error) {
	b, err := DecodeBatch(p)
	if err == nil && p[0]>>4 == version2 {
		b.VehicleID = vehicleID
	}
	return b, err
}
