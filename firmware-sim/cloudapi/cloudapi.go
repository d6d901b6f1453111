// Package cloudapi is a client of the Fleetgate cloud's HTTP JSON API (see
// cloud/README.md), the part the simulator's tools and the end-to-end tests
// read: the vehicles, and each vehicle's positions, OBD samples and trips,
// page by page. It speaks HTTP and JSON only and imports nothing of cloud/.
package cloudapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PageSize is the rows asked per page of history (the API allows 1 to 10000).
const PageSize = 1000

// MaxWindow is the longest time range the API answers at once (31 days);
// Positions and OBD ask longer ranges in parts.
const MaxWindow = 31 * 24 * time.Hour

// TokenEnv is the environment variable the tools read an API token from.
const TokenEnv = "FLEETGATE_API_TOKEN"

// Client is a client of one cloud server's API. The zero value is not usable:
// set Base, and Token for every endpoint but /health and /ready. A Client is
// safe for concurrent use.
type Client struct {
	Base  string       // the server's root URL, e.g. http://127.0.0.1:8000
	Token string       // an API token (cloud-server token create), sent as a bearer token
	HTTP  *http.Client // nil: http.DefaultClient
}

// Position is a position as GET /api/v1/vehicles/{id}/positions returns it.
// Fields the API omits (the receiver did not report them) are nil.
type Position struct {
	StreamID  string    `json:"stream_id"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	AltM      *float64  `json:"alt_m,omitempty"`
	SpeedMps  *float64  `json:"speed_mps,omitempty"`
	CourseDeg *float64  `json:"course_deg,omitempty"`
	Mode      *int      `json:"mode,omitempty"`
	Quality   *int      `json:"quality,omitempty"`
	Sats      *int      `json:"sats,omitempty"`
	HDOP      *float64  `json:"hdop,omitempty"`
}

// OBDSample is a sample as GET /api/v1/vehicles/{id}/obd returns it.
type OBDSample struct {
	StreamID string    `json:"stream_id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	PID      string    `json:"pid"`  // two hex digits, "0C"
	Mode     string    `json:"mode"` // two hex digits, "01"
	Value    float64   `json:"value"`
}

// Trip is a trip as GET /api/v1/vehicles/{id}/trips returns it (the
// fields the simulator's tools compare).
type Trip struct {
	ID        int64     `json:"id"`
	Start     TripPoint `json:"start"`
	End       TripPoint `json:"end"`
	Open      bool      `json:"open"`
	DistanceM float64   `json:"distance_m"`
	Match     struct {
		Status    string   `json:"status"`
		DistanceM *float64 `json:"distance_m"`
	} `json:"match"`
}

// TripPoint is where and when a trip starts or ends; no place without a fix.
type TripPoint struct {
	Time time.Time `json:"time"`
	Lat  *float64  `json:"lat"`
	Lon  *float64  `json:"lon"`
}

// Error is an answer other than 200 OK. Code and Message are those of the
// API's {"error":{"code","message"}} body (ENOTFOUND, EINVALID, EUNAVAILABLE,
// EINTERNAL), empty when the body is not one; Body is the body as received.
type Error struct {
	URL     string
	Status  string // "404 Not Found"
	Code    string
	Message string
	Body    string
}

func (e *Error) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("GET %s: %s: %s: %s", e.URL, e.Status, e.Code, e.Message)
	case strings.TrimSpace(e.Body) != "":
		return fmt.Sprintf("GET %s: %s: %s", e.URL, e.Status, strings.TrimSpace(e.Body))
	}
	return fmt.Sprintf("GET %s: %s", e.URL, e.Status)
}

// MaxRetryAfter bounds how long Get waits when the API says it is asked too
// often (429 with Retry-After) before asking again; it asks at most
// maxRetries times more.
const (
	MaxRetryAfter = 10 * time.Second
	maxRetries    = 5
)

// Get decodes the JSON answer of GET path (with its query) into v. A status
// other than 200 is an *Error; a failed request, or an answer that is not the
// JSON of v, is an error naming the URL. An answer 429 (over the token's
// rate) is retried after its Retry-After.
func (c Client) Get(ctx context.Context, path string, v any) error {
	u := strings.TrimSuffix(c.Base, "/") + path
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err // a *url.Error: it says GET and the URL
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: read the answer: %w", u, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < maxRetries {
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				wait = min(time.Duration(s)*time.Second, MaxRetryAfter)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("GET %s: %w", u, ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			e := &Error{URL: u, Status: resp.Status, Body: string(body)}
			var eb struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(body, &eb) == nil {
				e.Code, e.Message = eb.Error.Code, eb.Error.Message
			}
			return e
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("GET %s: the answer is not the JSON expected: %w", u, err)
		}
		return nil
	}
}

