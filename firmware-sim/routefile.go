package firmwaresim

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Route files: a tester draws or records a path and drives it. Both formats
// give a Route; Route.Validate has been run on it.
//
// GPX (1.0 or 1.1): the points of the first track (its segments joined), or
// else of the first route. <ele> gives the altitude, <name> the street. A
// point's <type> holds comma-separated flags: "stop" (a traffic light or
// junction), "tunnel" (no sky from this point to the next), "limit=30" (km/h
// from here on). The track's or route's <type> may say "loop" or
// "out-and-back" and "limit=50" (the default limit, else 50 km/h).
//
// GeoJSON (RFC 7946): the first LineString or MultiLineString (its lines
// joined) of a FeatureCollection, a Feature or a bare geometry; positions are
// [lon, lat] or [lon, lat, alt]. Optional properties of the feature: "name",
// "description", "loop" (true or false), "default_limit_kmh", "stops" (vertex
// indices), "tunnels" ([[from, to], ...]: no sky from vertex from to vertex
// to), "limits_kmh" ([[index, km/h], ...]).
//
// Without a "loop" or "out-and-back" setting, a path whose ends lie within
// 30 m of each other is a loop, any other is driven there and back. Points
// closer than a metre to the one before are merged into it.

// ParseGPX reads a route from a GPX document. name is used when the file
// names no track or route. It returns an error naming the point at fault.
func ParseGPX(r io.Reader, name string) (*Route, error) {
	var doc struct {
		Name string `xml:"metadata>name"`
		Desc string `xml:"metadata>desc"`
		Trks []struct {
			gpxPath
			Segs []struct {
				Pts []gpxPoint `xml:"trkpt"`
			} `xml:"trkseg"`
		} `xml:"trk"`
		Rtes []struct {
			gpxPath
			Pts []gpxPoint `xml:"rtept"`
		} `xml:"rte"`
	}
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("gpx: %w", err)
	}
	var (
		path gpxPath
		pts  []gpxPoint
	)
	switch {
	case len(doc.Trks) > 0:
		path = doc.Trks[0].gpxPath
		for _, s := range doc.Trks[0].Segs {
			pts = append(pts, s.Pts...)
		}
	case len(doc.Rtes) > 0:
		path, pts = doc.Rtes[0].gpxPath, doc.Rtes[0].Pts
	default:
		return nil, errors.New("gpx: no track (trk) or route (rte)")
	}
	rt := &Route{Name: firstOf(path.Name, doc.Name, name), Description: firstOf(path.Desc, doc.Desc), DefaultLimitKmh: 50}
	loop, err := rt.applyFlags(path.Type, "gpx: track type", nil)
	if err != nil {
		return nil, err
	}
	wps := make([]Waypoint, len(pts))
	for i, p := range pts {
		wps[i] = Waypoint{Lat: p.Lat, Lon: p.Lon, AltM: p.Ele, Street: strings.TrimSpace(p.Name)}
		if _, err := rt.applyFlags(p.Type, fmt.Sprintf("gpx: point %d at %.6f,%.6f", i+1, p.Lat, p.Lon), &wps[i]); err != nil {
			return nil, err
		}
	}
	return finishRoute(rt, wps, loop, "gpx")
}

type gpxPath struct {
	Name string `xml:"name"`
	Desc string `xml:"desc"`
	Type string `xml:"type"`
}

type gpxPoint struct {
	Lat  float64 `xml:"lat,attr"`
	Lon  float64 `xml:"lon,attr"`
	Ele  float64 `xml:"ele"`
	Name string  `xml:"name"`
	Type string  `xml:"type"`
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x = strings.TrimSpace(x); x != "" {
			return x
		}
	}
	return ""
}

// applyFlags reads a GPX <type>: point flags into w, or, with w nil, route
// settings into r. loop is nil when the route's shape is not given.
func (r *Route) applyFlags(flags, where string, w *Waypoint) (loop *bool, err error) {
	for _, f := range strings.FieldsFunc(strings.ToLower(flags), func(c rune) bool { return c == ',' || c == ';' || c == ' ' }) {
		k, v, hasValue := strings.Cut(f, "=")
		switch {
		case k == "limit" && hasValue:
			kmh, err := strconv.ParseFloat(v, 64)
			if err != nil || kmh <= 0 || kmh > 250 {
				return nil, fmt.Errorf("%s: limit %q: want km/h, more than 0 and at most 250", where, v)
			}
			if w != nil {
				w.LimitKmh = kmh
			} else {
				r.DefaultLimitKmh = kmh
			}
		case w != nil && f == "stop":
			w.Stop = true
		case w != nil && f == "tunnel":
			w.Tunnel = true
		case w == nil && (f == "loop" || f == "out-and-back"):
			b := f == "loop"
			loop = &b
		default:
			want := `"loop", "out-and-back", "limit=KMH"`
			if w != nil {
				want = `"stop", "tunnel", "limit=KMH"`
			}
			return nil, fmt.Errorf("%s: unknown flag %q (want %s)", where, f, want)
		}
	}
	return loop, nil
}

