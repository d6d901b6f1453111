package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// DefaultWindow is how far before `to` a history query starts when `from` is
// not given.
const DefaultWindow = 24 * time.Hour

// window is the part of a history request common to positions, OBD
// samples, events and device history.
type window struct {
	id       string
	from, to time.Time
	after    *cloud.Cursor
	limit    int
	scope    string // of the cursors: the list and its filters
}

// parseWindow reads {id}, from, to, limit and after, and refuses any other
// parameter but those in extra, with EINVALID errors that say what is wrong:
// a range longer than cloud.MaxWindow, or a cursor of another list or
// outside the range, among them. scope names the list for its cursors.
func (s *Server) parseWindow(r *http.Request, scope string, extra ...string) (window, error) {
	return s.window(r, scope, true, extra)
}

// parseOverlapWindow is parseWindow for lists of things that overlap the
// range (trips): their cursor may point before it.
func (s *Server) parseOverlapWindow(r *http.Request, scope string, extra ...string) (window, error) {
	return s.window(r, scope, false, extra)
}

func (s *Server) window(r *http.Request, scope string, afterInside bool, extra []string) (window, error) {
	var w window
	var err error
	if w.id, err = vehicleID(r); err != nil {
		return w, err
	}
	if err := checkParams(r, append([]string{"from", "to", "limit", "after"}, extra...)); err != nil {
		return w, err
	}
	q := r.URL.Query()
	w.to = s.Now().UTC()
	if v := q.Get("to"); v != "" {
		if w.to, err = parseTime("to", v); err != nil {
			return w, err
		}
	}
	w.from = w.to.Add(-DefaultWindow)
	if v := q.Get("from"); v != "" {
		if w.from, err = parseTime("from", v); err != nil {
			return w, err
		}
	}
	if !w.from.Before(w.to) {
		return w, cloud.Errorf(cloud.EINVALID, "from %s is not before to %s", w.from.Format(timeFormat), w.to.Format(timeFormat))
	}
	if w.to.Sub(w.from) > cloud.MaxWindow {
		return w, cloud.Errorf(cloud.EINVALID, "from %s to %s is longer than %d days: ask for a shorter range",
			w.from.Format(timeFormat), w.to.Format(timeFormat), int(cloud.MaxWindow.Hours()/24))
	}
	w.scope = scope + " " + w.id
	if w.limit, w.after, err = parsePage(q, w.scope); err != nil {
		return w, err
	}
	if afterInside && w.after != nil && (w.after.Time.Before(w.from) || !w.after.Time.Before(w.to)) {
		return w, cloud.Errorf(cloud.EINVALID, "invalid cursor %q: it points outside from %s to %s; use the \"next\" value of a page of this range",
			q.Get("after"), w.from.Format(timeFormat), w.to.Format(timeFormat))
	}
	return w, nil
}

// parsePage reads limit (default cloud.DefaultLimit, 1 to cloud.MaxLimit)
// and after (a cursor of scope).
func parsePage(q url.Values, scope string) (int, *cloud.Cursor, error) {
	limit := cloud.DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cloud.MaxLimit {
			return 0, nil, cloud.Errorf(cloud.EINVALID, "invalid limit %q: want a whole number from 1 to %d", v, cloud.MaxLimit)
		}
		limit = n
	}
	v := q.Get("after")
	if v == "" {
		return limit, nil, nil
	}
	c, err := cloud.ParseCursor(v, scope)
	if err != nil {
		return 0, nil, err
	}
	return limit, &c, nil
}

// parseTime reads an RFC 3339 time. A '+' of the offset that arrived as a
// space (an unescaped query string) is put back.
func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && strings.Contains(v, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	}
	if err != nil {
		return time.Time{}, cloud.Errorf(cloud.EINVALID, "invalid %s %q: want an RFC 3339 time such as 2026-11-27T10:00:00Z", name, v)
	}
	return t.UTC(), nil
}

// checkParams refuses a parameter not in known, and any given twice.
func checkParams(r *http.Request, known []string) error {
	for k, vs := range r.URL.Query() {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return cloud.Errorf(cloud.EINVALID, "unknown parameter %q: this endpoint takes none", k)
			}
			return cloud.Errorf(cloud.EINVALID, "unknown parameter %q: known are %s", k, strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return cloud.Errorf(cloud.EINVALID, "parameter %q given %d times", k, len(vs))
		}
	}
	return nil
}

