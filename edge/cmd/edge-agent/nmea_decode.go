package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/gps"
	"github.com/fleetgate/fleetgate/edge/serial"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

const nmeaDecodeUsage = `usage: edge-agent nmea-decode [FILE|-|PORT-URL]

Decodes NMEA 0183 as the agent does and prints one JSON object per fix on
stdout, with the keys the receiver gave a value for:
  time (RFC 3339, UTC, milliseconds), lat, lon, alt_m, speed_mps,
  course_deg, mode (1, 2 or 3), quality, sats, hdop
A summary of what was dropped goes to stderr at the end.

  FILE or -     a recording (- or nothing: standard input), read to its end
  PORT-URL      a device as in gps.port (/dev/ttyUSB0, serial:///dev/ttyUSB0?baud=9600,
                tcp://host:port), read until interrupted, reopened if it goes away
`

// fixJSON is one line of nmea-decode's output; nil fields are unknown.
type fixJSON struct {
	Time      string   `json:"time"`
	Lat       float64  `json:"lat"`
	Lon       float64  `json:"lon"`
	AltM      *float64 `json:"alt_m,omitempty"`
	SpeedMps  *float64 `json:"speed_mps,omitempty"`
	CourseDeg *float64 `json:"course_deg,omitempty"`
	Mode      *int32   `json:"mode,omitempty"`
	Quality   *int32   `json:"quality,omitempty"`
	Sats      *int32   `json:"sats,omitempty"`
	HDOP      *float64 `json:"hdop,omitempty"`
}

// newFixJSON renders a position as it would be stored: the wire's integer
// units turned back into the JSON's.
func newFixJSON(p telemetry.Position) fixJSON {
	f := fixJSON{
		Time: time.UnixMilli(p.UnixMs).UTC().Format("2006-01-02T15:04:05.000Z"),
		Lat:  p.Lat(),
		Lon:  p.Lon(),
	}
	scaled := func(bit telemetry.Field, v int32, div float64) *float64 {
		if p.Has&bit == 0 {
			return nil
		}
		x := float64(v) / div
		return &x
	}
	whole := func(bit telemetry.Field, v int32) *int32 {
		if p.Has&bit == 0 {
			return nil
		}
		return &v
	}
	f.AltM = scaled(telemetry.HasAlt, p.AltCm, 100)
	f.SpeedMps = scaled(telemetry.HasSpeed, p.SpeedMmps, 1000)
	f.CourseDeg = scaled(telemetry.HasCourse, p.CourseCdeg, 100)
	f.Mode = whole(telemetry.HasMode, p.Mode)
	f.Quality = whole(telemetry.HasQuality, p.Quality)
	f.Sats = whole(telemetry.HasSatsUsed, p.SatsUsed)
	f.HDOP = scaled(telemetry.HasHDOP, p.HDOPc, 100)
	return f
}

// nmeaDecode is the nmea-decode command; it returns the exit status: 0 when
// the input could be read (whatever it held), 1 when it could not be opened,
// 2 for a usage error.
func nmeaDecode(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 || (len(args) == 1 && slices.Contains([]string{"-h", "-help", "--help"}, args[0])) {
		fmt.Fprint(stderr, nmeaDecodeUsage)
		return 2
	}
	src := "-"
	if len(args) == 1 {
		src = args[0]
	}
	var counters edge.Counters
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	emit := func(p telemetry.Position) error {
		if err := enc.Encode(newFixJSON(p)); err != nil {
			return err
		}
		return out.Flush()
	}
	var err error
	if isRecording(src) {
		err = decodeRecording(src, stdin, &counters, emit)
	} else {
		err = decodePort(ctx, src, &counters, emit)
	}
	summarize(stderr, counters.Snapshot())
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent nmea-decode: %v\n", err)
		return 1
	}
	return 0
}

// isRecording says whether src names standard input or a regular file, as
// opposed to a device.
func isRecording(src string) bool {
	if src == "-" {
		return true
	}
	if strings.Contains(src, "://") {
		return false
	}
	fi, err := os.Stat(src)
	return err != nil && !strings.HasPrefix(src, "/dev/") || err == nil && fi.Mode().IsRegular()
}

func decodeRecording(src string, stdin io.Reader, counters *edge.Counters, emit func(telemetry.Position) error) error {
	r := stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	asm := gps.Assembler{Counters: counters}
	lr := gps.NewLineReader(r, 0, counters)
	for {
		line, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		for _, ep := range asm.Feed(line) {
			if ep.Fix {
				if err := emit(ep.Position); err != nil {
					return err
				}
			}
		}
	}
	if ep, ok := asm.Flush(); ok && ep.Fix {
		return emit(ep.Position)
	}
	return nil
}

// decodePort reads a device through the agent's GPS source (baud detection,
// reopening) until ctx is done.
func decodePort(ctx context.Context, url string, counters *edge.Counters, emit func(telemetry.Position) error) error {
	dev, err := serial.Parse(url)
	if err != nil {
		return err
	}
	src := &gps.Source{Device: dev, Counters: counters, Backoff: edge.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}}
	records := make(chan edge.Record, 64)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, records) }()
	for {
		select {
		case r := <-records:
			if r.Kind == edge.KindPosition {
				if err := emit(r.Position); err != nil {
					return err
				}
			}
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
}

// summarize writes what was decoded and dropped, from the gps counters.
func summarize(w io.Writer, c map[string]uint64) {
	var dropped []string
	for name, n := range c {
		name = strings.TrimPrefix(name, "gps.")
		switch name {
		case "fixes", "sentences", "bytes", "opens", "baud_locks", "week_rollover_corrected":
			continue
		}
		if n > 0 {
			dropped = append(dropped, fmt.Sprintf("%s %d", name, n))
		}
	}
	slices.Sort(dropped)
	fmt.Fprintf(w, "nmea-decode: %d fixes from %d sentences", c["gps.fixes"], c["gps.sentences"])
	if n := c["gps.week_rollover_corrected"]; n > 0 {
		fmt.Fprintf(w, " (%d dates corrected for GPS week rollover)", n)
	}
	if len(dropped) == 0 {
		fmt.Fprintln(w, "; nothing dropped")
		return
	}
	fmt.Fprintf(w, "; dropped or noted: %s\n", strings.Join(dropped, ", "))
}
