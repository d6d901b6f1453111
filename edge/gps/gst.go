package gps

import nmea "github.com/adrianmo/go-nmea"

// TypeGST is the GNSS pseudorange error statistics sentence, which
// github.com/adrianmo/go-nmea v1.10.0 does not parse; the Assembler registers
// parseGST through the library's SentenceParser.CustomParsers.
const TypeGST = "GST"

// GST is the pseudorange noise statistics of one epoch (NMEA 0183 4.11):
//
//	$GPGST,hhmmss.ss,rms,smaj,smin,orient,lat,lon,alt*hh
//
// The error estimates are 1-sigma, in metres. Fields the receiver left empty
// are the zero Float64 (Valid false).
type GST struct {
	nmea.BaseSentence
	Time        nmea.Time    // UTC time of the fix the statistics belong to
	RMS         nmea.Float64 // RMS value of the standard deviation of the range inputs
	SemiMajor   nmea.Float64 // standard deviation of the semi-major axis of the error ellipse, m
	SemiMinor   nmea.Float64 // standard deviation of the semi-minor axis, m
	Orientation nmea.Float64 // orientation of the semi-major axis, degrees from true north
	LatErr      nmea.Float64 // standard deviation of the latitude error, m
	LonErr      nmea.Float64 // standard deviation of the longitude error, m
	AltErr      nmea.Float64 // standard deviation of the altitude error, m
}

// parseGST is a nmea.ParserFunc for GST. It returns the library's parse error
// for a field that is not a number or a missing field.
func parseGST(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	p.AssertType(TypeGST)
	return GST{
		BaseSentence: s,
		Time:         p.Time(0, "time"),
		RMS:          p.NullFloat64(1, "rms"),
		SemiMajor:    p.NullFloat64(2, "semi-major"),
		SemiMinor:    p.NullFloat64(3, "semi-minor"),
		Orientation:  p.NullFloat64(4, "orientation"),
		LatErr:       p.NullFloat64(5, "latitude error"),
		LonErr:       p.NullFloat64(6, "longitude error"),
		AltErr:       p.NullFloat64(7, "altitude error"),
	}, p.Err()
}
