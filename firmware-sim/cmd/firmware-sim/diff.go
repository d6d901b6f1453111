package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/firmware-sim/truth"
)

// toSlack is how far past now the API window of a vehicle runs: OBD
// samples carry the agent's clock, which may be a little ahead of this one.
const toSlack = time.Minute

// diffReport is what firmware-sim diff found; --json prints it as it is.
type diffReport struct {
	Truth    string          `json:"truth"`
	API      string          `json:"api"`
	Match    bool            `json:"match"`
	Vehicles []vehicleReport `json:"vehicles"`
}

// vehicleReport is the comparison of one vehicle.
type vehicleReport struct {
	ID    string `json:"id"`
	File  string `json:"file"`  // the truth file its lines came from
	Ended bool   `json:"ended"` // its end line was in the truth
	Known bool   `json:"known"` // the cloud knows the vehicle
	// From and To are the window asked of the API: [From, To).
	From  time.Time  `json:"from"`
	To    time.Time  `json:"to"`
	Fixes truth.Diff `json:"fixes"`
	OBD   truth.Diff `json:"obd"`
	// Trips compares the trips the truth's boundaries make with the
	// cloud's; absent for a truth without boundaries (an older simulator).
	Trips *truth.Diff `json:"trips,omitempty"`
	Match bool        `json:"match"`
}

const diffHelp = `Usage: firmware-sim diff --truth FILE|DIR --api URL [--token TOKEN] [--vehicle ID]... [--json] [--trip-* ...]

Compares what the cloud stored with the ground truth of a run: for each
vehicle of the truth (or each --vehicle), reads its positions and OBD samples
through the cloud's HTTP API, page by page, and checks that every fix of the
truth is stored exactly once (the time to the millisecond, the coordinates
within 1e-6 degrees) and every OBD sample exactly once, PID by PID, in order
and with its value. Counts what is missing, duplicated, unexpected (stored,
not in the truth) and mismatched, with a few examples of each.

Trips: the truth's ignition lines make the trips (an engine-off stop of
--trip-stop or more ends one; a run shorter than --trip-min-distance is
none: give the cloud's TRIP_STOP_DURATION and TRIP_MIN_DISTANCE if they are
not the defaults); each must be stored once, its start and end within
--trip-tolerance, its distance within --trip-distance-tolerance of what the
model drove.

--truth is the file of "firmware-sim run --truth", or the directory of
--truth-dir (every *.jsonl in it). The API window of a vehicle runs from the
first time of its truth to its last or now, whichever is later, plus a
minute (OBD samples carry the agent's clock, not simulated time); --from and
--to replace it. Use a fresh --id-prefix per run: another run's records of
the same vehicle in the window count as unexpected. The API needs a token
of role viewer or above: --token, or $FLEETGATE_API_TOKEN (cloud-server token
create makes one).

Prints a table per vehicle and a one-line verdict, or with --json one JSON
document. Exit status: 0 everything matches, 1 something differs, 2 bad
usage, a truth file that cannot be read (its name and line are given), or an
API that cannot be reached or answers with an error (its URL and the status).
`