// Vehicles returns the ids of every vehicle the cloud knows, in its order,
// following the list's pages.
func (c Client) Vehicles(ctx context.Context) ([]string, error) {
	var ids []string
	after := ""
	for {
		var list struct {
			Vehicles []struct {
				ID string `json:"id"`
			} `json:"vehicles"`
			Next string `json:"next"`
		}
		q := url.Values{"limit": {fmt.Sprint(PageSize)}}
		if after != "" {
			q.Set("after", after)
		}
		if err := c.Get(ctx, "/api/v1/vehicles?"+q.Encode(), &list); err != nil {
			return nil, err
		}
		for _, v := range list.Vehicles {
			ids = append(ids, v.ID)
		}
		if list.Next == "" || len(list.Vehicles) == 0 {
			return ids, nil
		}
		after = list.Next
	}
}

// Positions returns every position of a vehicle with a time in [from, to),
// following the pagination cursor, in the API's order (time, stream, seq).
// An unknown vehicle is an *Error with Code ENOTFOUND.
func (c Client) Positions(ctx context.Context, vehicle string, from, to time.Time) ([]Position, error) {
	return pages(ctx, c, vehicle, "positions", from, to, func(p *page[Position]) []Position { return p.Positions })
}

// OBD returns every OBD sample of a vehicle with a time in [from, to),
// following the pagination cursor, in the API's order (time, stream, seq).
// An unknown vehicle is an *Error with Code ENOTFOUND.
func (c Client) OBD(ctx context.Context, vehicle string, from, to time.Time) ([]OBDSample, error) {
	return pages(ctx, c, vehicle, "obd", from, to, func(p *page[OBDSample]) []OBDSample { return p.Samples })
}

// Trips returns every trip of a vehicle overlapping [from, to), following
// the pagination cursor, in the API's order (start, id). An unknown vehicle
// is an *Error with Code ENOTFOUND.
func (c Client) Trips(ctx context.Context, vehicle string, from, to time.Time) ([]Trip, error) {
	ts, err := pages(ctx, c, vehicle, "trips", from, to, func(p *page[Trip]) []Trip { return p.Trips })
	if err != nil {
		return nil, err
	}
	// A trip across the edge of two parts of a long range is in both.
	seen := map[int64]bool{}
	return slices.DeleteFunc(ts, func(t Trip) bool {
		dup := seen[t.ID]
		seen[t.ID] = true
		return dup
	}), nil
}

// page is one answer of a paginated history endpoint.
type page[T any] struct {
	Positions []T    `json:"positions"`
	Samples   []T    `json:"samples"`
	Trips     []T    `json:"trips"`
	Next      string `json:"next"`
}

// pages GETs /api/v1/vehicles/{vehicle}/{what} page by page, in parts of
// at most MaxWindow, and returns the rows that rows picks out of each page.
func pages[T any](ctx context.Context, c Client, vehicle, what string, from, to time.Time, rows func(*page[T]) []T) ([]T, error) {
	var all []T
	for start := from; start.Before(to); start = start.Add(MaxWindow) {
		end := start.Add(MaxWindow)
		if end.After(to) {
			end = to
		}
		part, err := window(ctx, c, vehicle, what, start, end, rows)
		if err != nil {
			return nil, err
		}
		all = append(all, part...)
	}
	return all, nil
}

// window is pages over one range of at most MaxWindow.
func window[T any](ctx context.Context, c Client, vehicle, what string, from, to time.Time, rows func(*page[T]) []T) ([]T, error) {
	var all []T
	after := ""
	for {
		q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}, "limit": {fmt.Sprint(PageSize)}}
		if after != "" {
			q.Set("after", after)
		}
		var p page[T]
		if err := c.Get(ctx, "/api/v1/vehicles/"+url.PathEscape(vehicle)+"/"+what+"?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		got := rows(&p)
		all = append(all, got...)
		if p.Next == "" || len(got) == 0 {
			return all, nil
		}
		after = p.Next
	}
}
