package gps

import (
	"math"
	"time"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// earthRadius is the mean Earth radius (IUGG), metres.
const earthRadius = 6371008.8

// jump applies the jump rule to fix p after fix prev; it returns nil for a
// plausible fix and counts gps.jumps otherwise.
func (a *Assembler) jump(prev, p *telemetry.Position) *Jump {
	speed, slack := a.MaxSpeed, a.JumpSlack
	if speed <= 0 {
		speed = DefaultMaxSpeed
	}
	if slack <= 0 {
		slack = DefaultJumpSlack
	}
	dt := time.Duration(p.UnixMs-prev.UnixMs) * time.Millisecond
	d := distance(prev.Lat(), prev.Lon(), p.Lat(), p.Lon())
	if d <= slack+speed*dt.Seconds() {
		return nil
	}
	a.inc("jumps")
	return &Jump{Metres: d, Elapsed: dt}
}

// distance is the great-circle (haversine) distance in metres.
func distance(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(h, 1)))
}
