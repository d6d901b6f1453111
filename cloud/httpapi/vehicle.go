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
	out := struct {
		Vehicles []vehicleJSON `json:"vehicles"`
	}{Vehicles: make([]vehicleJSON, 0, len(vs))}
	for _, v := range vs {
		out.Vehicles = append(out.Vehicles, toVehicleJSON(v))
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
	s.json(w, http.StatusOK, toVehicleJSON(v))
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
