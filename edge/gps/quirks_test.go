package gps_test

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// decodeWith runs a recording through the line reader and a, as the Source
// does, and returns the fixes.
func decodeWith(t *testing.T, name string, a *gps.Assembler) []telemetry.Position {
	t.Helper()
	in, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var fixes []telemetry.Position
	for _, l := range readAll(t, in, 0, a.Counters) {
		for _, ep := range a.Feed(l) {
			if ep.Fix {
				fixes = append(fixes, ep.Position)
			}
		}
	}
	if ep, ok := a.Flush(); ok && ep.Fix {
		fixes = append(fixes, ep.Position)
	}
	return fixes
}

// seconds returns the fixes' times as seconds past the minute.
func seconds(fixes []telemetry.Position) []int {
	var out []int
	for _, p := range fixes {
		out = append(out, time.UnixMilli(p.UnixMs).UTC().Second())
	}
	return out
}

// minutes returns deg as a receiver writes it, ddmm with dec decimals of
// the minutes, read back, in the units of telemetry.Position.
func minutes(deg float64, dec int) int32 {
	d := math.Floor(deg)
	return telemetry.E7(d + math.Round((deg-d)*60*math.Pow10(dec))/math.Pow10(dec)/60)
}

func span(from, to int) []int {
	var out []int
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// The recordings of receiver quirks (testdata/README.md, "Quirks"): each
// checked for the fixes it must give, their values where the quirk is
// about them, and every counter.
func TestQuirkRecordings(t *testing.T) {
	tests := []struct {
		file     string
		seconds  []int // of the fixes, in order
		counters map[string]uint64
		check    func(t *testing.T, fixes []telemetry.Position)
	}{
		{
			// Item 1: a magnetic variation without E/W, a geoid separation
			// with its unit glued on: odd fields, not lost fixes.
			file: "sloppy_fields.nmea", seconds: span(0, 11),
			counters: map[string]uint64{"gps.sentences": 36, "gps.fixes": 12, "gps.fixes_by_talker.GP": 12,
				"gps.lenient": 24, "gps.odd_fields.rmc_variation_direction": 12, "gps.odd_fields.gga_separation": 12},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for _, p := range fixes {
					// The RMC's speed (0.50 kn = 257 mm/s), course and date; the
					// GGA's altitude; no geoid separation.
					if p.SpeedMmps != 257 || p.CourseCdeg != 5470 || p.Has&telemetry.HasGeoidSep != 0 ||
						p.Has&telemetry.HasAlt == 0 || p.Quality != 1 {
						t.Errorf("fix %+v", p)
					}
				}
				if d := time.UnixMilli(fixes[0].UnixMs).UTC(); d != time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC) {
					t.Errorf("first fix at %v", d)
				}
			},
		},
		{
			// Item 2: IN, then EC, relaying the position; IIHDT not used.
			file: "relayed_talkers.nmea", seconds: span(1, 10),
			counters: map[string]uint64{"gps.sentences": 40, "gps.fixes": 10, "gps.fixes_by_talker.IN": 6,
				"gps.fixes_by_talker.EC": 4, "gps.ignored": 10},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for _, p := range fixes {
					if p.Quality != 2 || p.SatsUsed != 10 || p.SatsInView != 10 || p.SpeedMmps != 2675 {
						t.Errorf("fix %+v", p)
					}
				}
			},
		},
		{
			// Item 3: a GLL 5 ms after its GGA and RMC, sent first: one full
			// fix per second at the GGA's time.
			file: "gll_ms_late.nmea", seconds: span(4, 13),
			counters: map[string]uint64{"gps.sentences": 40, "gps.fixes": 10, "gps.fixes_by_talker.GP": 10},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for _, p := range fixes {
					if p.UnixMs%1000 != 0 || p.Has&telemetry.HasAlt == 0 || p.Has&telemetry.HasSpeed == 0 || p.Mode != 3 {
						t.Errorf("fix %+v", p)
					}
				}
			},
		},
		{
			// Item 3: a GLL stamped a second late between the RMC and GGA of
			// its cycle: one fix per cycle, at the cycle's time and position.
			file: "gll_second_late.nmea", seconds: span(20, 31),
			counters: map[string]uint64{"gps.sentences": 48, "gps.fixes": 12, "gps.fixes_by_talker.GP": 12,
				"gps.skewed_sentences": 1},
			check: func(t *testing.T, fixes []telemetry.Position) {
				// 12 m/s north from 48.1173: 12 / 111320 degrees a second,
				// rounded to 4 decimals of minutes as the receiver wrote it.
				for i, p := range fixes {
					want := minutes(48.1173+float64(i)*12/111320, 4)
					if d := p.LatE7 - want; d < -1 || d > 1 {
						t.Errorf("fix %d at %d: latitude %d, want %d (its own cycle's)", i, p.UnixMs, p.LatE7, want)
					}
				}
			},
		},
		{
			// Item 4: quality 1 with no satellite, 8 and 7 are no fixes; the
			// RMC that repeats the last position loses to the GGA.
			file: "unusable_qualities.nmea", seconds: []int{6, 7, 8, 9, 10, 14, 15, 16},
			counters: map[string]uint64{"gps.sentences": 28, "gps.fixes": 8, "gps.fixes_by_talker.GP": 8,
				"gps.no_fix": 6, "gps.rejected_fixes.no_satellites": 3, "gps.rejected_fixes.simulator": 2,
				"gps.rejected_fixes.manual_input": 1, "gps.lenient": 3, "gps.position_disagreements": 1},
			check: func(t *testing.T, fixes []telemetry.Position) {
				// 10:15:09 is epoch 6: 60 m north of the start; its RMC says 50 m.
				want := minutes(48.1173+60/111320.0, 4)
				if got := fixes[3].LatE7; got != want {
					t.Errorf("10:15:09 latitude %d, want the GGA's %d", got, want)
				}
			},
		},
		{
			// Item 5: satellites before positions, recorded from mid-cycle.
			// Once the layout is learned (by the third epoch) each fix has
			// its own cycle's PDOP and mode, and the fix before the outage is
			// not vetoed by the next cycle's "no fix" GSA.
			file: "gsa_first_midcycle.nmea", seconds: []int{40, 41, 42, 43, 44, 45, 46, 47, 48, 51, 52, 53, 54, 55},
			counters: map[string]uint64{"gps.sentences": 76, "gps.fixes": 14, "gps.fixes_by_talker.GP": 14,
				"gps.no_fix": 2, "gps.garbage_bytes": 12, "gps.layout_changes": 1},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for _, p := range fixes[3:] {
					i := time.UnixMilli(p.UnixMs).UTC().Second() - 40
					pdop, mode := int32(140+10*i), int32(3)
					if i < 4 {
						pdop, mode = 240+10*int32(i), 2
					}
					if p.PDOPc != pdop || p.Mode != mode {
						t.Errorf("10:15:%d: PDOP %d mode %d, want its own cycle's %d, %d", 40+i, p.PDOPc, p.Mode, pdop, mode)
					}
				}
			},
		},
		{
			// Item 5: the first cycle's GSA lost to line noise, so the first
			// epoch ends with its GGA; the GSA of the next shows the cycle
			// goes on, and from the third fix each has its own GSA.
			file: "gsa_lost_first.nmea", seconds: span(0, 11),
			counters: map[string]uint64{"gps.sentences": 36, "gps.fixes": 12, "gps.fixes_by_talker.GP": 12,
				"gps.bad_checksum": 1, "gps.late_sentences": 1},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for i, p := range fixes[2:] {
					i += 2
					mode := int32(3)
					if i == 5 || i == 6 {
						mode = 2
					}
					if p.PDOPc != int32(150+10*i) || p.Mode != mode {
						t.Errorf("10:16:%02d: PDOP %d mode %d, want its own %d, %d", i, p.PDOPc, p.Mode, 150+10*i, mode)
					}
				}
			},
		},
		{
			// Item 6: ZDA half a second ahead of the GGA, no RMC, across
			// midnight: the date changes at midnight, not a day early.
			file: "zda_ahead.nmea", seconds: append(span(54, 59), span(0, 5)...),
			counters: map[string]uint64{"gps.sentences": 36, "gps.fixes": 12, "gps.fixes_by_talker.GP": 12,
				"gps.skewed_sentences": 1},
			check: func(t *testing.T, fixes []telemetry.Position) {
				start := time.Date(2026, 3, 2, 23, 59, 54, 0, time.UTC)
				for i, p := range fixes {
					if got, want := time.UnixMilli(p.UnixMs).UTC(), start.Add(time.Duration(i)*time.Second); !got.Equal(want) {
						t.Errorf("fix %d at %v, want %v", i, got, want)
					}
				}
			},
		},
		{
			// Item 7: NMEA 4.11 GSV with signal ids, B among them.
			file: "signal_ids.nmea", seconds: span(0, 5),
			counters: map[string]uint64{"gps.sentences": 54, "gps.fixes": 6, "gps.fixes_by_talker.GN": 6, "gps.lenient": 6},
			check: func(t *testing.T, fixes []telemetry.Position) {
				for _, p := range fixes {
					// GPS 5 (L1), Galileo 4 (E5b), BeiDou 3 (B2I).
					if p.SatsInView != 12 {
						t.Errorf("satellites in view %d, want 12", p.SatsInView)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var c edge.Counters
			fixes := decodeWith(t, tt.file, &gps.Assembler{Counters: &c})
			if diff := cmp.Diff(tt.seconds, seconds(fixes)); diff != "" {
				t.Fatalf("fixes (seconds; -want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.counters, c.Snapshot()); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			tt.check(t, fixes)
		})
	}
}

// Talkers restricts the talkers used: the relay's fixes go when only the
// satellite talkers are allowed, and only the IN ones stay when IN is.
func TestTalkersRestrict(t *testing.T) {
	for _, tt := range []struct {
		talkers []string
		fixes   int
	}{{nil, 10}, {[]string{"GP", "GN"}, 0}, {[]string{"IN"}, 6}, {[]string{"IN", "EC"}, 10}} {
		var c edge.Counters
		fixes := decodeWith(t, "relayed_talkers.nmea", &gps.Assembler{Counters: &c, Talkers: tt.talkers})
		if len(fixes) != tt.fixes {
			t.Errorf("Talkers %v: %d fixes, want %d (counters %v)", tt.talkers, len(fixes), tt.fixes, c.Snapshot())
		}
	}
}