func diffCmd(args []string, stdout, stderr io.Writer) int {
	var (
		truthPath, api, from, to, token string
		vehicles                        []string
		asJSON                          bool
	)
	fs := newFlagSet("diff", stderr, diffHelp)
	fs.StringVar(&truthPath, "truth", "", "the ground truth: a file written by run --truth, or a directory written by run --truth-dir")
	fs.StringVar(&api, "api", "", "the cloud's API, e.g. http://127.0.0.1:8000")
	fs.StringVar(&token, "token", os.Getenv(cloudapi.TokenEnv), "an API token of role viewer or above (cloud-server token create); default $"+cloudapi.TokenEnv)
	fs.Func("vehicle", "compare this vehicle only (repeat for more); default every vehicle of the truth", func(s string) error {
		vehicles = append(vehicles, s)
		return nil
	})
	fs.BoolVar(&asJSON, "json", false, "print one JSON document instead of the tables")
	fs.StringVar(&from, "from", "", "start of the API window (RFC 3339); default the vehicle's first time in the truth")
	fs.StringVar(&to, "to", "", "end of the API window, exclusive (RFC 3339); default the vehicle's last time in the truth or now, the later, plus a minute")
	rules, tol := truth.DefaultTripRules(), truth.DefaultTripTolerance()
	fs.DurationVar(&rules.StopDuration, "trip-stop", rules.StopDuration, "an engine-off stop this long ends a trip (the cloud's TRIP_STOP_DURATION)")
	fs.Float64Var(&rules.MinDistance, "trip-min-distance", rules.MinDistance, "metres under which a run of the engine is no trip (the cloud's TRIP_MIN_DISTANCE)")
	fs.DurationVar(&tol.Time, "trip-tolerance", tol.Time, "how far a stored trip's start and end may be from the truth's")
	fs.Float64Var(&tol.Distance, "trip-distance-tolerance", tol.Distance, "how far (a fraction) a stored trip's distance may be from what the model drove")
	if code, done := parse(fs, args, stdout, 0); done {
		return code
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "firmware-sim diff: "+format+"\n", a...)
		return 2
	}
	if truthPath == "" || api == "" {
		return usage("want --truth FILE|DIR and --api URL (see firmware-sim diff --help)")
	}
	if u, err := url.Parse(api); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage("--api %q: want an http:// or https:// URL, e.g. http://127.0.0.1:8000", api)
	}
	var window [2]time.Time
	for i, v := range []struct{ name, value string }{{"from", from}, {"to", to}} {
		if v.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v.value)
		if err != nil {
			return usage("--%s %q: want an RFC 3339 time such as 2026-11-27T10:00:00Z", v.name, v.value)
		}
		window[i] = t
	}
	if !window[0].IsZero() && !window[1].IsZero() && !window[0].Before(window[1]) {
		return usage("--from %s is not before --to %s", from, to)
	}
	if rules.StopDuration <= 0 || rules.MinDistance < 0 || tol.Time < 0 || !(tol.Distance >= 0) {
		return usage("--trip-stop must be positive; --trip-min-distance, --trip-tolerance and --trip-distance-tolerance not negative")
	}
	all, files, err := readTruthPath(truthPath)
	if err != nil {
		return usage("%v", err)
	}
	ids, err := pickVehicles(all, vehicles)
	if err != nil {
		return usage("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := cloudapi.Client{Base: api, Token: token, HTTP: &http.Client{Timeout: time.Minute}}
	rep := diffReport{Truth: truthPath, API: api, Match: true}
	now := time.Now()
	for _, id := range ids {
		v := all[id]
		vr := vehicleReport{ID: id, File: files[id], Ended: v.Ended, From: window[0], To: window[1]}
		if vr.From.IsZero() {
			vr.From = v.First
		}
		if vr.To.IsZero() {
			vr.To = v.Last.Add(time.Millisecond)
			if now.After(vr.To) {
				vr.To = now
			}
			vr.To = vr.To.Add(toSlack).Truncate(time.Second)
		}
		positions, samples, known, err := storedRecords(ctx, client, id, vr.From, vr.To)
		if err != nil {
			fmt.Fprintf(stderr, "firmware-sim diff: %s: %v\n", id, err)
			return 2
		}
		vr.Known = known
		vr.Fixes = truth.CompareFixes(v.Fixes, positions)
		vr.OBD = truth.CompareOBD(v.OBD, samples)
		vr.Match = vr.Fixes.OK() && vr.OBD.OK()
		if len(v.Ignition) > 0 {
			var trips []cloudapi.Trip
			if known {
				if trips, err = client.Trips(ctx, id, vr.From, vr.To); err != nil {
					fmt.Fprintf(stderr, "firmware-sim diff: %s: %v\n", id, err)
					return 2
				}
			}
			d := truth.CompareTrips(truth.Trips(v, rules), trips, tol)
			vr.Trips = &d
			vr.Match = vr.Match && d.OK()
		}
		rep.Match = rep.Match && vr.Match
		rep.Vehicles = append(rep.Vehicles, vr)
	}

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "firmware-sim diff: %v\n", err)
			return 2
		}
	} else {
		printDiff(stdout, rep)
	}
	if !rep.Match {
		return 1
	}
	return 0
}

// readTruthPath reads a truth file, or every *.jsonl file of a directory,
// and returns the vehicles and the file each came from. A vehicle in two
// files of a directory, or a truth without any vehicle, is an error.
func readTruthPath(path string) (map[string]truth.Vehicle, map[string]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read truth: %w", err)
	}
	paths := []string{path}
	if st.IsDir() {
		if paths, err = filepath.Glob(filepath.Join(path, "*.jsonl")); err != nil {
			return nil, nil, fmt.Errorf("read truth: %w", err)
		}
		if len(paths) == 0 {
			return nil, nil, fmt.Errorf("read truth: %s holds no .jsonl file", path)
		}
	}
	all, files := map[string]truth.Vehicle{}, map[string]string{}
	for _, p := range paths {
		lines, err := truth.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		for id, v := range truth.Vehicles(lines) {
			if other, ok := files[id]; ok {
				return nil, nil, fmt.Errorf("read truth: vehicle %s is in both %s and %s; give one of them", id, other, p)
			}
			all[id], files[id] = v, p
		}
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("read truth: %s holds no vehicle", path)
	}
	return all, files, nil
}

