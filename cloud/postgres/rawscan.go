package postgres

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fleetgate/fleetgate/cloud"
)

// A list of 10,000 vehicles spends most of its PostgreSQL time in pgx's
// scanning (a plan, a pointer and a conversion per value) and in
// encoding/json for the counters. collectVehicles reads selectVehicles'
// rows from their binary form instead, with the counters' flat object
// read by hand; it falls back to scanVehicle when the columns are not the
// types it knows (a changed query or schema): never a guessed value.

// vehicleOIDs are the types of selectVehicles' columns, in order.
var vehicleOIDs = []uint32{
	pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID, // id, first_seen, last_seen
	pgtype.Int8OID, pgtype.Int8OID, pgtype.TimestamptzOID, // pos_stream_id, pos_seq, pos_time
	pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, // lat, lon, speed, course
	pgtype.TextOID, pgtype.BoolOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TextOID, // vehicle_id, online, time, online_since, agent_version
	pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, pgtype.Int8OID, // stream_id … dropped
	pgtype.Int4OID, pgtype.TimestamptzOID, pgtype.Int8OID, pgtype.JSONBOID, pgtype.Int8OID, pgtype.TimestamptzOID, // fix_mode … received_at
	pgtype.Int4OID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, // clock_source, clock_offset_ms, outbox_trouble, obd_state
}

// rawReadable reports whether fds are columns of the types oids, in the
// formats pgx asks: binary numbers, times and booleans; text and jsonb as
// text (the string, the JSON as it is; text's binary form is the same).
func rawReadable(fds []pgconn.FieldDescription, oids []uint32) bool {
	if len(fds) != len(oids) {
		return false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != oids[i] {
			return false
		}
		switch oids[i] {
		case pgtype.TextOID:
		case pgtype.JSONBOID:
			if fd.Format != pgx.TextFormatCode {
				return false
			}
		default:
			if fd.Format != pgx.BinaryFormatCode {
				return false
			}
		}
	}
	return true
}

// collectVehicles reads every row of a selectVehicles query and closes it.
func collectVehicles(rows pgx.Rows) ([]*cloud.Vehicle, error) {
	defer rows.Close()
	raw := rawReadable(rows.FieldDescriptions(), vehicleOIDs)
	var vs []*cloud.Vehicle
	versions := map[string]string{} // agent versions, shared: a fleet runs a few
	for rows.Next() {
		var v *cloud.Vehicle
		var err error
		if raw {
			v, err = readVehicle(rows.RawValues(), versions)
		} else {
			v, err = scanVehicle(rows)
		}
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// binaryRow reads the binary values of a row, keeping the first error.
type binaryRow struct {
	vals [][]byte
	err  error
}

func (r *binaryRow) fail(i int, what string) {
	if r.err == nil {
		r.err = fmt.Errorf("column %d: %s", i+1, what)
	}
}

func (r *binaryRow) null(i int) bool { return r.vals[i] == nil }

func (r *binaryRow) int(i, size int) int64 {
	b := r.vals[i]
	if len(b) != size {
		r.fail(i, fmt.Sprintf("%d bytes, want %d", len(b), size))
		return 0
	}
	switch size {
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b)))
	default:
		return int64(binary.BigEndian.Uint64(b))
	}
}

// optInt returns the int8 column i, 0 when NULL.
func (r *binaryRow) optInt(i int) int64 {
	if r.null(i) {
		return 0
	}
	return r.int(i, 8)
}

// pgEpochUs is 2000-01-01 UTC, PostgreSQL's epoch, in Unix microseconds.
const pgEpochUs = 946_684_800_000_000

func (r *binaryRow) time(i int) time.Time {
	us := r.int(i, 8)
	if us == math.MaxInt64 || us == math.MinInt64 {
		r.fail(i, "an infinite timestamp")
		return time.Time{}
	}
	return time.UnixMicro(us + pgEpochUs).UTC()
}

// optTime returns the timestamptz column i, zero when NULL.
func (r *binaryRow) optTime(i int) time.Time {
	if r.null(i) {
		return time.Time{}
	}
	return r.time(i)
}

