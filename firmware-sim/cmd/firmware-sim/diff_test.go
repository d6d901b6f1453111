package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// The command is tested against the cloud's real HTTP handler (cloud/httpapi:
// its JSON, its cursor, its error bodies and statuses) over an in-memory
// store; deploy/e2e runs it against the whole chain. The binary itself
// imports nothing of cloud/: only these tests do.

var diffT0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// store is an in-memory cloud.PositionService, OBDService and
// VehicleService that pages as PostgreSQL does: ordered by (time, stream,
// seq), From ≤ time < To, after the cursor, ENOTFOUND for a vehicle it has
// nothing of. fail, when set, is every call's answer.
type store struct {
	positions map[string][]*cloud.Position
	obd       map[string][]*cloud.OBDSample
	fail      error
}

func less(t time.Time, stream, seq uint64, c *cloud.Cursor) bool {
	return cmp.Or(t.Compare(c.Time), cmp.Compare(stream, c.StreamID), cmp.Compare(seq, c.Seq)) <= 0
}

func page[T any](s *store, rows map[string][]*T, id string, from, to time.Time, after *cloud.Cursor, limit int, key func(*T) (time.Time, uint64, uint64)) ([]*T, *cloud.Cursor, error) {
	if s.fail != nil {
		return nil, nil, s.fail
	}
	if _, ok := s.positions[id]; !ok {
		if _, ok := s.obd[id]; !ok {
			return nil, nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", id)
		}
	}
	all := slices.Clone(rows[id])
	slices.SortFunc(all, func(a, b *T) int {
		ta, sa, qa := key(a)
		tb, sb, qb := key(b)
		return cmp.Or(ta.Compare(tb), cmp.Compare(sa, sb), cmp.Compare(qa, qb))
	})
	var out []*T
	for _, r := range all {
		t, stream, seq := key(r)
		if t.Before(from) || !t.Before(to) || (after != nil && less(t, stream, seq, after)) {
			continue
		}
		if len(out) == limit {
			t, stream, seq := key(out[len(out)-1])
			return out, &cloud.Cursor{Time: t, StreamID: stream, Seq: seq}, nil
		}
		out = append(out, r)
	}
	return out, nil, nil
}

func (s *store) FindPositions(_ context.Context, f cloud.PositionFilter) ([]*cloud.Position, *cloud.Cursor, error) {
	return page(s, s.positions, f.VehicleID, f.From, f.To, f.After, f.Limit, func(p *cloud.Position) (time.Time, uint64, uint64) { return p.Time, p.StreamID, p.Seq })
}

func (s *store) EachPosition(ctx context.Context, f cloud.PositionFilter, fn func(*cloud.Position) error) error {
	ps, _, err := s.FindPositions(ctx, cloud.PositionFilter{VehicleID: f.VehicleID, From: f.From, To: f.To, Limit: math.MaxInt})
	for _, p := range ps {
		if err := fn(p); err != nil {
			return err
		}
	}
	return err
}

func (s *store) FindOBDSamples(_ context.Context, f cloud.OBDFilter) ([]*cloud.OBDSample, *cloud.Cursor, error) {
	return page(s, s.obd, f.VehicleID, f.From, f.To, f.After, f.Limit, func(o *cloud.OBDSample) (time.Time, uint64, uint64) { return o.Time, o.StreamID, o.Seq })
}

func (s *store) FindVehicleByID(_ context.Context, id string) (*cloud.Vehicle, error) {
	return nil, cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", id)
}

func (s *store) FindVehicles(_ context.Context, f cloud.VehicleFilter) ([]*cloud.Vehicle, bool, error) {
	if s.fail != nil {
		return nil, false, s.fail
	}
	var vs []*cloud.Vehicle
	for id := range s.positions {
		if id > f.After {
			vs = append(vs, &cloud.Vehicle{ID: id, FirstSeen: diffT0, LastSeen: diffT0})
		}
	}
	slices.SortFunc(vs, func(a, b *cloud.Vehicle) int { return cmp.Compare(a.ID, b.ID) })
	if len(vs) > f.Limit {
		return vs[:f.Limit], true, nil
	}
	return vs, false, nil
}

// diffToken is the one API token the fixture's server knows.
const diffToken = "fgt_ZGlmZi10ZXN0LXRva2VuLWRpZmYtdGVzdC10b2tlbi0"

