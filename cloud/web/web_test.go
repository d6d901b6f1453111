package web_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/cloud/web"
)

// TestBundleIsBuiltFromTheSources fails when the sources (src/, the
// package files, the build script) changed since dist/ was built: run
// `make web` and commit dist/ with them. build.mjs writes the same hash.
func TestBundleIsBuiltFromTheSources(t *testing.T) {
	files := []string{"build.mjs", "package.json", "package-lock.json", "tsconfig.json"}
	err := filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.ToSlash(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(f + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
	}
	built, err := os.ReadFile("dist/SOURCES.sha256")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), strings.TrimSpace(string(built)); got != want {
		t.Errorf("dist/ was built from other sources (hash %s, the sources' %s): run make web and commit cloud/web/dist", want, got)
	}
}

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// TestPage: the page names the bundle's assets, carries the tile layer's
// settings, has no inline script or style, and comes with the strict
// headers.
func TestPage(t *testing.T) {
	h, err := web.New(web.Config{TileURL: "https://tile.example.org/{z}/{x}/{y}.png", TileAttribution: `© "Example" <maps>`})
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, h, "GET", "/")
	page := body(t, res)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	want := map[string]string{
		"Content-Security-Policy": strings.Replace(wantCSP, "img-src 'self'", "img-src 'self' https://tile.example.org", 1),
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, s := range []string{
		`<meta name="fleetgate:tile-url" content="https://tile.example.org/{z}/{x}/{y}.png">`,
		`<meta name="fleetgate:tile-attribution" content="© &#34;Example&#34; &lt;maps&gt;">`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %s:\n%s", s, page)
		}
	}
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0], `src="/assets/app-`) {
		t.Errorf("scripts %q: want one, loaded from /assets/", scripts)
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<style") || strings.Contains(page, "javascript:") || strings.Contains(page, "</script>\n<script>") {
		t.Errorf("inline style or script in the page:\n%s", page)
	}
	// Every asset the page names is served.
	for _, m := range regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		if res := get(t, h, "GET", m[1]); res.StatusCode != 200 {
			t.Errorf("GET %s: %d", m[1], res.StatusCode)
		}
	}
}

// TestAssets: hashed names are cached for good, compressed when the
// browser accepts it, revalidated by ETag; unknown paths are 404 and
// other methods 405.
func TestAssets(t *testing.T) {
	h, err := web.New(web.Config{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("dist/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]string
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	js := "/assets/" + manifest["app.js"]
	plain := get(t, h, "GET", js)
	if plain.StatusCode != 200 || plain.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		plain.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("GET %s: %d %v", js, plain.StatusCode, plain.Header)
	}
	if got := plain.Header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("CSP %q, want %q", got, wantCSP)
	}
	code := body(t, plain)
	zipped := get(t, h, "GET", js, "Accept-Encoding", "br, gzip;q=0.8")
	if zipped.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(zipped.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("with gzip accepted: %v", zipped.Header)
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, []byte(code)) {
		t.Errorf("the gzipped answer is not the script (%v)", err)
	}
	if res := get(t, h, "GET", js, "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got %q", res.Header.Get("Content-Encoding"))
	}
	if res := get(t, h, "GET", js, "If-None-Match", plain.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res.StatusCode)
	}
	if res := get(t, h, "HEAD", js); res.StatusCode != 200 || body(t, res) != "" || res.Header.Get("Content-Length") != plain.Header.Get("Content-Length") {
		t.Errorf("HEAD: %d, length %s", res.StatusCode, res.Header.Get("Content-Length"))
	}
	for _, p := range []string{"/assets/nope.js", "/assets/", "/index.html", "/assets/../dist/manifest.json"} {
		if res := get(t, h, "GET", p); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	if res := get(t, h, "POST", "/"); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	if res := get(t, h, "GET", "/favicon.ico"); res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.ico: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lic := get(t, h, "GET", "/assets/THIRD_PARTY_LICENSES.txt")
	if text := body(t, lic); lic.StatusCode != 200 || !strings.Contains(text, "leaflet 1.9.4 (BSD-2-Clause)") || !strings.Contains(text, "uplot") {
		t.Errorf("the licences of the bundled packages: %d\n%s", lic.StatusCode, text)
	}
}

// TestTileURL: the tile server's origin, and only it, joins img-src; a
// URL the map cannot use is refused with the reason.
func TestTileURL(t *testing.T) {
	for _, c := range []struct {
		url, img, err string
	}{
		{"", "img-src 'self';", ""},
		{"https://tile.openstreetmap.org/{z}/{x}/{y}.png", "img-src 'self' https://tile.openstreetmap.org;", ""},
		{"https://{s}.tile.example.org:8443/v1/{z}/{x}/{y}.png?key=abc", "img-src 'self' https://*.tile.example.org:8443;", ""},
		{"http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png", "img-src 'self' http://127.0.0.1:8080;", ""},
		{"https://tile.example.org/{z}/{x}.png", "", "no {y} placeholder"},
		{"ftp://tile.example.org/{z}/{x}/{y}.png", "", "want an http or https URL"},
		{"/tiles/{z}/{x}/{y}.png", "", "want an http or https URL"},
		{"https://a.{s}.example.org/{z}/{x}/{y}.png", "", "may only be {s}"},
	} {
		cfg := web.Config{TileURL: c.url}
		h, err := web.New(cfg)
		if verr := cfg.Validate(); (verr == nil) != (err == nil) {
			t.Errorf("%q: Validate %v but New %v", c.url, verr, err)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.url, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.url, err)
			continue
		}
		if !strings.Contains(h.CSP(), c.img) {
			t.Errorf("%q: CSP %q, want %q", c.url, h.CSP(), c.img)
		}
	}
}
