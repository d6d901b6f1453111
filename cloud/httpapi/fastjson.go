package httpapi

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// The vehicle list is the API's largest answer that cannot be streamed row
// by row from the store (10,000 vehicles with their device health): its
// JSON is written by the appenders below instead of encoding/json's
// reflection, five times faster. Their output is byte for byte what
// json.Marshal writes for the same structs (a test holds them to it).

// appendVehicle appends v as json.Marshal would: its head, position, tail,
// distance and closing brace. The list writes those parts apart, since it
// keeps each vehicle's head and tail (PostgreSQL's part) for a while and
// writes the position and distance afresh (the live store's part).
func appendVehicle(b []byte, v *vehicleJSON) []byte {
	b = appendVehicleHead(b, v)
	b = appendPosition(b, v.Position)
	b = appendVehicleTail(b, v)
	b = appendOptFloat(b, `,"distance_m":`, v.DistanceM)
	return append(b, '}')
}

// appendVehicleHead appends v's fields before its position, with the
// opening brace.
func appendVehicleHead(b []byte, v *vehicleJSON) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = append(b, `,"first_seen":`...)
	b = appendTime(b, v.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, v.LastSeen)
	b = append(b, `,"online":`...)
	return strconv.AppendBool(b, v.Online)
}

// appendPosition appends the position's field, nothing when p is nil.
func appendPosition(b []byte, p *latestJSON) []byte {
	if p == nil {
		return b
	}
	b = append(b, `,"position":{"time":`...)
	b = appendTime(b, p.Time)
	b = append(b, `,"lat":`...)
	b = appendFloat64(b, p.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat64(b, p.Lon)
	b = appendOptFloat(b, `,"speed_mps":`, p.SpeedMPS)
	b = appendOptFloat(b, `,"course_deg":`, p.CourseDeg)
	return append(b, '}')
}

// appendVehicleTail appends v's fields between its position and its
// distance: the device and the trouble codes.
func appendVehicleTail(b []byte, v *vehicleJSON) []byte {
	if d := v.Device; d != nil {
		b = append(b, `,"device":`...)
		b = appendDevice(b, d)
	}
	b = append(b, `,"trouble_codes":`...)
	if v.TroubleCodes == nil {
		return append(b, "null"...)
	}
	return appendCodes(b, v.TroubleCodes)
}

func appendCodes(b []byte, codes []troubleCodeJSON) []byte {
	b = append(b, '[')
	for i, tc := range codes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"code":`...)
		b = appendString(b, tc.Code)
		b = append(b, `,"since":`...)
		b = appendTime(b, tc.Since)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendDevice appends d as json.Marshal would.
func appendDevice(b []byte, d *deviceJSON) []byte {
	b = append(b, `{"online":`...)
	b = strconv.AppendBool(b, d.Online)
	b = append(b, `,"time":`...)
	b = appendTime(b, d.Time)
	if d.OnlineSince != nil {
		b = append(b, `,"online_since":`...)
		b = appendTime(b, *d.OnlineSince)
	}
	b = append(b, `,"agent_version":`...)
	b = appendString(b, d.AgentVersion)
	b = append(b, `,"stream_id":`...)
	b = appendString(b, d.StreamID)
	for _, f := range []struct {
		key string
		v   uint64
	}{{`,"next_seq":`, d.NextSeq}, {`,"outbox_depth":`, d.OutboxDepth}, {`,"outbox_bytes":`, d.OutboxBytes}} {
		b = append(b, f.key...)
		b = strconv.AppendUint(b, f.v, 10)
	}
	b = append(b, `,"oldest_unsent_age_s":`...)
	b = appendFloat64(b, d.OldestUnsentAgeS)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendUint(b, d.Dropped, 10)
	b = append(b, `,"fix_mode":`...)
	b = strconv.AppendInt(b, int64(d.FixMode), 10)
	if d.NoFixSince != nil {
		b = append(b, `,"no_fix_since":`...)
		b = appendTime(b, *d.NoFixSince)
	}
	b = append(b, `,"rtt_ms":`...)
	b = strconv.AppendInt(b, d.RTTMs, 10)
	b = append(b, `,"uptime_s":`...)
	b = appendFloat64(b, d.UptimeS)
	if d.ClockSource != "" {
		b = append(b, `,"clock_source":`...)
		b = appendString(b, d.ClockSource)
	}
	if d.ClockOffsetMs != nil {
		b = append(b, `,"clock_offset_ms":`...)
		b = strconv.AppendInt(b, *d.ClockOffsetMs, 10)
	}
	b = append(b, `,"outbox_trouble":`...)
	b = appendString(b, d.OutboxTrouble)
	b = append(b, `,"obd_state":`...)
	b = appendString(b, d.OBDState)
	b = append(b, `,"counters":`...)
	if d.Counters == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		keys := make([]string, 0, len(d.Counters))
		for k := range d.Counters {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = strconv.AppendUint(b, d.Counters[k], 10)
		}
		b = append(b, '}')
	}
	b = append(b, `,"received":`...)
	b = appendTime(b, d.Received)
	return append(b, '}')
}

// appendTime appends t quoted as timeFormat writes it in UTC, digit by
// digit for the years 0 to 9999 (time.AppendFormat, which it leaves the
// others to, is a third of the list's rendering).
func appendTime(b []byte, t Time) []byte {
	u := time.Time(t).UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = u.AppendFormat(b, timeFormat)
		return append(b, '"')
	}
	hour, minute, sec := u.Clock()
	ms := u.Nanosecond() / 1e6
	n := len(b)
	b = append(b, `"0000-00-00T00:00:00.000Z"`...)
	d := b[n+1:]
	digits := func(at, v, width int) {
		for i := at + width - 1; i >= at; i-- {
			d[i] = byte('0' + v%10)
			v /= 10
		}
	}
	digits(0, year, 4)
	digits(5, int(month), 2)
	digits(8, day, 2)
	digits(11, hour, 2)
	digits(14, minute, 2)
	digits(17, sec, 2)
	digits(20, ms, 3)
	return b
}

func appendOptFloat(b []byte, key string, f *float64) []byte {
	if f == nil {
		return b
	}
	return appendFloat64(append(b, key...), *f)
}

// appendString appends s as a JSON string: plain ASCII as it is, anything
// else through encoding/json (its escapes exactly).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat64 appends f as encoding/json does (shortest form; exponent
// form outside [1e-6, 1e21)). NaN and infinities, which JSON cannot carry,
// never reach it (the store refuses them).
func appendFloat64(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
