// Package gps turns the NMEA 0183 byte stream of a GNSS receiver into
// positions: a LineReader cuts the stream into sentences (bounded length,
// resync at '$', binary bytes dropped, u-blox UBX frames skipped by their
// length), an Assembler checks each checksum, parses the sentences with
// github.com/adrianmo/go-nmea (GST through its CustomParsers; a field by
// field fallback for sentences it refuses over a field the fix does not
// need) and merges the RMC, GGA, GNS, GLL, VTG, GSA, GSV, ZDA and GST of
// one epoch, from any talker for the position sentences, into one
// telemetry.Position, and Source runs both over an edge.Device that it
// reopens with backoff when it fails, detecting the baud rate of a serial
// port.
//
// It never invents a position: an epoch that says there is no fix (a void
// RMC, a GGA of quality 0, ...) yields none, and only what the receiver said
// is set (an empty field stays unknown). The rules (epoch closing, what makes
// a fix, GPS week rollover, repeated and backwards epochs, jumps) are on
// Assembler and DefaultDateFloor. Everything dropped is counted under "gps.".
package gps
