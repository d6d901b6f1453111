package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// DefaultWindow is how far before `to` a history query starts when `from` is
// not given.
const DefaultWindow = 24 * time.Hour

// window is the part of a history request common to positions and OBD.
type window struct {
	id       string
	from, to time.Time
	after    *cloud.Cursor
	limit    int
}

// parseWindow reads {id}, from, to, limit and after, and refuses any other
// parameter but those in extra, with EINVALID errors that say what is wrong.
func (s *Server) parseWindow(r *http.Request, extra ...string) (window, error) {
	var w window
	var err error
	if w.id, err = vehicleID(r); err != nil {
		return w, err
	}
	if err := checkParams(r, append([]string{"from", "to", "limit", "after"}, extra...)); err != nil {
		return w, err
	}
	q := r.URL.Query()
	w.to = s.Now()
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
	w.limit = cloud.DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > cloud.MaxLimit {
			return w, cloud.Errorf(cloud.EINVALID, "invalid limit %q: want a whole number from 1 to %d", v, cloud.MaxLimit)
		}
		w.limit = n
	}
	if v := q.Get("after"); v != "" {
		c, err := cloud.ParseCursor(v)
		if err != nil {
			return w, err
		}
		w.after = &c
	}
	return w, nil
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

func (s *Server) positions(w http.ResponseWriter, r *http.Request) {
	win, err := s.parseWindow(r)
	if err != nil {
		s.Error(w, r, err)
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
	}{VehicleID: win.id, Positions: make([]positionJSON, 0, len(ps)), Next: cursorString(next)}
	for _, p := range ps {
		out.Positions = append(out.Positions, positionJSON{
			StreamID: streamHex(p.StreamID), Seq: p.Seq, Time: Time(p.Time), Lat: p.Lat, Lon: p.Lon,
			AltM: p.AltM, SpeedMPS: p.SpeedMPS, CourseDeg: p.CourseDeg, Mode: p.Mode, Quality: p.Quality,
			Sats: p.SatsUsed, HDOP: p.HDOP, GeoidSepM: p.GeoidSepM, SatsInView: p.SatsInView, VDOP: p.VDOP,
			PDOP: p.PDOP, ErrLatM: p.ErrLatM, ErrLonM: p.ErrLonM, ErrAltM: p.ErrAltM,
		})
	}
	s.json(w, http.StatusOK, out)
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
	win, err := s.parseWindow(r, "pid")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var pid uint16
	if v := r.URL.Query().Get("pid"); v != "" {
		if pid, err = parsePID(v); err != nil {
			s.Error(w, r, err)
			return
		}
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
	}{VehicleID: win.id, Samples: make([]obdJSON, 0, len(ss)), Next: cursorString(next)}
	for _, x := range ss {
		out.Samples = append(out.Samples, obdJSON{
			StreamID: streamHex(x.StreamID), Seq: x.Seq, Time: Time(x.Time),
			PID: fmt.Sprintf("%02X", x.PID&0xff), Mode: fmt.Sprintf("%02X", x.PID>>8), Value: x.Value,
		})
	}
	s.json(w, http.StatusOK, out)
}

// parsePID reads a PID as two hex digits (Mode 01, e.g. "0C") or four (mode
// and PID, e.g. "090C").
func parsePID(v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 16, 16)
	switch {
	case err != nil || (len(v) != 2 && len(v) != 4):
		return 0, cloud.Errorf(cloud.EINVALID, "invalid pid %q: want two hex digits (Mode 01, e.g. 0C) or four (mode and PID, e.g. 010C)", v)
	case len(v) == 2:
		return 0x0100 | uint16(n), nil
	}
	return uint16(n), nil
}

func cursorString(c *cloud.Cursor) string {
	if c == nil {
		return ""
	}
	return c.String()
}
