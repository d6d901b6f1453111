package osrm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
)

// The answers in testdata are written from OSRM's HTTP API documentation
// (Response codes, match service, Route, RouteLeg, RouteStep objects).
func TestDecodeDocumentedAnswers(t *testing.T) {
	tests := []struct {
		file   string
		status int
		want   string // "ok", "nomatch", "toobig" or a cloud error code
	}{
		{"match-ok.json", 200, "ok"},
		{"nomatch.json", 400, "nomatch"},
		{"nosegment.json", 400, "nomatch"},
		{"toobig.json", 400, "toobig"},
		{"invalidvalue.json", 400, cloud.EINVALID},
		{"invalidoptions.json", 400, cloud.EINTERNAL},
		{"bad-index.json", 200, cloud.EUNAVAILABLE},
		{"match-ok.json", 503, cloud.EUNAVAILABLE},
	}
	for _, tt := range tests {
		body, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := decode(tt.status, body)
		got := cloud.ErrorCode(err)
		switch {
		case err == nil:
			got = "ok"
		case err == errTooBig:
			got = "toobig"
		case errors.Is(err, errNoMatch):
			got = "nomatch"
		}
		if got != tt.want {
			t.Errorf("%s (%d): %s (%v), want %s", tt.file, tt.status, got, err, tt.want)
		}
		if got == "ok" && r == nil {
			t.Errorf("%s: no response", tt.file)
		}
	}
	for _, garbage := range []string{"", "<html>502</html>", `{"message":"no code"}`, "null"} {
		if _, err := decode(200, []byte(garbage)); cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
			t.Errorf("%q: %v, want EUNAVAILABLE", garbage, err)
		}
	}
}

// TestSpansOfTheDocumentedAnswer: the legs of a matching connect the fixes
// of consecutive waypoints, across the outlier (a null tracepoint).
func TestSpansOfTheDocumentedAnswer(t *testing.T) {
	body, err := os.ReadFile("testdata/match-ok.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := decode(200, body)
	if err != nil {
		t.Fatal(err)
	}
	spans := r.spans(10)
	if len(spans) != 2 || spans[0].a != 10 || spans[0].b != 12 || spans[1].a != 12 || spans[1].b != 13 {
		t.Fatalf("spans %+v", spans)
	}
	m := stitch(spans)
	if len(m.Geometry) != 1 || len(m.Geometry[0]) != 4 || m.DistanceM != 15.3 || m.Confidence != 0.82 {
		t.Errorf("stitched %+v", m)
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, b)
		f.Add(400, b)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := decode(status, body)
		if err != nil {
			return
		}
		// An accepted answer never makes spans or stitching panic.
		stitch(r.spans(0))
	})
}
