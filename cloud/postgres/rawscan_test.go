package postgres

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// collectVehicles reads, from the binary rows, what pgx's scanning of the
// same rows reads: with and without a position, a status, its optional
// figures, counters of every shape.
func TestCollectVehiclesIsScanVehicle(t *testing.T) {
	u := testenv.Postgres(t)
	ctx := context.Background()
	if err := Migrate(ctx, u); err != nil {
		t.Fatal(err)
	}
	db := NewDB(u)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`INSERT INTO vehicles (id, first_seen, last_seen) VALUES ('a-bare', '2026-11-27 10:00:00.123456Z', '2026-11-27 11:00:00Z')`,
		`INSERT INTO vehicles VALUES ('b-full', '1999-12-31 23:59:59.5Z', '2026-11-27 11:00:00Z', -9223372036854775808, 7,
			'2026-11-27 10:59:59.999Z', -899999999, 1800000000, 13891, 4520)`,
		`INSERT INTO vehicles VALUES ('c-nospeed', '2026-11-27 10:00:00Z', '2026-11-27 11:00:00Z', 1, 2, '2026-11-27 10:00:00Z', 0, 0, NULL, NULL)`,
		`INSERT INTO vehicles VALUES ('d-halfpos', '2026-11-27 10:00:00Z', '2026-11-27 11:00:00Z', 1, NULL, '2026-11-27 10:00:00Z', 0, 0, 1, 1)`,
		`INSERT INTO vehicles (id, first_seen, last_seen) VALUES ('e-escaped', '2026-11-27 10:00:00Z', '2026-11-27 11:00:00Z')`,
		`INSERT INTO device_status VALUES ('b-full', true, '2026-11-27 10:30:00Z', '1.2.3 "beta"', 9223372036854775807, 5, 6, 7, 8, 9, 3,
			'2026-11-27 09:00:00Z', 40, '{"gps.bad_checksum": 1, "a": 18446744073709551615, "outbox.dropped": 0}', 3600000, '2026-11-27 10:30:01Z', '2026-11-27 08:00:00Z')`,
		`UPDATE device_status SET clock_source = 2, clock_offset_ms = -1200, outbox_trouble = 'filesystem_full',
			obd_state = 'bus_fault: CAN ERROR' WHERE vehicle_id = 'b-full'`,
		`INSERT INTO device_status (vehicle_id, online, time, received_at) VALUES ('c-nospeed', false, '2026-11-27 10:30:00Z', '2026-11-27 10:30:01Z')`,
		`INSERT INTO device_status (vehicle_id, online, time, received_at, counters, agent_version) VALUES
			('e-escaped', true, '2026-11-27 10:30:00Z', '2026-11-27 10:30:01Z', '{"quo\"te": 1, "\u00e9": 2}', '1.2.3 "beta"')`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	query := selectVehicles + " ORDER BY v.id"
	rows, err := db.pool.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	if !rawReadable(rows.FieldDescriptions(), vehicleOIDs) {
		rows.Close()
		t.Fatalf("selectVehicles' columns are not the binary ones collectVehicles reads: %+v", rows.FieldDescriptions())
	}
	got, err := collectVehicles(rows)
	if err != nil {
		t.Fatal(err)
	}
	rows, err = db.pool.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, scanVehicle)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || len(want) != 5 {
		t.Fatalf("%d and %d vehicles, want 5", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("vehicle %d:\n got %+v %+v %+v\nwant %+v %+v %+v", i, got[i], got[i].Position, got[i].Device, want[i], want[i].Position, want[i].Device)
		}
	}
	if d := got[1].Device; d == nil || d.Counters["a"] != 1<<64-1 || d.AgentVersion != `1.2.3 "beta"` || !d.OnlineSince.Equal(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)) ||
		d.ClockSource != cloud.ClockGNSS || d.ClockOffset != -1200*time.Millisecond || d.OutboxTrouble != "filesystem_full" || d.OBDState != "bus_fault: CAN ERROR" {
		t.Errorf("b-full's status %+v", d)
	}
	if d := got[4].Device; d == nil || d.Counters[`quo"te`] != 1 || d.Counters["é"] != 2 {
		t.Errorf("e-escaped's status %+v", d)
	}
	// Text columns (a query pgx is told to read as text) go through
	// scanVehicle: the same vehicles.
	rows, err = db.pool.Query(ctx, query, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	text, err := collectVehicles(rows)
	if err != nil || !reflect.DeepEqual(text, want) {
		t.Errorf("from text columns: %v, %v", text, err)
	}
}

func TestReadCounters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]uint64
		ok   bool
	}{
		{`{}`, map[string]uint64{}, true},
		{` { } `, map[string]uint64{}, true},
		{`{"a": 1, "gps.bad_checksum": 18446744073709551615}`, map[string]uint64{"a": 1, "gps.bad_checksum": 1<<64 - 1}, true},
		{`{"a":1,"b":0}`, map[string]uint64{"a": 1, "b": 0}, true},
		{`{"\u00e9": 2, "x\"y": 3}`, map[string]uint64{"é": 2, `x"y`: 3}, true},
		{`{"a": 1, "a": 2}`, map[string]uint64{"a": 2}, true},
		{`{"a": 1.0}`, nil, false},
		{`{"a": 01}`, nil, false},
		{`{"a": -1}`, nil, false},
		{`{"a": 18446744073709551616}`, nil, false},
		{`{"a": "1"}`, nil, false},
		{`{"a": 1} x`, nil, false},
		{`{"a": 1`, nil, false},
		{`[1]`, nil, false},
		{`null`, nil, true},
		{``, nil, false},
	} {
		got, err := readCounters([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
