package cloud

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Error codes. Callers branch on them with ErrorCode; the HTTP API maps each to
// a status code in one table (httpapi). The values are what the API's error
// envelope carries in "code".
const (
	// ENOTFOUND: the thing asked for does not exist (HTTP 404).
	ENOTFOUND = "ENOTFOUND"
	// EINVALID: the request or the data is wrong and retrying it will not help
	// (HTTP 400; in ingest, a dead letter).
	EINVALID = "EINVALID"
	// EUNAVAILABLE: a dependency (PostgreSQL, Redis, the broker) cannot be
	// reached now; the same call may succeed later (HTTP 503; in ingest, retry
	// and do not acknowledge).
	EUNAVAILABLE = "EUNAVAILABLE"
	// EINTERNAL: a bug or an unexpected failure (HTTP 500). Its details are
	// logged, never shown to API clients.
	EINTERNAL = "EINTERNAL"
	// EUNAUTHORIZED: no token, or one that is unknown, revoked or expired
	// (HTTP 401).
	EUNAUTHORIZED = "EUNAUTHORIZED"
	// EFORBIDDEN: the token's role may not do this (HTTP 403).
	EFORBIDDEN = "EFORBIDDEN"
	// ECONFLICT: the request clashes with the state of the thing it names,
	// e.g. cancelling a command already sent (HTTP 409).
	ECONFLICT = "ECONFLICT"
	// ETOOMANYREQUESTS: the token's rate or stream limit is reached; retry
	// later (HTTP 429).
	ETOOMANYREQUESTS = "ETOOMANYREQUESTS"
	// EMETHOD: the endpoint exists but not with this method (HTTP 405).
	EMETHOD = "EMETHOD"
	// ETIMEOUT: the request took longer than the server allows; ask for
	// less (HTTP 503).
	ETIMEOUT = "ETIMEOUT"
)

// Error is an error with a code from the list above and a message meant for
// the API client or the operator. Err, when set, is the underlying cause; it is
// logged but not shown to API clients.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil && e.Message != e.Err.Error() {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a message formatted as fmt.Sprintf
// does. A %w verb in format also records that argument as the cause (without
// repeating it in the message shown to clients).
func Errorf(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a nil
// err and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, safe to
// show to an API client; for any other error it returns "internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Backoff returns the wait before retry attempt+1 (attempt counts from 1):
// d = lo·2^(attempt−1), at most hi, then jittered to a random wait in
// [d/2, d] so that replicas do not retry in step. It never exceeds hi, so a
// dependency that comes back is tried again within hi.
func Backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt-1, 30)
	if d <= 0 || d > hi {
		d = hi
	}
	if d <= 1 {
		return max(d, 0)
	}
	return d/2 + rand.N(d/2+1)
}
