package mqtt

import "net/url"

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