// ParseGeoJSON reads a route from a GeoJSON document. name is used when the
// feature has no "name" property.
func ParseGeoJSON(r io.Reader, name string) (*Route, error) {
	var doc geoObject
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("geojson: %w", err)
	}
	f, ok := doc.line()
	if !ok {
		return nil, errors.New("geojson: no LineString or MultiLineString")
	}
	var props struct {
		Name        string       `json:"name"`
		Description string       `json:"description"`
		Loop        *bool        `json:"loop"`
		Limit       *float64     `json:"default_limit_kmh"`
		Stops       []int        `json:"stops"`
		Tunnels     [][2]int     `json:"tunnels"`
		Limits      [][2]float64 `json:"limits_kmh"`
	}
	if len(f.Properties) > 0 && string(f.Properties) != "null" {
		if err := json.Unmarshal(f.Properties, &props); err != nil {
			return nil, fmt.Errorf("geojson: properties: %w", err)
		}
	}
	var coords [][]float64
	switch f.Geometry.Type {
	case "LineString":
		if err := json.Unmarshal(f.Geometry.Coordinates, &coords); err != nil {
			return nil, fmt.Errorf("geojson: LineString coordinates: %w", err)
		}
	case "MultiLineString":
		var lines [][][]float64
		if err := json.Unmarshal(f.Geometry.Coordinates, &lines); err != nil {
			return nil, fmt.Errorf("geojson: MultiLineString coordinates: %w", err)
		}
		for _, l := range lines {
			coords = append(coords, l...)
		}
	}
	rt := &Route{Name: firstOf(props.Name, name), Description: props.Description, DefaultLimitKmh: 50}
	if props.Limit != nil {
		if *props.Limit <= 0 || *props.Limit > 250 {
			return nil, fmt.Errorf("geojson: default_limit_kmh %v: want more than 0 and at most 250", *props.Limit)
		}
		rt.DefaultLimitKmh = *props.Limit
	}
	wps := make([]Waypoint, len(coords))
	for i, c := range coords {
		if len(c) < 2 || len(c) > 3 {
			return nil, fmt.Errorf("geojson: position %d has %d numbers, want [lon, lat] or [lon, lat, alt]", i, len(c))
		}
		wps[i] = Waypoint{Lon: c[0], Lat: c[1]}
		if len(c) == 3 {
			wps[i].AltM = c[2]
		}
	}
	index := func(what string, i int) error {
		if i < 0 || i >= len(wps) {
			return fmt.Errorf("geojson: %s: vertex %d does not exist (the line has %d, from 0)", what, i, len(wps))
		}
		return nil
	}
	for _, i := range props.Stops {
		if err := index("stops", i); err != nil {
			return nil, err
		}
		wps[i].Stop = true
	}
	for _, tn := range props.Tunnels {
		if err := errors.Join(index("tunnels", tn[0]), index("tunnels", tn[1])); err != nil {
			return nil, err
		}
		if tn[1] <= tn[0] {
			return nil, fmt.Errorf("geojson: tunnels: [%d, %d] must go forward", tn[0], tn[1])
		}
		for i := tn[0]; i < tn[1]; i++ {
			wps[i].Tunnel = true
		}
	}
	for _, l := range props.Limits {
		i := int(l[0])
		if err := index("limits_kmh", i); err != nil {
			return nil, err
		}
		if float64(i) != l[0] || l[1] <= 0 || l[1] > 250 {
			return nil, fmt.Errorf("geojson: limits_kmh: [%v, %v]: want [vertex index, km/h up to 250]", l[0], l[1])
		}
		wps[i].LimitKmh = l[1]
	}
	return finishRoute(rt, wps, props.Loop, "geojson")
}

// geoObject is any GeoJSON object, decoded as far as routes need.
type geoObject struct {
	Type        string          `json:"type"`
	Features    []geoObject     `json:"features"`
	Geometry    *geoObject      `json:"geometry"`
	Properties  json.RawMessage `json:"properties"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// line returns the first feature holding a line, as a Feature.
func (o geoObject) line() (geoObject, bool) {
	switch o.Type {
	case "FeatureCollection":
		for _, f := range o.Features {
			if l, ok := f.line(); ok {
				return l, true
			}
		}
	case "Feature":
		if o.Geometry != nil && (o.Geometry.Type == "LineString" || o.Geometry.Type == "MultiLineString") {
			return o, true
		}
	case "LineString", "MultiLineString":
		return geoObject{Type: "Feature", Geometry: &o}, true
	}
	return geoObject{}, false
}

// finishRoute merges points closer than a metre, decides loop or
// out-and-back, and validates.
func finishRoute(r *Route, wps []Waypoint, loop *bool, format string) (*Route, error) {
	if r.Name == "" {
		r.Name = "route"
	}
	for i, w := range wps {
		if math.IsNaN(w.Lat) || math.IsNaN(w.Lon) || math.Abs(w.Lat) > 85 || math.Abs(w.Lon) > 180 {
			return nil, fmt.Errorf("%s: point %d: bad position %v,%v", format, i, w.Lat, w.Lon)
		}
	}
	var kept []Waypoint
	for _, w := range wps {
		if n := len(kept); n > 0 && distanceM(kept[n-1], w) < 1 {
			k := &kept[n-1]
			k.Stop, k.Tunnel = k.Stop || w.Stop, k.Tunnel || w.Tunnel
			if w.LimitKmh > 0 {
				k.LimitKmh = w.LimitKmh
			}
			continue
		}
		kept = append(kept, w)
	}
	if len(kept) < 2 {
		return nil, fmt.Errorf("%s: route %q has %d distinct points, need at least 2", format, r.Name, len(kept))
	}
	closed := distanceM(kept[0], kept[len(kept)-1]) < 30
	if loop != nil {
		closed = *loop
	}
	if closed && len(kept) > 2 && distanceM(kept[0], kept[len(kept)-1]) < 1 {
		kept = kept[:len(kept)-1]
	}
	r.OutAndBack = !closed
	r.Waypoints = kept
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return r, nil
}

// distanceM is the distance between two waypoints (equirectangular).
func distanceM(a, b Waypoint) float64 {
	lat := (a.Lat + b.Lat) / 2 * math.Pi / 180
	dx := (b.Lon - a.Lon) * math.Pi / 180 * math.Cos(lat) * earthRadiusM
	dy := (b.Lat - a.Lat) * math.Pi / 180 * earthRadiusM
	return math.Hypot(dx, dy)
}
