// Package gps emulates a GNSS receiver: it turns the vehicle model's states
// into NMEA 0183 sentences (RMC, GGA, GSA) at a fixed rate of simulated time,
// and reports each fix with the values the sentences carry, parsed back from
// their text, for the ground truth.
package gps

import "time"

// Fix is one epoch of the receiver. Encode fills it with the values as carried
// on the wire; FromState with the model's unrounded values.
type Fix struct {
	Time      time.Time // UTC
	Valid     bool      // RMC status A, GGA quality > 0
	Lat, Lon  float64   // WGS-84 degrees
	AltM      float64   // above mean sea level
	SpeedMps  float64
	CourseDeg float64 // degrees true
	Quality   int     // GGA fix quality: 1 GPS
	Sats      int     // satellites used
	HDOP      float64
	VDOP      float64
	PDOP      float64
}

// Knot is the conversion the ground truth uses from knots (the NMEA unit of
// speed) to metres per second.
const Knot = 0.514444