type positionJSON struct {
	StreamID   string   `json:"stream_id"`
	Seq        uint64   `json:"seq"`
	Time       Time     `json:"time"`
	Lat        float64  `json:"lat"`
	Lon        float64  `json:"lon"`
	AltM       *float64 `json:"alt_m,omitempty"`
	SpeedMPS   *float64 `json:"speed_mps,omitempty"`
	CourseDeg  *float64 `json:"course_deg,omitempty"`
	Mode       *int     `json:"mode,omitempty"`
	Quality    *int     `json:"quality,omitempty"`
	Sats       *int     `json:"sats,omitempty"`
	HDOP       *float64 `json:"hdop,omitempty"`
	GeoidSepM  *float64 `json:"geoid_sep_m,omitempty"`
	SatsInView *int     `json:"sats_in_view,omitempty"`
	VDOP       *float64 `json:"vdop,omitempty"`
	PDOP       *float64 `json:"pdop,omitempty"`
	ErrLatM    *float64 `json:"err_lat_m,omitempty"`
	ErrLonM    *float64 `json:"err_lon_m,omitempty"`
	ErrAltM    *float64 `json:"err_alt_m,omitempty"`
}

func toPositionJSON(p *cloud.Position) positionJSON {
	return positionJSON{
		StreamID: streamHex(p.StreamID), Seq: p.Seq, Time: Time(p.Time), Lat: p.Lat, Lon: p.Lon,
		AltM: p.AltM, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg, Mode: p.Mode, Quality: p.Quality,
		Sats: p.SatsUsed, HDOP: p.HDOP, GeoidSepM: p.GeoidSepM, SatsInView: p.SatsInView, VDOP: p.VDOP,
		PDOP: p.PDOP, ErrLatM: p.ErrLatM, ErrLonM: p.ErrLonM, ErrAltM: p.ErrAltM,
	}
}

// positions is GET /api/v1/vehicles/{id}/positions: a page of JSON, or the
// whole range as GeoJSON (format=geojson or Accept: application/geo+json),
// streamed.
func (s *Server) positions(w http.ResponseWriter, r *http.Request) {
	if s.Positions == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "positions are not configured"))
		return
	}
	win, err := s.parseWindow(r, "positions", "format", "geometry")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	geo, err := wantsGeoJSON(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if geo {
		s.geoJSON(w, r, win)
		return
	}
	if q.Get("geometry") != "" {
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "geometry is for GeoJSON (format=geojson)"))
		return
	}
	ps, next, err := s.Positions.FindPositions(r.Context(), cloud.PositionFilter{
		VehicleID: win.id, From: win.from, To: win.to, After: win.after, Limit: win.limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		VehicleID string         `json:"vehicle_id"`
		Positions []positionJSON `json:"positions"`
		Next      string         `json:"next,omitempty"`
	}{VehicleID: win.id, Positions: make([]positionJSON, 0, len(ps)), Next: cursorString(next, win.scope)}
	for _, p := range ps {
		out.Positions = append(out.Positions, toPositionJSON(p))
	}
	s.json(w, http.StatusOK, out)
}

// wantsGeoJSON reads format (json or geojson); without it, an Accept header
// naming application/geo+json (and not application/json first) asks for
// GeoJSON.
func wantsGeoJSON(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "geojson":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, cloud.Errorf(cloud.EINVALID, "invalid format %q: want json or geojson", f)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/geo+json":
			return true, nil
		case "application/json":
			return false, nil
		}
	}
	return false, nil
}

type obdJSON struct {
	StreamID string  `json:"stream_id"`
	Seq      uint64  `json:"seq"`
	Time     Time    `json:"time"`
	PID      string  `json:"pid"`
	Mode     string  `json:"mode"`
	Value    float64 `json:"value"`
}

func (s *Server) obd(w http.ResponseWriter, r *http.Request) {
	if s.OBD == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "OBD samples are not configured"))
		return
	}
	var pid uint16
	if v := r.URL.Query().Get("pid"); v != "" {
		var err error
		if pid, err = parsePID(v); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	win, err := s.parseWindow(r, fmt.Sprintf("obd pid=%04X", pid), "pid")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ss, next, err := s.OBD.FindOBDSamples(r.Context(), cloud.OBDFilter{
		VehicleID: win.id, From: win.from, To: win.to, PID: pid, After: win.after, Limit: win.limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		VehicleID string    `json:"vehicle_id"`
		Samples   []obdJSON `json:"samples"`
		Next      string    `json:"next,omitempty"`
	}{VehicleID: win.id, Samples: make([]obdJSON, 0, len(ss)), Next: cursorString(next, win.scope)}
	for _, x := range ss {
		out.Samples = append(out.Samples, obdJSON{
			StreamID: streamHex(x.StreamID), Seq: x.Seq, Time: Time(x.Time),
			PID: fmt.Sprintf("%02X", x.PID&0xff), Mode: fmt.Sprintf("%02X", x.PID>>8), Value: x.Value,
		})
	}
	s.json(w, http.StatusOK, out)
}

// parsePID reads a PID as two hex digits (Mode 01, e.g. "0C") or four (a
// service 01 to 0A and a PID, e.g. "090C"). Anything else, "0000" among
// them, is EINVALID.
func parsePID(v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 16, 16)
	switch {
	case err != nil || (len(v) != 2 && len(v) != 4) || strings.ContainsAny(v, "+-_"):
		return 0, cloud.Errorf(cloud.EINVALID, "invalid pid %q: want two hex digits (Mode 01, e.g. 0C) or four (service 01 to 0A and PID, e.g. 010C)", v)
	case len(v) == 2:
		return 0x0100 | uint16(n), nil
	case n>>8 < 0x01 || n>>8 > 0x0A:
		return 0, cloud.Errorf(cloud.EINVALID, "invalid pid %q: service %02X is not an OBD-II service (01 to 0A)", v, n>>8)
	}
	return uint16(n), nil
}