// pickVehicles returns the vehicles to compare, in order: those named, each
// once, or every vehicle of the truth.
func pickVehicles(all map[string]truth.Vehicle, named []string) ([]string, error) {
	var have []string
	for id := range all {
		have = append(have, id)
	}
	slices.Sort(have)
	if len(named) == 0 {
		return have, nil
	}
	var ids []string
	for _, id := range named {
		if _, ok := all[id]; !ok {
			return nil, fmt.Errorf("vehicle %q is not in the truth (it has %s)", id, strings.Join(have, ", "))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// storedRecords returns what the cloud stored of a vehicle in [from, to). A
// vehicle the cloud does not know (a 404 ENOTFOUND for its history, and the
// vehicle list answers without it) has stored nothing: known is false.
func storedRecords(ctx context.Context, c cloudapi.Client, id string, from, to time.Time) (ps []cloudapi.Position, obd []cloudapi.OBDSample, known bool, err error) {
	ps, err = c.Positions(ctx, id, from, to)
	if e, ok := errors.AsType[*cloudapi.Error](err); ok && e.Code == "ENOTFOUND" {
		ids, lerr := c.Vehicles(ctx)
		if lerr == nil && !slices.Contains(ids, id) {
			return nil, nil, false, nil
		}
	}
	if err != nil {
		return nil, nil, false, err
	}
	if obd, err = c.OBD(ctx, id, from, to); err != nil {
		return nil, nil, false, err
	}
	return ps, obd, true, nil
}

// printDiff prints a table per vehicle, with examples of what differs, and
// the verdict.
func printDiff(w io.Writer, rep diffReport) {
	var fixes, samples, trips int
	var differ []string
	for _, v := range rep.Vehicles {
		state := "drive ended"
		if !v.Ended {
			state = "no end line: the drive had not ended, records still on their way count as missing"
		}
		fmt.Fprintf(w, "%s  truth %s (%s), API window %s to %s\n", v.ID, v.File, state, v.From.UTC().Format(truth.TimeFormat), v.To.UTC().Format(truth.TimeFormat))
		if !v.Known {
			fmt.Fprintf(w, "  the cloud does not know %s: it stored nothing of it\n", v.ID)
		}
		rows := []struct {
			name string
			d    truth.Diff
		}{{"fixes", v.Fixes}, {"obd", v.OBD}}
		if v.Trips != nil {
			rows = append(rows, struct {
				name string
				d    truth.Diff
			}{"trips", *v.Trips})
			trips += v.Trips.Truth
		}
		fmt.Fprintf(w, "  %-5s %9s %9s %9s %11s %11s %11s\n", "", "TRUTH", "STORED", "MISSING", "DUPLICATED", "UNEXPECTED", "MISMATCHED")
		for _, r := range rows {
			fmt.Fprintf(w, "  %-5s %9d %9d %9d %11d %11d %11d\n", r.name, r.d.Truth, r.d.Stored, r.d.Missing, r.d.Duplicated, r.d.Unexpected, r.d.Mismatched)
		}
		var what []string
		for _, r := range rows {
			ex := r.d.Examples
			for _, k := range []struct {
				kind string
				n    int
				list []string
			}{{"missing", r.d.Missing, ex.Missing}, {"duplicated", r.d.Duplicated, ex.Duplicated}, {"unexpected", r.d.Unexpected, ex.Unexpected}, {"mismatched", r.d.Mismatched, ex.Mismatched}} {
				if k.n == 0 {
					continue
				}
				what = append(what, fmt.Sprintf("%s %d %s", r.name, k.n, k.kind))
				for _, e := range k.list {
					fmt.Fprintf(w, "  %s: %s\n", k.kind, e)
				}
				if more := k.n - len(k.list); more > 0 {
					fmt.Fprintf(w, "  %s: ... and %d more\n", k.kind, more)
				}
			}
		}
		if len(what) > 0 {
			differ = append(differ, v.ID+" ("+strings.Join(what, ", ")+")")
		}
		fmt.Fprintln(w)
		fixes += v.Fixes.Truth
		samples += v.OBD.Truth
	}
	if rep.Match {
		fmt.Fprintf(w, "match: %s, %d fixes and %d OBD samples, each stored exactly once", plural(len(rep.Vehicles), "vehicle"), fixes, samples)
		if trips > 0 {
			fmt.Fprintf(w, "; %s as driven", plural(trips, "trip"))
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "DIFFERS: %d of %s: %s\n", len(differ), plural(len(rep.Vehicles), "vehicle"), strings.Join(differ, "; "))
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
