package obd

import (
	"errors"
	"fmt"
	"strings"
)

// ErrAdapter is wrapped by every *AdapterError: the adapter answered, but with
// an error or with something that is not the data asked for.
var ErrAdapter = errors.New("adapter error reply")

// AdapterError is an error reply from the adapter, or a reply that carries no
// usable data. Code is a short snake_case name for counters and logs
// ("no_data", "can_error", ...); Text is the adapter's line, or what was
// wrong with the reply.
type AdapterError struct {
	Code string
	Text string
}

func (e *AdapterError) Error() string { return fmt.Sprintf("adapter replied %q (%s)", e.Text, e.Code) }

// Unwrap returns ErrAdapter.
func (e *AdapterError) Unwrap() error { return ErrAdapter }

// Action is what the session does about a failed request. README.md ("OBD
// replies") has the table of which reply gets which action, and why.
type Action uint8

// Actions, from the mildest.
const (
	// Count: the request failed for reasons of its own (the PID is not
	// supported, the engine is off); count it, keep no value, go on.
	Count Action = iota
	// Retry: the reply was lost or mangled in transit (STOPPED, BUS BUSY,
	// DATA ERROR, BUFFER FULL); ask again once, as single-PID requests.
	Retry
	// BackOff: the bus cannot be used now (CAN ERROR, BUS INIT, FB ERROR,
	// UNABLE TO CONNECT); wait with a growing delay before the next request
	// and re-initialise after several in a row.
	BackOff
	// Reinit: the adapter has reset itself or is going to sleep (LV RESET,
	// ERR94, ACT ALERT): its settings are gone; run the initialisation again.
	Reinit
	// Resync: no prompt came back in time; resynchronise on the prompt, and
	// reopen the device after several in a row.
	Resync
)