// readVehicle reads a selectVehicles row (binary), as scanVehicle would.
func readVehicle(vals [][]byte, versions map[string]string) (*cloud.Vehicle, error) {
	r := binaryRow{vals: vals}
	if len(vals) != len(vehicleOIDs) || r.null(0) || r.null(1) || r.null(2) {
		return nil, fmt.Errorf("read vehicle: %d columns, or a NULL id or time", len(vals))
	}
	v := &cloud.Vehicle{ID: string(vals[0]), FirstSeen: r.time(1), LastSeen: r.time(2)}
	if !r.null(3) && !r.null(4) && !r.null(5) && !r.null(6) && !r.null(7) {
		p := &cloud.Position{VehicleID: v.ID, StreamID: uint64(r.int(3, 8)), Seq: uint64(r.int(4, 8)), Time: r.time(5),
			Lat: float64(r.int(6, 4)) / 1e7, Lon: float64(r.int(7, 4)) / 1e7}
		if !r.null(8) {
			f := float64(r.int(8, 4)) / 1000
			p.SpeedMPS = &f
		}
		if !r.null(9) {
			f := float64(r.int(9, 4)) / 100
			p.CourseDeg = &f
		}
		v.Position = p
	}
	// The status (LEFT JOIN): as statusRow.status, none without its
	// vehicle, online, time and received_at.
	if !r.null(10) && !r.null(11) && !r.null(12) && !r.null(26) {
		s := &cloud.DeviceStatus{VehicleID: v.ID, Time: r.time(12), OnlineSince: r.optTime(13),
			StreamID: uint64(r.optInt(15)), NextSeq: uint64(r.optInt(16)), OutboxDepth: uint64(r.optInt(17)),
			OutboxBytes: uint64(r.optInt(18)), OldestUnsentAge: time.Duration(uint64(r.optInt(19))) * time.Millisecond,
			Dropped: uint64(r.optInt(20)), NoFixSince: r.optTime(22), RTT: time.Duration(uint64(r.optInt(23))) * time.Millisecond,
			Uptime: time.Duration(uint64(r.optInt(25))) * time.Millisecond, ReceivedAt: r.time(26)}
		if string(vals[10]) != v.ID {
			s.VehicleID = string(vals[10])
		}
		if b := vals[11]; len(b) == 1 {
			s.Online = b[0] != 0
		} else {
			r.fail(11, "not a boolean")
		}
		if !r.null(14) {
			ver, ok := versions[string(vals[14])]
			if !ok {
				ver = string(vals[14])
				versions[ver] = ver
			}
			s.AgentVersion = ver
		}
		if !r.null(21) {
			s.FixMode = int(r.int(21, 4))
		}
		if !r.null(27) {
			s.ClockSource = cloud.ClockSource(r.int(27, 4))
		}
		if !r.null(28) {
			s.ClockOffset = time.Duration(r.int(28, 8)) * time.Millisecond
		}
		s.OutboxTrouble, s.OBDState = string(vals[29]), string(vals[30]) // NULL reads as ""
		if b := vals[24]; len(b) > 0 {
			if c, err := readCounters(b); err != nil {
				r.fail(24, err.Error())
			} else {
				s.Counters = c
			}
		}
		v.Device = s
	}
	if r.err != nil {
		return nil, fmt.Errorf("read vehicle %q: %w", v.ID, r.err)
	}
	return v, nil
}

// readCounters reads a flat JSON object of unsigned integers as jsonb
// writes it ({"a": 1, "b": 2}); anything else (an escape, a number that
// is not a plain unsigned integer) goes to encoding/json, which decides.
func readCounters(b []byte) (map[string]uint64, error) {
	slow := func() (map[string]uint64, error) {
		var m map[string]uint64
		err := json.Unmarshal(b, &m)
		return m, err
	}
	i := 0
	space := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	space()
	if i >= len(b) || b[i] != '{' {
		return slow()
	}
	i++
	space()
	m := map[string]uint64{}
	if i < len(b) && b[i] == '}' {
		i++
		space()
		if i != len(b) {
			return slow()
		}
		return m, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return slow()
		}
		start := i + 1
		for i = start; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' || b[i] < 0x20 {
				return slow()
			}
		}
		if i >= len(b) {
			return slow()
		}
		key := string(b[start:i])
		i++
		space()
		if i >= len(b) || b[i] != ':' {
			return slow()
		}
		i++
		space()
		start = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || (b[start] == '0' && i-start > 1) {
			return slow()
		}
		n, err := strconv.ParseUint(string(b[start:i]), 10, 64)
		if err != nil {
			return slow()
		}
		if _, dup := m[key]; dup {
			return slow()
		}
		m[key] = n
		space()
		if i >= len(b) {
			return slow()
		}
		if b[i] == '}' {
			i++
			space()
			if i != len(b) {
				return slow()
			}
			return m, nil
		}
		if b[i] != ',' {
			return slow()
		}
		i++
		space()
	}
}
