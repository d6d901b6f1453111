package cloudapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
)

var (
	t0       = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	from, to = t0.Add(-time.Hour), t0.Add(time.Hour)
)

// The pager follows next until a page has none, passing the window and the
// cursor as the API wants them.
func TestPositionsFollowsTheCursor(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/vehicles/veh-001/positions" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		queries = append(queries, q.Get("after"))
		if q.Get("from") != "2026-11-27T09:00:00Z" || q.Get("to") != "2026-11-27T11:00:00Z" || q.Get("limit") != "1000" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"code":"EINVALID","message":"bad window"}}`))
			return
		}
		switch q.Get("after") {
		case "":
			w.Write([]byte(`{"vehicle_id":"veh-001","positions":[{"stream_id":"fedcba9876543210","seq":12,"time":"2026-11-27T10:00:00.000Z","lat":43.7384166,"lon":7.4246333,"speed_mps":13.891,"quality":1}],"next":"AAZhP_YaDAD-3LqYdlQyEAAAAAAAAAAM"}`))
		case "AAZhP_YaDAD-3LqYdlQyEAAAAAAAAAAM":
			w.Write([]byte(`{"vehicle_id":"veh-001","positions":[{"stream_id":"fedcba9876543210","seq":13,"time":"2026-11-27T10:00:01.000Z","lat":43.7384,"lon":7.4246}]}`))
		}
	}))
	defer srv.Close()
	ps, err := cloudapi.Client{Base: srv.URL}.Positions(context.Background(), "veh-001", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Seq != 12 || ps[1].Seq != 13 || !ps[1].Time.Equal(t0.Add(time.Second)) ||
		ps[0].SpeedMps == nil || *ps[0].SpeedMps != 13.891 || ps[1].SpeedMps != nil {
		t.Errorf("positions %+v", ps)
	}
	if strings.Join(queries, ",") != ",AAZhP_YaDAD-3LqYdlQyEAAAAAAAAAAM" {
		t.Errorf("after = %q", queries)
	}
}

func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/vehicles/ghost/obd":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"ENOTFOUND","message":"vehicle \"ghost\" not found"}}`))
		case "/api/v1/vehicles/veh-001/obd":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("upstream down\n"))
		default:
			w.Write([]byte(`<html>not the API</html>`))
		}
	}))
	defer srv.Close()
	c := cloudapi.Client{Base: srv.URL + "/"}
	ctx := context.Background()

	_, err := c.OBD(ctx, "ghost", from, to)
	var e *cloudapi.Error
	if !errors.As(err, &e) || e.Code != "ENOTFOUND" || e.Status != "404 Not Found" ||
		!strings.HasPrefix(err.Error(), "GET "+srv.URL+"/api/v1/vehicles/ghost/obd?from=") ||
		!strings.HasSuffix(err.Error(), `: 404 Not Found: ENOTFOUND: vehicle "ghost" not found`) {
		t.Errorf("unknown vehicle: %v", err)
	}
	if _, err := c.OBD(ctx, "veh-001", from, to); !errors.As(err, &e) || e.Code != "" || !strings.HasSuffix(err.Error(), ": 502 Bad Gateway: upstream down") {
		t.Errorf("a proxy's error: %v", err)
	}
	if _, err := c.Vehicles(ctx); err == nil || !strings.Contains(err.Error(), "GET "+srv.URL+"/api/v1/vehicles?limit=1000: the answer is not the JSON expected") {
		t.Errorf("not the API: %v", err)
	}
	srv.Close()
	if _, err := c.Vehicles(ctx); err == nil || !strings.Contains(err.Error(), srv.URL+"/api/v1/vehicles") {
		t.Errorf("a server that is gone: %v", err)
	}
}

// The client sends its token, waits out a 429's Retry-After and asks a
// range longer than the API's limit in parts.
func TestTokenRetryAfterAndLongRanges(t *testing.T) {
	var windows []string
	refused := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fgt_test" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if !refused {
			refused = true
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		q := r.URL.Query()
		windows = append(windows, q.Get("from")+"/"+q.Get("to"))
		w.Write([]byte(`{"vehicle_id":"veh-001","samples":[]}`))
	}))
	defer srv.Close()
	start := t0.Add(-40 * 24 * time.Hour)
	_, err := cloudapi.Client{Base: srv.URL, Token: "fgt_test"}.OBD(context.Background(), "veh-001", start, t0)
	mid := start.Add(cloudapi.MaxWindow).Format(time.RFC3339Nano)
	want := []string{start.Format(time.RFC3339Nano) + "/" + mid, mid + "/" + t0.Format(time.RFC3339Nano)}
	if err != nil || !refused || strings.Join(windows, " ") != strings.Join(want, " ") {
		t.Errorf("windows %v, %v; want %v", windows, err, want)
	}
}

// Trips reads the trips endpoint's pages, in the API's format.
func TestTripsFollowsTheCursor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/vehicles/veh-001/trips" {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Query().Get("after") {
		case "":
			w.Write([]byte(`{"vehicle_id":"veh-001","trips":[{"id":7,"vehicle_id":"veh-001","start":{"time":"2026-11-27T09:00:00.000Z","lat":43.7,"lon":7.4},
				"end":{"time":"2026-11-27T09:10:01.000Z","lat":43.71,"lon":7.5},"open":false,"duration_s":601,"distance_m":5987.2,
				"match":{"status":"matched","distance_m":6012.4,"confidence":0.87}}],"next":"x"}`))
		default:
			w.Write([]byte(`{"vehicle_id":"veh-001","trips":[{"id":9,"vehicle_id":"veh-001","start":{"time":"2026-11-27T10:00:00.000Z"},
				"end":{"time":"2026-11-27T10:05:00.000Z"},"open":true,"distance_m":12,"match":{"status":"pending"}}]}`))
		}
	}))
	defer srv.Close()
	ts, err := cloudapi.Client{Base: srv.URL}.Trips(context.Background(), "veh-001", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].ID != 7 || ts[0].DistanceM != 5987.2 || *ts[0].Start.Lat != 43.7 || !ts[0].End.Time.Equal(t0.Add(-50*time.Minute+time.Second)) ||
		ts[0].Match.Status != "matched" || *ts[0].Match.DistanceM != 6012.4 || !ts[1].Open || ts[1].Start.Lat != nil {
		t.Errorf("trips %+v", ts)
	}
}
