package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// timeFormat is RFC 3339 with milliseconds; times are written in UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Time is a time that marshals as RFC 3339 UTC with milliseconds.
type Time time.Time

// MarshalJSON writes t as "2006-01-02T15:04:05.000Z".
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeFormat) + `"`), nil
}

type vehicleJSON struct {
	ID        string      `json:"id"`
	FirstSeen Time        `json:"first_seen"`
	LastSeen  Time        `json:"last_seen"`
	Position  *latestJSON `json:"position,omitempty"`
	Device    *deviceJSON `json:"device,omitempty"`
}

// deviceJSON is the agent's latest status: the device health.
type deviceJSON struct {
	Online           bool              `json:"online"`
	Time             Time              `json:"time"`
	OnlineSince      *Time             `json:"online_since,omitempty"`
	AgentVersion     string            `json:"agent_version"`
	StreamID         string            `json:"stream_id"`
	NextSeq          uint64            `json:"next_seq"`
	OutboxDepth      uint64            `json:"outbox_depth"`
	OutboxBytes      uint64            `json:"outbox_bytes"`
	OldestUnsentAgeS float64           `json:"oldest_unsent_age_s"`
	Dropped          uint64            `json:"dropped"`
	FixMode          int               `json:"fix_mode"`
	NoFixSince       *Time             `json:"no_fix_since,omitempty"`
	RTTMs            int64             `json:"rtt_ms"`
	UptimeS          float64           `json:"uptime_s"`
	Counters         map[string]uint64 `json:"counters"`
	Received         Time              `json:"received"`
}

func toDeviceJSON(d *cloud.DeviceStatus) *deviceJSON {
	if d == nil {
		return nil
	}
	out := &deviceJSON{Online: d.Online, Time: Time(d.Time), AgentVersion: d.AgentVersion, StreamID: streamHex(d.StreamID),
		NextSeq: d.NextSeq, OutboxDepth: d.OutboxDepth, OutboxBytes: d.OutboxBytes, OldestUnsentAgeS: d.OldestUnsentAge.Seconds(),
		Dropped: d.Dropped, FixMode: d.FixMode, RTTMs: d.RTT.Milliseconds(), UptimeS: d.Uptime.Seconds(),
		Counters: d.Counters, Received: Time(d.ReceivedAt)}
	if !d.OnlineSince.IsZero() {
		t := Time(d.OnlineSince)
		out.OnlineSince = &t
	}
	if !d.NoFixSince.IsZero() {
		t := Time(d.NoFixSince)
		out.NoFixSince = &t
	}
	return out
}

type latestJSON struct {
	Time      Time     `json:"time"`
	Lat       float64  `json:"lat"`
	Lon       float64  `json:"lon"`
	SpeedMPS  *float64 `json:"speed_mps,omitempty"`
	CourseDeg *float64 `json:"course_deg,omitempty"`
}

func toVehicleJSON(v *cloud.Vehicle) vehicleJSON {
	out := vehicleJSON{ID: v.ID, FirstSeen: Time(v.FirstSeen), LastSeen: Time(v.LastSeen)}
	if p := v.Position; p != nil {
		out.Position = &latestJSON{Time: Time(p.Time), Lat: p.Lat, Lon: p.Lon, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg}
	}
	return out
}

func (s *Server) vehicles(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		s.Error(w, r, err)
		return
	}
	vs, err := s.Vehicles.FindVehicles(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var statuses map[string]*cloud.DeviceStatus
	if s.Statuses != nil {
		if statuses, err = s.Statuses.FindStatuses(r.Context()); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	out := struct {
		Vehicles []vehicleJSON `json:"vehicles"`
	}{Vehicles: make([]vehicleJSON, 0, len(vs))}
	for _, v := range vs {
		j := toVehicleJSON(v)
		j.Device = toDeviceJSON(statuses[v.ID])
		out.Vehicles = append(out.Vehicles, j)
	}
	s.json(w, http.StatusOK, out)
}

func (s *Server) vehicle(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	v, err := s.Vehicles.FindVehicleByID(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	j := toVehicleJSON(v)
	if s.Statuses != nil {
		d, err := s.Statuses.FindStatus(r.Context(), id)
		if err != nil && cloud.ErrorCode(err) != cloud.ENOTFOUND {
			s.Error(w, r, err)
			return
		}
		j.Device = toDeviceJSON(d)
	}
	s.json(w, http.StatusOK, j)
}

// vehicleID returns the {id} of the path, or EINVALID when it is not a vehicle id.
func vehicleID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := telemetry.ValidVehicleID(id); err != nil {
		return "", cloud.Errorf(cloud.EINVALID, "invalid vehicle id %q: want 1 to 64 of A-Z a-z 0-9 _ -", id)
	}
	return id, nil
}

func streamHex(id uint64) string { return fmt.Sprintf("%016x", id) }
