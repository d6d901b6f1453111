package elm327

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Profile is an adapter model: what it calls itself and the quirks that set
// it apart from the data sheet. The zero quirks are a genuine ELM327.
type Profile struct {
	Name    string // for flags and logs, e.g. "clone-v2.1"
	Version string // ATZ, ATWS and ATI print it, e.g. "ELM327 v1.5"

	// StickyEcho: ATE0 answers OK but the adapter keeps echoing commands.
	StickyEcho bool
	// StickySpaces: ATS0 answers OK but bytes stay separated by spaces.
	StickySpaces bool
	// NoHeaders: ATH1 answers OK but replies never show headers.
	NoHeaders bool
	// FirstPIDOnly: a multi-PID request is answered for its first PID only.
	FirstPIDOnly bool
	// Unanswered are Mode 01 PIDs the support bitmaps claim but requests
	// for them get NO DATA (left out of multi-PID answers).
	Unanswered []byte
	// SearchAfterNoData: after a NO DATA the adapter forgets the protocol,
	// so the next request prints SEARCHING... again.
	SearchAfterNoData bool
	// BufferFullEvery: every nth Mode 01 reply of more than one line
	// overflows the adapter's small buffer: its first line, then BUFFER
	// FULL. 0 never.
	BufferFullEvery int
	// Delay is how long every reply waits before it is written (Serve only).
	Delay time.Duration
}

// The built-in profiles.
var (
	// Genuine follows the ELM327 data sheet.
	Genuine = Profile{Name: "elm327-v1.5", Version: "ELM327 v1.5"}
	// CloneV15 is the common "v1.5" clone: echo that stays on, two PIDs
	// claimed but never answered, a new protocol search after NO DATA, a
	// buffer that overflows on every fifth long Mode 01 reply.
	CloneV15 = Profile{Name: "clone-v1.5", Version: "ELM327 v1.5", StickyEcho: true,
		Unanswered: []byte{0x08, 0x0A}, SearchAfterNoData: true, BufferFullEvery: 5}
	// CloneV21 is a "v2.1" clone: echo, spaces and headers as they were
	// whatever it is told, multi-PID requests answered for the first PID
	// only, and slow.
	CloneV21 = Profile{Name: "clone-v2.1", Version: "ELM327 v2.1", StickyEcho: true, StickySpaces: true,
		NoHeaders: true, FirstPIDOnly: true, Delay: 120 * time.Millisecond}
)

// Profiles returns the built-in profiles, genuine first.
func Profiles() []Profile { return []Profile{Genuine, CloneV15, CloneV21} }

// ProfileByName returns the built-in profile called name, or an error
// listing the names.
func ProfileByName(name string) (Profile, error) {
	ps := Profiles()
	if i := slices.IndexFunc(ps, func(p Profile) bool { return p.Name == name }); i >= 0 {
		return ps[i], nil
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return Profile{}, fmt.Errorf("unknown adapter profile %q (known: %s)", name, strings.Join(names, ", "))
}