func cursorString(c *cloud.Cursor, scope string) string {
	if c == nil {
		return ""
	}
	return c.Encode(scope)
}

type eventJSON struct {
	StreamID string `json:"stream_id"`
	Seq      uint64 `json:"seq"`
	Time     Time   `json:"time"`
	Type     string `json:"type"`
	Code     string `json:"code,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Value    int64  `json:"value,omitempty"`
}

func toEventJSON(e *cloud.Event) eventJSON {
	return eventJSON{StreamID: streamHex(e.StreamID), Seq: e.Seq, Time: Time(e.Time), Type: cloud.EventTypeName(e.Type),
		Code: e.Code, Detail: e.Detail, Value: e.Value}
}

// events is GET /api/v1/vehicles/{id}/events?type=dtc_set,dtc_cleared&…
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.Events == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "events are not configured"))
		return
	}
	f := cloud.EventFilter{}
	types := r.URL.Query().Get("type")
	if types != "" {
		for _, name := range strings.Split(types, ",") {
			t, err := cloud.ParseEventType(strings.TrimSpace(name))
			if err != nil {
				s.Error(w, r, err)
				return
			}
			f.Types = append(f.Types, t)
		}
	}
	win, err := s.parseWindow(r, "events type="+types, "type")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f.VehicleID, f.From, f.To, f.After, f.Limit = win.id, win.from, win.to, win.after, win.limit
	es, next, err := s.Events.FindEvents(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		VehicleID string      `json:"vehicle_id"`
		Events    []eventJSON `json:"events"`
		Next      string      `json:"next,omitempty"`
	}{VehicleID: win.id, Events: make([]eventJSON, 0, len(es)), Next: cursorString(next, win.scope)}
	for _, e := range es {
		out.Events = append(out.Events, toEventJSON(e))
	}
	s.json(w, http.StatusOK, out)
}

type troubleCodeJSON struct {
	Code  string `json:"code"`
	Since Time   `json:"since"`
}

func toTroubleCodes(tcs []cloud.TroubleCode) []troubleCodeJSON {
	out := make([]troubleCodeJSON, 0, len(tcs))
	for _, tc := range tcs {
		out = append(out, troubleCodeJSON{Code: tc.Code, Since: Time(tc.Since)})
	}
	return out
}

// troubleCodes is GET /api/v1/vehicles/{id}/trouble-codes: the codes set
// and not cleared since. Their history is in events?type=dtc_set,dtc_cleared.
func (s *Server) troubleCodes(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err == nil && s.Events == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "events are not configured")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	tcs, err := s.Events.FindTroubleCodes(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, struct {
		VehicleID    string            `json:"vehicle_id"`
		TroubleCodes []troubleCodeJSON `json:"trouble_codes"`
	}{id, toTroubleCodes(tcs)})
}

// deviceHistory is GET /api/v1/vehicles/{id}/device-history: the agent's
// reported statuses over time.
func (s *Server) deviceHistory(w http.ResponseWriter, r *http.Request) {
	if s.Statuses == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "device statuses are not configured"))
		return
	}
	win, err := s.parseWindow(r, "device-history")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ds, next, err := s.Statuses.FindStatusHistory(r.Context(), cloud.StatusFilter{
		VehicleID: win.id, From: win.from, To: win.to, After: win.after, Limit: win.limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := struct {
		VehicleID string        `json:"vehicle_id"`
		Statuses  []*deviceJSON `json:"statuses"`
		Next      string        `json:"next,omitempty"`
	}{VehicleID: win.id, Statuses: make([]*deviceJSON, 0, len(ds)), Next: cursorString(next, win.scope)}
	for _, d := range ds {
		out.Statuses = append(out.Statuses, toDeviceJSON(d))
	}
	s.json(w, http.StatusOK, out)
}
