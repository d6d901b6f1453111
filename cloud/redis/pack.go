package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// A state in the fleet's hash (FleetKey) is packed as eight comma-separated
// fields: time in Unix ms, stream id in hex, seq, lat, lon, updated_at in
// Unix ms, speed_mps, course_deg (the last two empty when unknown). Numbers
// and milliseconds, not the vehicle hash's RFC 3339 text: a list of 10,000
// vehicles unpacks them without parsing a date.

// packState returns st packed.
func packState(st *cloud.VehicleState) string {
	p := &st.Position
	b := make([]byte, 0, 96)
	b = strconv.AppendInt(b, p.Time.UnixMilli(), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, p.StreamID, 16)
	b = append(b, ',')
	b = strconv.AppendUint(b, p.Seq, 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lat, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendInt(b, st.UpdatedAt.UnixMilli(), 10)
	for _, v := range []*float64{p.SpeedMPS, p.CourseDeg} {
		b = append(b, ',')
		if v != nil {
			b = strconv.AppendFloat(b, *v, 'f', -1, 64)
		}
	}
	return string(b)
}

// unpackState reads a packed state of vehicle id, or returns an error
// naming what is wrong with it.
func unpackState(id, s string) (*cloud.VehicleState, error) {
	st := &cloud.VehicleState{}
	if err := unpackStateInto(st, id, s, nil); err != nil {
		return nil, err
	}
	return st, nil
}

// unpackStateInto is unpackState into st, with its speed and course in
// floats[0] and floats[1] when floats is not nil (a list unpacks 10,000
// states into a few allocations).
func unpackStateInto(st *cloud.VehicleState, id, s string, floats []float64) error {
	var f [8]string
	rest := s
	for i := range f {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, ","); !ok && i < len(f)-1 {
			return fmt.Errorf("packed state %q: %d fields, want %d", s, i+1, len(f))
		}
	}
	if rest != "" {
		return fmt.Errorf("packed state %q: more than %d fields", s, len(f))
	}
	var errs [8]error
	at, t0 := int64(0), int64(0)
	*st = cloud.VehicleState{VehicleID: id, Position: cloud.Position{VehicleID: id}}
	p := &st.Position
	at, errs[0] = strconv.ParseInt(f[0], 10, 64)
	p.StreamID, errs[1] = strconv.ParseUint(f[1], 16, 64)
	p.Seq, errs[2] = strconv.ParseUint(f[2], 10, 64)
	p.Lat, errs[3] = strconv.ParseFloat(f[3], 64)
	p.Lon, errs[4] = strconv.ParseFloat(f[4], 64)
	t0, errs[5] = strconv.ParseInt(f[5], 10, 64)
	opt := func(i int) *float64 {
		if f[i] == "" {
			return nil
		}
		v := new(float64)
		if floats != nil {
			v = &floats[i-6]
		}
		*v, errs[i] = strconv.ParseFloat(f[i], 64)
		return v
	}
	p.SpeedMPS, p.CourseDeg = opt(6), opt(7)
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("packed state %q: field %d: %w", s, i+1, err)
		}
	}
	p.Time, st.UpdatedAt = time.UnixMilli(at).UTC(), time.UnixMilli(t0).UTC()
	return nil
}
