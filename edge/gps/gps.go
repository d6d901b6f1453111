// Package gps turns the NMEA 0183 byte stream of a GNSS receiver into
// positions: a LineReader cuts the stream into sentences (bounded length,
// resync at '$', binary bytes dropped), an Assembler checks each checksum,
// parses the sentences with github.com/adrianmo/go-nmea and merges the RMC and
// GGA of one epoch (same UTC time) into one telemetry.Position, and Source runs
// both over an edge.Device that it reopens with backoff when it fails.
//
// It never invents a position: a void RMC (status V) or a GGA of quality 0
// closes an epoch with no fix, and only what the receiver said is set (an
// empty field stays unknown). Everything dropped is counted under "gps.".
//
// Two-digit NMEA years are read with a fixed pivot: 80-99 are 19xx, 00-79 are
// 20xx. (Week-rollover correction is not done here yet.)
package gps