// tokens is a cloud.TokenService that knows diffToken only.
type tokens struct{}

func (tokens) CreateToken(context.Context, *cloud.Token) error {
	return cloud.Errorf(cloud.EINVALID, "read-only")
}
func (tokens) FindTokenByHash(_ context.Context, h [32]byte) (*cloud.Token, error) {
	if h != cloud.HashToken(diffToken) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "no such token")
	}
	return &cloud.Token{ID: 1, Name: "diff", Role: cloud.RoleViewer}, nil
}
func (tokens) FindTokens(context.Context) ([]*cloud.Token, error) { return nil, nil }
func (tokens) RevokeToken(context.Context, string) error          { return nil }
func (tokens) TouchToken(context.Context, int64, time.Time) error { return nil }

// drive writes the truth of vehicle id — fixes at 1 Hz, an OBD sample of
// 010C and 010D after each — to w, and stores what an agent would have sent
// of it in s: the coordinates in the wire's 1e-7° units, the OBD samples with
// the agent's clock (an hour off simulated time).
func drive(t *testing.T, w *truth.Writer, s *store, id string, fixes int) {
	t.Helper()
	stream := uint64(0xfedcba9876543210)
	var seq uint64
	for i := range fixes {
		at := diffT0.Add(time.Duration(i) * time.Second)
		lat, lon := 43.7384166667+float64(i)*1e-5, 7.4246333333+float64(i)*1e-5
		if err := w.Fix(truth.Fix{Vehicle: id, Time: at, Lat: lat, Lon: lon, SpeedMps: 13.891, Quality: 1, Sats: 9}); err != nil {
			t.Fatal(err)
		}
		seq++
		s.positions[id] = append(s.positions[id], &cloud.Position{VehicleID: id, StreamID: stream, Seq: seq, Time: at,
			Lat: math.Round(lat*1e7) / 1e7, Lon: math.Round(lon*1e7) / 1e7})
		for _, pid := range []byte{0x0C, 0x0D} {
			v := float64(800 + i%7*100 + int(pid))
			if err := w.OBD(truth.OBD{Vehicle: id, Time: at.Add(400 * time.Millisecond), Mode: 1, PID: pid, Value: v}); err != nil {
				t.Fatal(err)
			}
			seq++
			s.obd[id] = append(s.obd[id], &cloud.OBDSample{VehicleID: id, StreamID: stream, Seq: seq, Time: at.Add(time.Hour), PID: 0x0100 | uint16(pid), Value: v})
		}
	}
	if err := w.End(id, diffT0.Add(time.Duration(fixes)*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// cloudFixture is a truth file and a directory of per-vehicle files of two
// vehicles, and the cloud's API over a store holding exactly that truth.
type cloudFixture struct {
	file, dir string
	store     *store
	url       string
	mu        sync.Mutex
	requests  []string // path?after of each history request
}

func newCloudFixture(t *testing.T) *cloudFixture {
	t.Helper()
	dir := t.TempDir()
	f := &cloudFixture{file: filepath.Join(dir, "truth.jsonl"), dir: filepath.Join(dir, "per-vehicle"),
		store: &store{positions: map[string][]*cloud.Position{}, obd: map[string][]*cloud.OBDSample{}}}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	aw := truth.NewWriter(&all)
	// veh-a's 2,500 fixes take three pages of the API.
	for _, v := range []struct {
		id    string
		fixes int
	}{{"veh-a", 2500}, {"veh-b", 40}} {
		var one bytes.Buffer
		drive(t, truth.NewWriter(&one), &store{positions: map[string][]*cloud.Position{}, obd: map[string][]*cloud.OBDSample{}}, v.id, v.fixes)
		drive(t, aw, f.store, v.id, v.fixes)
		if err := os.WriteFile(filepath.Join(f.dir, v.id+".jsonl"), one.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.file, all.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	api := httpapi.NewServer(":0")
	api.Vehicles, api.Positions, api.OBD, api.Tokens = f.store, f.store, f.store, tokens{}
	h := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/positions") || strings.HasSuffix(r.URL.Path, "/obd") {
			f.mu.Lock()
			f.requests = append(f.requests, r.URL.Path+"?after="+r.URL.Query().Get("after"))
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func runDiff(args ...string) (code int, stdout, stderr string) {
	if !slices.Contains(args, "--token") {
		args = append([]string{"--token", diffToken}, args...)
	}
	var out, errb bytes.Buffer
	code = realMain(append([]string{"diff"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDiffMatches(t *testing.T) {
	f := newCloudFixture(t)
	for _, truthPath := range []string{f.file, f.dir} {
		code, out, errs := runDiff("--truth", truthPath, "--api", f.url)
		if code != 0 || errs != "" {
			t.Fatalf("--truth %s: exit %d, stderr %q\n%s", truthPath, code, errs, out)
		}
		for _, want := range []string{
			"veh-a  truth ",
			"drive ended), API window 2025-06-01T10:00:00.000Z to ",
			"\n            TRUTH    STORED   MISSING  DUPLICATED  UNEXPECTED  MISMATCHED\n" +
				"  fixes      2500      2500         0           0           0           0\n" +
				"  obd        5000      5000         0           0           0           0\n\nveh-b  truth ",
			"\nmatch: 2 vehicles, 2540 fixes and 5080 OBD samples, each stored exactly once\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("--truth %s: no %q in\n%s", truthPath, want, out)
			}
		}
	}
	// The pager followed the cursor: three pages of veh-a's positions, the
	// second and third after the previous one's last row (then one empty
	// page per 31 days of the window up to now, the API's longest range).
	var pages []string
	for _, r := range f.requests {
		if strings.HasPrefix(r, "/api/v1/vehicles/veh-a/positions?") {
			pages = append(pages, r)
		}
	}
	var followed []int
	for i, p := range pages {
		if !strings.HasSuffix(p, "?after=") {
			followed = append(followed, i)
		}
	}
	if len(followed) != 4 || followed[0] != 1 || followed[1] != 2 || pages[1] == pages[2] || pages[followed[2]] != pages[1] {
		t.Errorf("veh-a position requests of two runs: %q", pages)
	}
}

func TestDiffFindsDifferences(t *testing.T) {
	f := newCloudFixture(t)
	a := f.store.positions["veh-a"]
	lost := a[1234]
	a = slices.Delete(a, 1234, 1235)
	a = append(a, &cloud.Position{VehicleID: "veh-a", StreamID: a[10].StreamID, Seq: a[10].Seq, Time: a[10].Time, Lat: a[10].Lat, Lon: a[10].Lon})
	a[20] = &cloud.Position{VehicleID: "veh-a", StreamID: a[20].StreamID, Seq: a[20].Seq, Time: a[20].Time, Lat: a[20].Lat + 2e-6, Lon: a[20].Lon}
	f.store.positions["veh-a"] = a
	f.store.obd["veh-b"] = append(f.store.obd["veh-b"], &cloud.OBDSample{VehicleID: "veh-b", StreamID: 1, Seq: 1, Time: diffT0.Add(time.Hour), PID: 0x0105, Value: 90})

	code, out, errs := runDiff("--truth", f.file, "--api", f.url)
	if code != 1 || errs != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errs, out)
	}
	for _, want := range []string{
		"  fixes      2500      2500         1           1           0           1\n",
		"  missing: fix " + lost.Time.Format(truth.TimeFormat) + " 43.7507567,7.4369733 not stored\n",
		"  duplicated: record fedcba9876543210/31 at 2025-06-01T10:00:10.000Z stored again (first at 2025-06-01T10:00:10.000Z)\n",
		"  mismatched: fix 2025-06-01T10:00:20.000Z: stored 43.7386187,7.4248333, truth 43.7386167,7.4248333\n",
		"  obd          80        81         0           0           1           0\n",
		"  unexpected: PID 0105: stored sample 0000000000000001/1 (90 at 2025-06-01T11:00:00.000Z) beyond the truth's 0\n",
		"\nDIFFERS: 2 of 2 vehicles: veh-a (fixes 1 missing, fixes 1 duplicated, fixes 1 mismatched); veh-b (obd 1 unexpected)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}

	code, out, _ = runDiff("--truth", f.dir, "--api", f.url, "--vehicle", "veh-b", "--json")
	var rep diffReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Match || len(rep.Vehicles) != 1 {
		t.Fatalf("--json: %s", out)
	}
	v := rep.Vehicles[0]
	if v.ID != "veh-b" || v.File != filepath.Join(f.dir, "veh-b.jsonl") || !v.Ended || !v.Known || v.Match || v.Fixes.Truth != 40 || !v.Fixes.OK() ||
		v.OBD.Unexpected != 1 || v.OBD.Stored != 81 || len(v.OBD.Examples.Unexpected) != 1 || !v.From.Equal(diffT0) || !v.To.After(time.Now()) {
		t.Errorf("--json: %+v", v)
	}
	for _, key := range []string{`"match": false`, `"unexpected": 1`, `"examples": {`, `"from": "2025-06-01T10:00:00Z"`} {
		if !strings.Contains(out, key) {
			t.Errorf("--json: no %s in\n%s", key, out)
		}
	}

	// A vehicle the cloud never heard of: everything missing, not an error.
	delete(f.store.positions, "veh-b")
	delete(f.store.obd, "veh-b")
	code, out, errs = runDiff("--truth", f.file, "--api", f.url, "--vehicle", "veh-b")
	if code != 1 || errs != "" || !strings.Contains(out, "the cloud does not know veh-b") || !strings.Contains(out, "  fixes        40         0        40") {
		t.Errorf("unknown vehicle: exit %d, stderr %q\n%s", code, errs, out)
	}
}

func TestDiffErrors(t *testing.T) {
	f := newCloudFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"type":"fix","vehicle":"v","time":"2025-06-01T10:00:00.000Z","lat":1,"lon":2}`+"\n{oops}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twice := t.TempDir()
	for _, name := range []string{"veh-a.jsonl", "all.jsonl"} {
		if err := os.WriteFile(filepath.Join(twice, name), []byte(`{"type":"end","vehicle":"veh-a","time":"2025-06-01T10:00:00.000Z"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name   string
		args   []string
		fail   error
		stderr []string
	}{
		{"no --api", []string{"--truth", f.file}, nil, []string{"want --truth FILE|DIR and --api URL"}},
		{"bad --api", []string{"--truth", f.file, "--api", "localhost:8000"}, nil, []string{`--api "localhost:8000": want an http:// or https:// URL`}},
		{"argument", []string{"--truth", f.file, "--api", f.url, "extra"}, nil, []string{"unexpected arguments: [extra]"}},
		{"bad --from", []string{"--truth", f.file, "--api", f.url, "--from", "yesterday"}, nil, []string{`--from "yesterday": want an RFC 3339 time`}},
		{"no such file", []string{"--truth", filepath.Join(f.dir, "nope.jsonl"), "--api", f.url}, nil, []string{"nope.jsonl: no such file"}},
		{"malformed line", []string{"--truth", bad, "--api", f.url}, nil, []string{bad + ":2: invalid character"}},
		{"vehicle in two files", []string{"--truth", twice, "--api", f.url}, nil, []string{"vehicle veh-a is in both " + filepath.Join(twice, "all.jsonl") + " and " + filepath.Join(twice, "veh-a.jsonl")}},
		{"empty directory", []string{"--truth", t.TempDir(), "--api", f.url}, nil, []string{"holds no .jsonl file"}},
		{"vehicle not in the truth", []string{"--truth", f.file, "--api", f.url, "--vehicle", "veh-z"}, nil, []string{`vehicle "veh-z" is not in the truth (it has veh-a, veh-b)`}},
		{"API answers 503", []string{"--truth", f.file, "--api", f.url}, cloud.Errorf(cloud.EUNAVAILABLE, "PostgreSQL is down"),
			[]string{"veh-a: GET " + f.url + "/api/v1/vehicles/veh-a/positions?from=2025-06-01T10%3A00%3A00Z&limit=1000&to=", ": 503 Service Unavailable: EUNAVAILABLE: "}},
		{"API not there", []string{"--truth", f.file, "--api", down.URL}, nil, []string{down.URL + "/api/v1/vehicles/veh-a/positions", "connection refused"}},
		{"not the API", []string{"--truth", f.file, "--api", f.url + "/elsewhere"}, nil, []string{f.url + "/elsewhere/api/v1/vehicles/veh-a/positions", "404 Not Found: ENOTFOUND"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.store.fail = tc.fail
			code, out, errs := runDiff(tc.args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q", code, out)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errs, want) {
					t.Errorf("no %q in stderr %q", want, errs)
				}
			}
		})
	}
	code, out, _ := runDiff("--help")
	if code != 0 || !strings.Contains(out, "Usage: firmware-sim diff --truth FILE|DIR --api URL") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

// tripStore is an in-memory cloud.TripService for the trips endpoint (one
// page, however many).
type tripStore struct{ trips []*cloud.Trip }

func (s *tripStore) FindTrips(_ context.Context, f cloud.TripFilter) ([]*cloud.Trip, *cloud.Cursor, error) {
	var out []*cloud.Trip
	for _, t := range s.trips {
		if t.VehicleID == f.VehicleID && t.Start.Before(f.To) && !t.End.Before(f.From) {
			out = append(out, t)
		}
	}
	return out, nil, nil
}

func (s *tripStore) FindTrip(context.Context, string, int64) (*cloud.Trip, error) {
	return nil, cloud.Errorf(cloud.ENOTFOUND, "no trip")
}

func (s *tripStore) TripTrack(context.Context, string, time.Time, time.Time) ([]*cloud.Position, error) {
	return nil, nil
}

// TestDiffComparesTrips: the truth's ignition lines make two trips; the
// cloud's trips match them within the tolerance, and a trip 5% too short
// or one not stored is reported.
func TestDiffComparesTrips(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "truth.jsonl")
	var buf bytes.Buffer
	w := truth.NewWriter(&buf)
	s := &store{positions: map[string][]*cloud.Position{}, obd: map[string][]*cloud.OBDSample{}}
	drive(t, truth.NewWriter(&bytes.Buffer{}), s, "veh-t", 10) // the cloud knows veh-t
	at := func(m float64) time.Time { return diffT0.Add(time.Duration(m * float64(time.Minute))) }
	for _, b := range []truth.Boundary{
		{Time: at(0), Kind: "ignition", State: "on"}, {Time: at(10), Kind: "ignition", State: "off", DistanceM: 6000},
		{Time: at(20), Kind: "ignition", State: "on", DistanceM: 6000}, {Time: at(30), Kind: "ignition", State: "off", DistanceM: 12000},
	} {
		b.Vehicle = "veh-t"
		if err := w.Boundary(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End("veh-t", at(31)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	trips := &tripStore{trips: []*cloud.Trip{
		{ID: 1, VehicleID: "veh-t", Start: at(0.1), End: at(9.97), DistanceM: 6050},
		{ID: 2, VehicleID: "veh-t", Start: at(20.15), End: at(30), DistanceM: 5950},
	}}
	api := httpapi.NewServer(":0")
	api.Vehicles, api.Positions, api.OBD, api.Trips, api.Tokens = s, s, s, trips, tokens{}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	// The fixes and samples of drive are not in this truth: compare trips only.
	args := []string{"--truth", path, "--api", srv.URL, "--from", at(-1).Format(time.RFC3339), "--to", at(40).Format(time.RFC3339)}

	code, out, _ := runDiff(args...)
	if !strings.Contains(out, "  trips         2         2         0           0           0           0\n") {
		t.Errorf("trips within the tolerance: exit %d\n%s", code, out)
	}
	trips.trips[1].DistanceM = 5700
	code, out, _ = runDiff(args...)
	if code != 1 || !strings.Contains(out, "  trips         2         2         0           0           0           1\n") ||
		!strings.Contains(out, "mismatched: trip 2025-06-01T10:20:00.000Z to 2025-06-01T10:30:00.000Z, 6000 m stored with [distance 5700 m (-5.0%)]") {
		t.Errorf("a trip 5%% short: exit %d\n%s", code, out)
	}
	trips.trips = trips.trips[:1]
	code, out, _ = runDiff(append(args, "--json")...)
	var rep diffReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Vehicles[0].Trips == nil || rep.Vehicles[0].Trips.Missing != 1 {
		t.Errorf("a trip not stored: exit %d %v\n%s", code, err, out)
	}
	if code, _, errs := runDiff(append(args, "--trip-stop", "0s")...); code != 2 || !strings.Contains(errs, "--trip-stop") {
		t.Errorf("--trip-stop 0s: exit %d %q", code, errs)
	}
}
