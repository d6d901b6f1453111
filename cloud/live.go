package cloud

import (
	"context"
)

// LiveKind says what a LiveUpdate carries.
type LiveKind string

// The kinds of live updates.
const (
	LivePosition LiveKind = "position" // a vehicle's new latest fix
	LiveStatus   LiveKind = "status"   // a vehicle's new device status
	LiveEvent    LiveKind = "event"    // an event a vehicle recorded
)

// LiveUpdate is one update of the live stream. Exactly one of Position,
// Status and Event is set, as Kind says.
type LiveUpdate struct {
	// ID orders the updates and lets a client resume after one; the live
	// feed assigns it ("" before). IDs compare with CompareLiveIDs.
	ID        string
	Kind      LiveKind
	VehicleID string
	Position  *Position
	Status    *DeviceStatus
	Event     *Event
}

// LiveAnnouncer publishes statuses and events to the live stream. A
// LiveState that implements it gets them from ingest too.
type LiveAnnouncer interface {
	// Announce publishes each update (of kind LiveStatus or LiveEvent). It
	// returns an error with code EUNAVAILABLE when the store cannot be
	// reached; updates already published stay published.
	Announce(ctx context.Context, updates []LiveUpdate) error
}

// LiveFeed is the live stream as replicas share it: updates published by
// whichever replica ingested them reach the subscribers of every replica.
type LiveFeed interface {
	// Listen calls fn with every update published from now on, in order,
	// until ctx is done or the subscription fails (an error with code
	// EUNAVAILABLE). ready is called once the subscription is in place.
	Listen(ctx context.Context, ready func(), fn func(LiveUpdate)) error
	// Replay returns the buffered updates after id, in order. complete is
	// false when updates after id were dropped from the buffer already (or
	// id is not one the feed made): the caller missed some.
	Replay(ctx context.Context, after string) (updates []LiveUpdate, complete bool, err error)
}

// LiveSlots bounds how many live streams a token holds at once, across
// replicas.
type LiveSlots interface {
	// AcquireSlot takes one of max slots of token for the stream id; false
	// when all are held. A slot is released by ReleaseSlot, or lapses when
	// not renewed (by AcquireSlot with the same id) within the lease the
	// implementation documents.
	AcquireSlot(ctx context.Context, token, id string, max int) (bool, error)
	// ReleaseSlot releases the stream's slot.
	ReleaseSlot(ctx context.Context, token, id string) error
}

// CompareLiveIDs compares two update IDs ("<ms>-<seq>", as Redis streams
// make them): -1, 0 or +1. An ID that does not parse sorts first.
func CompareLiveIDs(a, b string) int {
	am, as := splitLiveID(a)
	bm, bs := splitLiveID(b)
	switch {
	case am != bm:
		return cmpU(am, bm)
	default:
		return cmpU(as, bs)
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ValidLiveID reports whether id has the form of an update ID.
func ValidLiveID(id string) bool {
	_, _, ok := parseLiveID(id)
	return ok
}

func splitLiveID(id string) (ms, seq uint64) {
	ms, seq, _ = parseLiveID(id)
	return ms, seq
}

func parseLiveID(id string) (ms, seq uint64, ok bool) {
	var part uint64
	digits, dash := 0, false
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 19 {
				return 0, 0, false
			}
			part = part*10 + uint64(c-'0')
			digits++
		case c == '-' && !dash && digits > 0:
			ms, part, digits, dash = part, 0, 0, true
		default:
			return 0, 0, false
		}
	}
	if !dash || digits == 0 {
		return 0, 0, false
	}
	return ms, part, true
}
