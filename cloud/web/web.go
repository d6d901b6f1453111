// Package web serves Fleetgate's dashboard: the page and the bundle built
// from this directory's TypeScript sources by `make web` (dist/, committed,
// embedded in the binary), so cloud-server serves it with no network access
// and no Node.js at build or run time. Every answer carries a strict
// Content-Security-Policy: scripts, styles and connections from the
// server's own origin only, images from it and the configured tile server.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

//go:embed dist
var dist embed.FS

// Config is what a deployment chooses about the dashboard.
type Config struct {
	// TileURL is the map's base layer, a Leaflet URL template such as
	// https://tile.openstreetmap.org/{z}/{x}/{y}.png ({s} in the host for
	// subdomains); empty: no base layer, positions and tracks on a plain
	// background.
	TileURL string
	// TileAttribution is shown on the map with the base layer (the tile
	// server's terms usually require it).
	TileAttribution string
}

// Validate returns an error naming what is wrong with the tile URL: it must
// be http or https with a host and the {z}, {x} and {y} placeholders, and
// {s} only as the host's first label.
func (c Config) Validate() error {
	_, err := c.tileSource()
	return err
}

// tileSource returns the CSP source of the tile server ("" for none).
func (c Config) tileSource() (string, error) {
	if c.TileURL == "" {
		return "", nil
	}
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(c.TileURL, p) {
			return "", fmt.Errorf("tile URL %q: no %s placeholder (want e.g. https://tile.example.org/{z}/{x}/{y}.png)", c.TileURL, p)
		}
	}
	scheme, rest, _ := strings.Cut(c.TileURL, "://")
	rest, sub := strings.CutPrefix(rest, "{s}.")
	if host, _, _ := strings.Cut(rest, "/"); strings.ContainsAny(host, "{}") {
		return "", fmt.Errorf("tile URL %q: a placeholder in the host may only be {s}, as its first label", c.TileURL)
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("tile URL %q: want an http or https URL with a host", c.TileURL)
	}
	if sub {
		return u.Scheme + "://*." + u.Host, nil
	}
	return u.Scheme + "://" + u.Host, nil
}

// Handler serves the page at / and the bundle under /assets/. Create it
// with New; it is safe for concurrent use.
type Handler struct {
	csp    string
	index  file
	icon   file
	assets map[string]file // by file name
}

// file is one answer, ready to send.
type file struct {
	body, gzipped []byte
	ctype, etag   string
}

func newFile(name string, body []byte) file {
	f := file{body: body, ctype: mime.TypeByExtension(path.Ext(name))}
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	f.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	switch path.Ext(name) {
	case ".js", ".css", ".html", ".svg", ".txt", ".json":
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		f.gzipped = b.Bytes()
	}
	return f
}

// New returns the dashboard's handler for c, or an error when c is invalid
// or the embedded bundle is incomplete (a broken build).
func New(c Config) (*Handler, error) {
	tiles, err := c.tileSource()
	if err != nil {
		return nil, err
	}
	var manifest map[string]string
	raw, err := dist.ReadFile("dist/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("dashboard bundle: %w (run make web)", err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("dashboard bundle: manifest.json: %w", err)
	}
	h := &Handler{assets: map[string]file{}}
	assets, err := fs.Sub(dist, "dist/assets")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		h.assets[p] = newFile(p, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard bundle: %w", err)
	}
	tmpl, err := template.ParseFS(dist, "dist/index.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard bundle: index.html: %w", err)
	}
	var page bytes.Buffer
	data := pageData{TileURL: c.TileURL, TileAttribution: c.TileAttribution, manifest: manifest}
	if err := tmpl.Execute(&page, data); err != nil {
		return nil, fmt.Errorf("dashboard bundle: index.html: %w", err)
	}
	for name, f := range manifest {
		if _, ok := h.assets[f]; !ok {
			return nil, fmt.Errorf("dashboard bundle: %s (%s) is missing", f, name)
		}
	}
	h.index = newFile("index.html", page.Bytes())
	h.icon = h.assets[manifest["favicon.svg"]]
	img := "'self'"
	if tiles != "" {
		img += " " + tiles
	}
	h.csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src " + img +
		"; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return h, nil
}

// pageData fills index.html in.
type pageData struct {
	TileURL, TileAttribution string
	manifest                 map[string]string
}

// Asset returns the file name, with its content hash, of a bundle asset.
func (p pageData) Asset(name string) (string, error) {
	f, ok := p.manifest[name]
	if !ok {
		return "", fmt.Errorf("no asset %q in the bundle", name)
	}
	return f, nil
}

// CSP returns the Content-Security-Policy the handler sends.
func (h *Handler) CSP() string { return h.csp }

// ServeHTTP answers GET and HEAD of / (the page, revalidated on every
// load), /assets/NAME (named by content hash: cached for a year) and
// /favicon.ico (the icon, which browsers ask for on pages that name none);
// anything else is 404 or 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/":
		hd.Set("Cache-Control", "no-cache")
		h.send(w, r, h.index)
	case r.URL.Path == "/favicon.ico":
		hd.Set("Cache-Control", "public, max-age=86400")
		h.send(w, r, h.icon)
	case strings.HasPrefix(r.URL.Path, "/assets/"):
		f, ok := h.assets[strings.TrimPrefix(r.URL.Path, "/assets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.send(w, r, f)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request, f file) {
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if f.gzipped != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hd.Set("Content-Encoding", "gzip")
			body = f.gzipped
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip
// (listed, without q=0).
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
