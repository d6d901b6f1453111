package mqtt

import (
	"errors"
	"net/url"
	"strings"
)

// redactURL returns raw with any password replaced by "xxxxx", for logs and
// error messages (a broker URL may carry the cloud's credentials). A URL that
// does not parse is replaced whole, since it may still hold a secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable broker URL)"
	}
	return u.Redacted()
}

// hidePassword returns err with any occurrence of raw's password replaced by
// "xxxxx": paho's errors may quote the broker URL (a WebSocket dial does),
// and an error reaches logs and API answers.
func hidePassword(err error, raw string) error {
	u, perr := url.Parse(raw)
	if err == nil || perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}
