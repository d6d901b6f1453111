package httpapi

import (
	"bufio"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// geoJSON streams a vehicle's positions of win as GeoJSON (RFC 7946), as
// the rows come from the store: a FeatureCollection of Point features
// (geometry=point, the default) whose properties are the fix's measures, or
// one Feature with a LineString (geometry=linestring; null geometry for
// fewer than two fixes). Memory stays flat however long the track is. An
// error after the first bytes aborts the response (the client sees a
// truncated body, never a complete-looking one).
func (s *Server) geoJSON(w http.ResponseWriter, r *http.Request, win window) {
	if win.after != nil || r.URL.Query().Get("limit") != "" {
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "GeoJSON is the whole range at once: leave out limit and after"))
		return
	}
	line := false
	switch g := r.URL.Query().Get("geometry"); g {
	case "", "point":
	case "linestring":
		line = true
	default:
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "invalid geometry %q: want point or linestring", g))
		return
	}
	g := &geoWriter{w: w, vehicle: win.id, line: line}
	err := s.Positions.EachPosition(r.Context(), cloud.PositionFilter{VehicleID: win.id, From: win.from, To: win.to}, g.add)
	if err == nil {
		err = g.end(win.from, win.to)
	}
	if err == nil {
		return
	}
	if !g.started {
		s.Error(w, r, err)
		return
	}
	s.Logger.Warn("GeoJSON stream cut short", "vehicle_id", win.id, "fixes", g.n, "err", err)
	panic(http.ErrAbortHandler)
}

// geoWriter writes the GeoJSON of a track one fix at a time.
type geoWriter struct {
	w       http.ResponseWriter
	bw      *bufio.Writer
	vehicle string
	line    bool
	started bool
	n       int
	first   []byte // a LineString's first coordinates, until the second comes
	buf     []byte
}

func (g *geoWriter) start() {
	g.started = true
	g.w.Header().Set("Content-Type", "application/geo+json")
	g.w.WriteHeader(http.StatusOK)
	g.bw = bufio.NewWriterSize(g.w, 32<<10)
}

func (g *geoWriter) add(p *cloud.Position) error {
	if !g.started {
		g.start()
		if !g.line {
			g.bw.WriteString(`{"type":"FeatureCollection","features":[`)
		}
	}
	b := g.buf[:0]
	if g.line {
		b = appendCoords(b, p)
		switch g.n {
		case 0:
			g.first = append(g.first[:0], b...)
			g.n++
			return nil
		case 1:
			g.bw.WriteString(`{"type":"Feature","geometry":{"type":"LineString","coordinates":[`)
			g.bw.Write(g.first)
		}
		g.bw.WriteByte(',')
		_, err := g.bw.Write(b)
		g.buf = b
		g.n++
		return err
	}
	if g.n > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"type":"Feature","geometry":{"type":"Point","coordinates":`...)
	b = appendCoords(b, p)
	b = append(b, `},"properties":{"time":"`...)
	b = p.Time.UTC().AppendFormat(b, timeFormat)
	b = append(b, `","stream_id":"`...)
	b = append(b, streamHex(p.StreamID)...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, p.Seq, 10)
	b = appendFloat(b, "alt_m", p.AltM)
	b = appendFloat(b, "speed_mps", p.SpeedMPS)
	b = appendFloat(b, "course_deg", p.CourseDeg)
	b = appendInt(b, "mode", p.Mode)
	b = appendInt(b, "quality", p.Quality)
	b = appendInt(b, "sats", p.SatsUsed)
	b = appendFloat(b, "hdop", p.HDOP)
	b = append(b, "}}"...)
	_, err := g.bw.Write(b)
	g.buf = b
	g.n++
	return err
}

// end closes the document, writing it whole when there was no fix.
func (g *geoWriter) end(from, to time.Time) error {
	if !g.started {
		g.start()
		if !g.line {
			g.bw.WriteString(`{"type":"FeatureCollection","features":[`)
		}
	}
	props := func() {
		b := append(g.buf[:0], `"properties":{"vehicle_id":"`...)
		b = append(b, g.vehicle...)
		b = append(b, `","from":"`...)
		b = from.UTC().AppendFormat(b, timeFormat)
		b = append(b, `","to":"`...)
		b = to.UTC().AppendFormat(b, timeFormat)
		b = append(b, `","fixes":`...)
		b = strconv.AppendInt(b, int64(g.n), 10)
		b = append(b, '}')
		g.bw.Write(b)
	}
	switch {
	case !g.line:
		g.bw.WriteString(`],`)
		props()
		g.bw.WriteString("}\n")
	case g.n < 2:
		g.bw.WriteString(`{"type":"Feature","geometry":null,`)
		props()
		g.bw.WriteString("}\n")
	default:
		g.bw.WriteString(`]},`)
		props()
		g.bw.WriteString("}\n")
	}
	return g.bw.Flush()
}

// appendCoords appends [lon, lat] or [lon, lat, alt].
func appendCoords(b []byte, p *cloud.Position) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, p.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p.Lat, 'f', -1, 64)
	if p.AltM != nil {
		b = append(b, ',')
		b = strconv.AppendFloat(b, *p.AltM, 'f', -1, 64)
	}
	return append(b, ']')
}

func appendFloat(b []byte, key string, v *float64) []byte {
	if v == nil {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendFloat(b, *v, 'f', -1, 64)
}

func appendInt(b []byte, key string, v *int) []byte {
	if v == nil {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, int64(*v), 10)
}
