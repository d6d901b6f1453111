package gps_test

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
)

// decodeFile runs a recording through the line reader and the assembler, as
// the Source does, and returns the fixes and the counters.
func decodeFile(t testing.TB, name string) ([]gps.Epoch, map[string]uint64) {
	t.Helper()
	in, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var c edge.Counters
	a := gps.Assembler{Counters: &c}
	var fixes []gps.Epoch
	for _, l := range readAll(t, in, 0, &c) {
		for _, ep := range a.Feed(l) {
			if ep.Fix {
				fixes = append(fixes, ep)
			}
		}
	}
	if ep, ok := a.Flush(); ok && ep.Fix {
		fixes = append(fixes, ep)
	}
	return fixes, c.Snapshot()
}

// TestRecordings runs each recording of testdata (see README.md there) and
// checks how many fixes it yields, their time span and what was dropped.
// nmea-decode's comparison with gpsd's gpsdecode checks every value.
func TestRecordings(t *testing.T) {
	tests := []struct {
		file        string
		fixes       int
		first, last string
		counters    map[string]uint64 // every counter
	}{
		{"ublox_m8.nmea", 22, "2021-06-14T08:35:55Z", "2021-06-14T08:36:19Z", map[string]uint64{
			"gps.sentences": 262, "gps.fixes": 22, "gps.fixes_by_talker.GN": 22, "gps.no_fix": 6, "gps.no_time": 6, "gps.ignored": 2,
			"gps.ubx_frames": 9, "gps.ubx_bad_checksum": 1}},
		{"sirf_star3.nmea", 22, "2019-11-03T16:12:30Z", "2019-11-03T16:12:51Z", map[string]uint64{
			"gps.sentences": 121, "gps.fixes": 22, "gps.fixes_by_talker.GP": 22, "gps.no_fix": 3, "gps.bad_checksum": 1, "gps.resyncs": 1,
			"gps.overlong": 1, "gps.garbage_bytes": 18}},
		{"mediatek_mt3339.nmea", 36, "2022-04-26T06:49:51.8Z", "2022-04-26T06:49:58.8Z", map[string]uint64{
			"gps.sentences": 275, "gps.fixes": 36, "gps.fixes_by_talker.GP": 36, "gps.no_fix": 4, "gps.ignored": 3}},
		{"quectel_l76.nmea", 19, "2023-09-02T23:59:53Z", "2023-09-03T00:00:11Z", map[string]uint64{
			"gps.sentences": 268, "gps.fixes": 19, "gps.fixes_by_talker.GN": 19, "gps.no_fix": 3}},
		{"garmin_18x.nmea", 15, "2023-03-14T17:45:00Z", "2023-03-14T17:45:14Z", map[string]uint64{
			"gps.sentences": 120, "gps.fixes": 15, "gps.fixes_by_talker.GP": 15, "gps.ignored": 45, "gps.week_rollover_corrected": 15}},
		{"ublox_f9p_rtk.nmea", 24, "2024-02-29T10:00:00Z", "2024-02-29T10:00:23Z", map[string]uint64{
			"gps.sentences": 384, "gps.fixes": 24, "gps.fixes_by_talker.GN": 24}},
		{"trimble_bd990.nmea", 20, "2018-07-12T17:28:14Z", "2018-07-12T17:28:33Z", map[string]uint64{
			"gps.sentences": 80, "gps.fixes": 20, "gps.fixes_by_talker.GP": 20, "gps.bad_checksum": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fixes, counters := decodeFile(t, tt.file)
			if len(fixes) != tt.fixes {
				t.Fatalf("%d fixes, want %d", len(fixes), tt.fixes)
			}
			ts := func(ep gps.Epoch) string { return time.UnixMilli(ep.Position.UnixMs).UTC().Format(time.RFC3339Nano) }
			if got := ts(fixes[0]); got != tt.first {
				t.Errorf("first fix at %s, want %s", got, tt.first)
			}
			if got := ts(fixes[len(fixes)-1]); got != tt.last {
				t.Errorf("last fix at %s, want %s", got, tt.last)
			}
			if diff := cmp.Diff(tt.counters, counters); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
		})
	}
}