func (a Action) String() string {
	switch a {
	case Count:
		return "count"
	case Retry:
		return "retry"
	case BackOff:
		return "back off"
	case Reinit:
		return "re-init"
	case Resync:
		return "resync"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// replyErrors are the ELM327's messages (data sheet, "Messages and error
// codes", plus what clones print), each with its counter code and what the
// session does about it. A reply line is that message if it starts with the
// text, or for the bracketed "<DATA ERROR" / "<RX ERROR" contains it (they
// follow bad data on its line), or for a few that clones decorate
// ("**CAN ERROR**") contains it. The first match in this order wins.
var replyErrors = []replyError{
	{"NO DATA", "no_data", Count, false},
	{"?", "unknown_command", Count, false},
	{"ERROR", "unknown_command", Count, false}, // some clones say ERROR for ?
	{"<DATA ERROR", "data_error", Retry, true},
	{"<RX ERROR", "rx_error", Retry, true},
	{"CAN ERROR", "can_error", BackOff, true},
	{"BUS INIT", "bus_init", BackOff, false}, // "BUS INIT: ...ERROR"; "...OK" is not an error
	{"BUS BUSY", "bus_busy", Retry, false},
	{"BUS ERROR", "bus_error", BackOff, false},
	{"FB ERROR", "fb_error", BackOff, false},
	{"DATA ERROR", "data_error", Retry, false},
	{"RX ERROR", "rx_error", Retry, false},
	{"UNABLE TO CONNECT", "unable_to_connect", BackOff, false},
	{"STOPPED", "stopped", Retry, false},
	{"BUFFER FULL", "buffer_full", Retry, false},
	{"LV RESET", "lv_reset", Reinit, false},
	{"ERR94", "err94", Reinit, false},
	{"ERR", "err", Reinit, false}, // the other ERRnn internal errors
	{"ACT ALERT", "act_alert", Reinit, false},
	{"LP ALERT", "lp_alert", Reinit, false},
}

type replyError struct {
	text     string
	code     string
	action   Action
	contains bool
}

// Codes of errors the session makes itself, with their actions.
var ownErrors = map[string]Action{
	"timeout":           Resync,
	"searching":         Retry, // only SEARCHING... before the prompt
	"empty":             Count, // only the prompt
	"garbage":           Count, // lines that are not hex
	"mismatch":          Count, // an answer to another request
	"short_reply":       Count,
	"frame":             Count, // a multi-frame message out of order or cut short
	"negative_response": Count, // 7F: the ECU refused the request
	"bad_vin":           Count,
}

// ActionFor returns what the session does after err: Resync for a timeout, the
// table's action for an *AdapterError, Count for anything else.
func ActionFor(err error) Action {
	if errors.Is(err, ErrTimeout) {
		return Resync
	}
	var ae *AdapterError
	if !errors.As(err, &ae) {
		return Count
	}
	for _, e := range replyErrors {
		if e.code == ae.Code {
			return e.action
		}
	}
	return ownErrors[ae.Code]
}

// Reply is an adapter reply with the prompt, blank lines, the echo of the
// command and the SEARCHING... / BUS INIT: ...OK progress lines taken out.
type Reply struct {
	Lines     []string // what is left, each trimmed
	Searching bool     // the adapter printed SEARCHING... (a protocol search ran)
	// Dropped counts lines marked <DATA ERROR or <RX ERROR that were taken
	// out while other lines remained.
	Dropped int
}

// ParseReply splits the raw bytes the adapter sent for cmd (up to, not
// including, the '>' prompt) into a Reply. If a remaining line is an error
// message it returns an *AdapterError for the first one, and no lines (a line
// marked <DATA ERROR is only dropped when other lines remain); a reply with
// nothing left (only SEARCHING..., or nothing at all) is the error "empty" or
// "searching". Bytes that are not printable ASCII are dropped first (clones
// send NULs around resets; line noise).
func ParseReply(raw []byte, cmd string) (Reply, error) {
	clean := make([]byte, 0, len(raw))
	for _, b := range raw {
		if b == '\r' || b == '\n' || (b >= 0x20 && b <= 0x7e && b != '>') {
			clean = append(clean, b)
		}
	}
	echo := squash(cmd)
	var r Reply
	var marked []string
	for _, l := range strings.FieldsFunc(string(clean), func(c rune) bool { return c == '\r' || c == '\n' }) {
		l = strings.TrimSpace(l)
		up := strings.ToUpper(l)
		switch {
		case l == "":
		case echo != "" && squash(l) == echo:
		case strings.HasPrefix(up, "SEARCHING"):
			r.Searching = true
		case strings.HasPrefix(up, "BUS INIT") && !strings.Contains(up, "ERROR"):
			// "BUS INIT: ...OK": progress of an ISO 9141 / KWP wake-up.
		case strings.Contains(up, "<DATA ERROR") || strings.Contains(up, "<RX ERROR"):
			marked = append(marked, l)
		default:
			r.Lines = append(r.Lines, l)
		}
	}
	for _, l := range r.Lines {
		if e := classify(l); e != nil {
			return Reply{Searching: r.Searching}, e
		}
	}
	if len(marked) > 0 {
		if len(r.Lines) == 0 {
			return Reply{Searching: r.Searching}, classify(marked[0])
		}
		r.Dropped = len(marked)
	}
	if len(r.Lines) == 0 {
		code := "empty"
		if r.Searching {
			code = "searching"
		}
		return Reply{Searching: r.Searching}, &AdapterError{Code: code, Text: strings.TrimSpace(string(clean))}
	}
	return r, nil
}

// classify returns the *AdapterError a reply line is, or nil for a line that
// is not an error message.
func classify(l string) *AdapterError {
	up := strings.ToUpper(l)
	for _, e := range replyErrors {
		if strings.HasPrefix(up, e.text) || (e.contains && strings.Contains(up, e.text)) {
			if e.text == "ERROR" && up != "ERROR" {
				continue
			}
			return &AdapterError{Code: e.code, Text: l}
		}
	}
	return nil
}

// squash upper-cases s and removes its spaces, for comparing echoes.
func squash(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}
