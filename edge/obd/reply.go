package obd

import (
	"errors"
	"fmt"
	"strings"
)

// ErrAdapter is wrapped by every *AdapterError: the adapter answered, but with
// an error or with something that is not data.
var ErrAdapter = errors.New("adapter error reply")

// AdapterError is an error reply from the adapter. Code is a short snake_case
// name for counters and logs ("no_data", "can_error", ...); Text is the
// adapter's line.
type AdapterError struct {
	Code string
	Text string
}

func (e *AdapterError) Error() string { return fmt.Sprintf("adapter replied %q (%s)", e.Text, e.Code) }

// Unwrap returns ErrAdapter.
func (e *AdapterError) Unwrap() error { return ErrAdapter }

// adapterErrors maps the ELM327's error replies (data sheet, "Messages and
// error codes") to their codes; a reply line starting with the key is that
// error. Longer keys come first where one is a prefix of another.
var adapterErrors = []struct{ prefix, code string }{
	{"NO DATA", "no_data"},
	{"?", "unknown_command"},
	{"CAN ERROR", "can_error"},
	{"UNABLE TO CONNECT", "unable_to_connect"},
	{"BUS INIT", "bus_init"}, // BUS INIT: ...ERROR
	{"BUS BUSY", "bus_busy"},
	{"BUS ERROR", "bus_error"},
	{"FB ERROR", "fb_error"},
	{"<DATA ERROR", "data_error"},
	{"DATA ERROR", "data_error"},
	{"<RX ERROR", "rx_error"},
	{"RX ERROR", "rx_error"},
	{"STOPPED", "stopped"},
	{"BUFFER FULL", "buffer_full"},
	{"LV RESET", "lv_reset"},
	{"ACT ALERT", "act_alert"},
	{"ERR", "err"}, // ERR94 and the other ERRnn internal errors
}

// Reply is an adapter reply with the prompt, blank lines, the echo of the
// command and the SEARCHING... progress line taken out.
type Reply struct {
	Lines     []string // what is left, each trimmed
	Searching bool     // the adapter printed SEARCHING... (a protocol search ran)
}

// ParseReply splits the raw bytes the adapter sent for cmd (up to and
// including the '>' prompt) into a Reply. If a remaining line is an error
// message it returns an *AdapterError for the first one, and no lines; a
// reply with nothing left (only SEARCHING..., or nothing at all) is the
// error "empty". Bytes that are not printable ASCII are dropped first (clones
// send NULs around resets).
func ParseReply(raw []byte, cmd string) (Reply, error) {
	clean := make([]byte, 0, len(raw))
	for _, b := range raw {
		if b == '\r' || b == '\n' || (b >= 0x20 && b <= 0x7e && b != '>') {
			clean = append(clean, b)
		}
	}
	echo := squash(cmd)
	var r Reply
	for _, l := range strings.FieldsFunc(string(clean), func(c rune) bool { return c == '\r' || c == '\n' }) {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case echo != "" && squash(l) == echo:
		case strings.HasPrefix(l, "SEARCHING"):
			r.Searching = true
		default:
			r.Lines = append(r.Lines, l)
		}
	}
	for _, l := range r.Lines {
		up := strings.ToUpper(l)
		for _, e := range adapterErrors {
			// "<DATA ERROR" and "<RX ERROR" follow the bad data on its line.
			if strings.HasPrefix(up, e.prefix) || (e.prefix[0] == '<' && strings.Contains(up, e.prefix)) {
				return Reply{Searching: r.Searching}, &AdapterError{Code: e.code, Text: l}
			}
		}
	}
	if len(r.Lines) == 0 {
		code := "empty"
		if r.Searching {
			code = "searching"
		}
		return r, &AdapterError{Code: code, Text: strings.TrimSpace(string(clean))}
	}
	return r, nil
}

// squash upper-cases s and removes its spaces, for comparing echoes.
func squash(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}
