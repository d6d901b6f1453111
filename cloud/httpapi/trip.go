package httpapi

import (
	"net/http"
	"strconv"

	"github.com/fleetgate/fleetgate/cloud"
)

type placeJSON struct {
	Time Time     `json:"time"`
	Lat  *float64 `json:"lat,omitempty"`
	Lon  *float64 `json:"lon,omitempty"`
}

type tripMatchJSON struct {
	Status     cloud.MatchStatus `json:"status"`
	DistanceM  *float64          `json:"distance_m,omitempty"`
	Confidence *float64          `json:"confidence,omitempty"`
	Error      string            `json:"error,omitempty"`
}

type tripJSON struct {
	ID          int64            `json:"id"`
	VehicleID   string           `json:"vehicle_id"`
	Start       placeJSON        `json:"start"`
	End         placeJSON        `json:"end"`
	Open        bool             `json:"open"`
	DurationS   float64          `json:"duration_s"`
	DistanceM   float64          `json:"distance_m"`
	DrivingS    float64          `json:"driving_s"`
	IdleS       float64          `json:"idle_s"`
	StoppedS    float64          `json:"stopped_s"`
	MaxSpeedMPS float64          `json:"max_speed_mps"`
	AvgSpeedMPS float64          `json:"avg_speed_mps"`
	Fixes       int              `json:"fixes"`
	FuelL       *float64         `json:"fuel_l,omitempty"`
	FuelSource  cloud.FuelSource `json:"fuel_source,omitempty"`
	Match       tripMatchJSON    `json:"match"`
}

func place(at Time, p *cloud.Place) placeJSON {
	out := placeJSON{Time: at}
	if p != nil {
		out.Lat, out.Lon = &p.Lat, &p.Lon
	}
	return out
}

func toTripJSON(t *cloud.Trip) tripJSON {
	out := tripJSON{ID: t.ID, VehicleID: t.VehicleID, Start: place(Time(t.Start), t.StartPlace), End: place(Time(t.End), t.EndPlace),
		Open: t.Open, DurationS: t.Duration().Seconds(), DistanceM: t.DistanceM, DrivingS: t.Driving.Seconds(),
		IdleS: t.Idle.Seconds(), StoppedS: t.Stopped.Seconds(), MaxSpeedMPS: t.MaxSpeed, AvgSpeedMPS: t.AvgSpeed,
		Fixes: t.Fixes, FuelL: t.FuelL, FuelSource: t.FuelSource,
		Match: tripMatchJSON{Status: t.Match.Status, Error: t.Match.Error}}
	if t.Match.Status == cloud.MatchMatched {
		out.Match.DistanceM, out.Match.Confidence = &t.Match.DistanceM, &t.Match.Confidence
	}
	return out
}

// trips serves a page of a vehicle's trips overlapping the window, with
// the history endpoints' parameters (the cursor orders by start).
func (s *Server) trips(w http.ResponseWriter, r *http.Request) {
	win, err := s.parseOverlapWindow(r, "trips")
	if err == nil && s.Trips == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "trips are not served by this server")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ts, next, err := s.Trips.FindTrips(r.Context(), cloud.TripFilter{VehicleID: win.id, From: win.from, To: win.to, After: win.after, Limit: win.limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		VehicleID string     `json:"vehicle_id"`
		Trips     []tripJSON `json:"trips"`
		Next      string     `json:"next,omitempty"`
	}{VehicleID: win.id, Trips: make([]tripJSON, 0, len(ts)), Next: cursorString(next, win.scope)}
	for _, t := range ts {
		out.Trips = append(out.Trips, toTripJSON(t))
	}
	s.json(w, http.StatusOK, out)
}

// lineJSON and multiLineJSON are GeoJSON geometries ([lon, lat]).
type lineJSON struct {
	Type        string       `json:"type"`
	Coordinates [][2]float64 `json:"coordinates"`
}

type multiLineJSON struct {
	Type        string         `json:"type"`
	Coordinates [][][2]float64 `json:"coordinates"`
}

// trip serves one trip with its raw track (a GeoJSON LineString of its
// fixes) and, once matched, its matched geometry (a MultiLineString: the
// matcher leaves breaks where it found no road).
func (s *Server) trip(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	tripID, perr := strconv.ParseInt(r.PathValue("trip_id"), 10, 64)
	if err == nil && (perr != nil || tripID < 1) {
		err = cloud.Errorf(cloud.EINVALID, "invalid trip id %q: want a whole number from 1", r.PathValue("trip_id"))
	}
	if err == nil && s.Trips == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "trips are not served by this server")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	t, err := s.Trips.FindTrip(r.Context(), id, tripID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	track, err := s.Trips.TripTrack(r.Context(), id, t.Start, t.End)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		Trip    tripJSON       `json:"trip"`
		Raw     lineJSON       `json:"raw"`
		Matched *multiLineJSON `json:"matched,omitempty"`
	}{Trip: toTripJSON(t), Raw: lineJSON{Type: "LineString", Coordinates: make([][2]float64, 0, len(track))}}
	for _, p := range track {
		out.Raw.Coordinates = append(out.Raw.Coordinates, [2]float64{p.Lon, p.Lat})
	}
	if t.Match.Status == cloud.MatchMatched {
		out.Matched = &multiLineJSON{Type: "MultiLineString", Coordinates: t.Match.Geometry}
	}
	s.json(w, http.StatusOK, out)
}
