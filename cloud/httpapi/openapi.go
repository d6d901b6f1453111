package httpapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The OpenAPI document is written by hand in openapi.yaml, next to the
// code, and embedded: it is reviewed as the contract it is, the server
// serves it as JSON, /docs renders it, and the tests hold the code to it
// (every route is in it and the reverse; every response the tests get
// validates against it). Generating it from the handlers would need
// annotations richer than the code and read worse.
//
//go:embed openapi.yaml
var openapiYAML []byte

var (
	docOnce sync.Once
	docJSON []byte
	docHTML []byte
	docErr  error
)

// OpenAPI returns the OpenAPI document as JSON.
func OpenAPI() ([]byte, error) {
	docOnce.Do(loadDoc)
	return docJSON, docErr
}

func loadDoc() {
	var v any
	if err := yaml.Unmarshal(openapiYAML, &v); err != nil {
		docErr = fmt.Errorf("openapi.yaml: %w", err)
		return
	}
	if docJSON, docErr = json.Marshal(v); docErr != nil {
		docErr = fmt.Errorf("openapi.yaml as JSON: %w", docErr)
		return
	}
	docHTML, docErr = renderDocs(docJSON)
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := OpenAPI()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// docs is GET /docs: the document as one HTML page, made by the server
// from it (no script, no stylesheet or font from elsewhere: it works
// offline).
func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	if _, err := OpenAPI(); err != nil {
		s.Error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Cache-Control", "public, max-age=300")
	w.Write(docHTML)
}

// The parts of an OpenAPI document the page shows.
type (
	apiDoc struct {
		Info struct {
			Title, Version, Description string
		}
		Tags []struct {
			Name, Description string
		}
		Paths      map[string]map[string]*apiOp
		Components struct {
			Schemas    map[string]*apiSchema
			Parameters map[string]*apiParam
			Responses  map[string]*apiResponse
		}
	}
	apiOp struct {
		Summary, Description, OperationID string
		Tags                              []string
		Role                              string `json:"x-role"`
		Parameters                        []*apiParam
		RequestBody                       *struct {
			Content map[string]struct{ Schema *apiSchema }
		}
		Responses map[string]*apiResponse
	}
	apiParam struct {
		Ref         string `json:"$ref"`
		Name, In    string
		Required    bool
		Description string
		Schema      *apiSchema
	}
	apiResponse struct {
		Ref         string `json:"$ref"`
		Description string
		Content     map[string]struct{ Schema *apiSchema }
	}
	apiSchema struct {
		Ref                  string `json:"$ref"`
		Type                 string
		Format               string
		Description          string
		Enum                 []any
		Pattern              string
		Minimum, Maximum     *float64
		Default, Example     any
		Required             []string
		Properties           map[string]*apiSchema
		Items                *apiSchema
		AllOf                []*apiSchema
		AdditionalProperties any
		Nullable             bool
	}
)

// renderDocs makes the /docs page from the document's JSON.
func renderDocs(docJSON []byte) ([]byte, error) {
	var d apiDoc
	if err := json.Unmarshal(docJSON, &d); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document: %w", err)
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	e := html.EscapeString
	p(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`)
	p(`<title>%s</title><style>%s</style></head><body>`, e(d.Info.Title), docsCSS)
	p(`<nav><h2>%s</h2><p><a href="/openapi.json">openapi.json</a></p><ul>`, e(d.Info.Title))
	type entry struct {
		path, method string
		op           *apiOp
	}
	var ops []entry
	for _, path := range slices.Sorted(mapKeys(d.Paths)) {
		for _, m := range []string{"get", "post", "put", "patch", "delete"} {
			if op, ok := d.Paths[path][m]; ok {
				ops = append(ops, entry{path, m, op})
			}
		}
	}
	// In the order of the document's tags, then by path.
	tagRank := func(o entry) int {
		for i, t := range d.Tags {
			if len(o.op.Tags) > 0 && o.op.Tags[0] == t.Name {
				return i
			}
		}
		return len(d.Tags)
	}
	slices.SortStableFunc(ops, func(a, b entry) int { return tagRank(a) - tagRank(b) })
	for _, o := range ops {
		p(`<li><a href="#%s"><span class="m %s">%s</span> %s</a></li>`, e(o.op.OperationID), o.method, strings.ToUpper(o.method), e(o.path))
	}
	p(`<li><a href="#schemas">Schemas</a></li></ul></nav><main>`)
	var pending []string // inline response bodies, shown after an operation's table
	p(`<h1>%s <small>version %s</small></h1>%s`, e(d.Info.Title), e(d.Info.Version), markdown(d.Info.Description))
	for _, o := range ops {
		op := o.op
		p(`<section id="%s"><h2><span class="m %s">%s</span> <code>%s</code></h2>`, e(op.OperationID), o.method, strings.ToUpper(o.method), e(o.path))
		role := op.Role
		if role == "none" || role == "" {
			role = "no token needed"
		} else {
			role = "token role: " + role + " or above"
		}
		p(`<p class="sum">%s <span class="role">%s</span></p>%s`, e(op.Summary), e(role), markdown(op.Description))
		if len(op.Parameters) > 0 {
			p(`<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>`)
			for _, prm := range op.Parameters {
				if prm.Ref != "" {
					prm = d.Components.Parameters[refName(prm.Ref)]
				}
				if prm == nil {
					continue
				}
				req := ""
				if prm.Required {
					req = " <b>required</b>"
				}
				p(`<tr><td><code>%s</code>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`, e(prm.Name), req, e(prm.In), typeHTML(prm.Schema), inline(prm.Description))
			}
			p(`</table>`)
		}
		if rb := op.RequestBody; rb != nil {
			for _, ct := range slices.Sorted(mapKeys(rb.Content)) {
				p(`<h3>Request body <code>%s</code></h3>%s`, e(ct), schemaHTML(rb.Content[ct].Schema))
			}
		}
		p(`<h3>Responses</h3><table><tr><th>status</th><th>description</th><th>body</th></tr>`)
		for _, st := range slices.Sorted(mapKeys(op.Responses)) {
			resp := op.Responses[st]
			if resp.Ref != "" {
				resp = d.Components.Responses[refName(resp.Ref)]
			}
			if resp == nil {
				continue
			}
			var bodies, inlined []string
			for _, ct := range slices.Sorted(mapKeys(resp.Content)) {
				sc := resp.Content[ct].Schema
				typ := typeHTML(sc)
				if sc != nil && sc.Ref == "" && len(sc.Properties) > 0 {
					typ = "object (below)"
					inlined = append(inlined, `<h4>`+e(st)+` <code>`+e(ct)+`</code></h4>`+schemaHTML(sc))
				}
				bodies = append(bodies, "<code>"+e(ct)+"</code> "+typ)
			}
			p(`<tr><td>%s</td><td>%s</td><td>%s</td></tr>`, e(st), inline(resp.Description), strings.Join(bodies, "<br>"))
			pending = append(pending, inlined...)
		}
		p(`</table>`)
		for _, in := range pending {
			p(`%s`, in)
		}
		pending = pending[:0]
		p(`</section>`)
	}
	p(`<section id="schemas"><h2>Schemas</h2>`)
	for _, name := range slices.Sorted(mapKeys(d.Components.Schemas)) {
		p(`<div class="schema" id="schema-%s"><h3>%s</h3>%s</div>`, e(name), e(name), schemaHTML(d.Components.Schemas[name]))
	}
	p(`</section></main></body></html>`)
	return b.Bytes(), nil
}

const docsCSS = `body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1b1f24;display:flex}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:19rem;flex:none;background:#f4f5f7;padding:0 1rem;box-sizing:border-box;font-size:13px}
nav ul{list-style:none;padding:0}nav li{margin:.2rem 0}nav a{text-decoration:none;color:#1b1f24}
main{padding:1rem 2rem;max-width:60rem}section{border-top:1px solid #dde;padding-top:.5rem;margin-top:1.5rem}
h1 small{font-size:.5em;color:#667}code,pre{font:13px ui-monospace,monospace;background:#f4f5f7;border-radius:3px}
code{padding:0 .2em}pre{padding:.6rem;overflow:auto}table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #dde;padding:.25rem .45rem;text-align:left;vertical-align:top}th{background:#f4f5f7}
.m{display:inline-block;min-width:3.6em;font:bold 12px ui-monospace,monospace;color:#fff;border-radius:3px;padding:1px 4px;text-align:center}
.get{background:#2f7d32}.post{background:#1d5fb4}.delete{background:#b3261e}.put,.patch{background:#8a5a00}
.sum{font-weight:600}.role{font-weight:normal;color:#667;margin-left:.5em}.schema{margin-bottom:1rem}`

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func refName(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

// typeHTML writes a schema's type in one line, linking named schemas.
func typeHTML(s *apiSchema) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		n := html.EscapeString(refName(s.Ref))
		return `<a href="#schema-` + n + `">` + n + `</a>`
	}
	if len(s.AllOf) == 1 {
		return typeHTML(s.AllOf[0])
	}
	t := s.Type
	switch {
	case t == "array":
		return "array of " + typeHTML(s.Items)
	case t == "object" && s.Properties == nil:
		if a, ok := s.AdditionalProperties.(map[string]any); ok {
			if at, ok := a["type"].(string); ok {
				return "object of " + html.EscapeString(at)
			}
		}
	case s.Format != "":
		t += " (" + s.Format + ")"
	}
	if len(s.Enum) > 0 {
		var vs []string
		for _, v := range s.Enum {
			vs = append(vs, fmt.Sprint(v))
		}
		t += ": " + strings.Join(vs, ", ")
	}
	if s.Minimum != nil || s.Maximum != nil {
		t += " " + bounds(s.Minimum, s.Maximum)
	}
	if s.Pattern != "" {
		t += " matching <code>" + html.EscapeString(s.Pattern) + "</code>"
	}
	if s.Default != nil {
		t += ", default " + html.EscapeString(fmt.Sprint(s.Default))
	}
	if s.Nullable {
		t += " or null"
	}
	return html.EscapeString(t)
}

func bounds(lo, hi *float64) string {
	f := func(v *float64) string { return strconv.FormatFloat(*v, 'f', -1, 64) }
	switch {
	case lo != nil && hi != nil:
		return "[" + f(lo) + " to " + f(hi) + "]"
	case lo != nil:
		return "≥ " + f(lo)
	}
	return "≤ " + f(hi)
}

// schemaHTML writes an object schema as a table of its properties, any
// other schema as its type.
func schemaHTML(s *apiSchema) string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	if s.Description != "" {
		b.WriteString(markdown(s.Description))
	}
	if s.Ref != "" || len(s.Properties) == 0 {
		b.WriteString("<p>" + typeHTML(s) + "</p>")
		return b.String()
	}
	b.WriteString(`<table><tr><th>field</th><th>type</th><th>description</th></tr>`)
	for _, name := range slices.Sorted(mapKeys(s.Properties)) {
		prop := s.Properties[name]
		req := ""
		if slices.Contains(s.Required, name) {
			req = " <b>always</b>"
		}
		desc := prop.Description
		if desc == "" && len(prop.AllOf) == 1 {
			desc = prop.AllOf[0].Description
		}
		typ := typeHTML(prop)
		if prop.Type == "object" && len(prop.Properties) > 0 {
			typ = "object:" + schemaHTML(prop)
		}
		fmt.Fprintf(&b, `<tr><td><code>%s</code>%s</td><td>%s</td><td>%s</td></tr>`, html.EscapeString(name), req, typ, inline(desc))
	}
	b.WriteString(`</table>`)
	return b.String()
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// inline renders the inline Markdown the document uses: `code` and
// **strong**, escaping the rest.
func inline(s string) string {
	s = html.EscapeString(s)
	s = codeSpan.ReplaceAllString(s, "<code>$1</code>")
	return strong.ReplaceAllString(s, "<strong>$1</strong>")
}

// markdown renders the document's descriptions: paragraphs, ``` blocks
// and inline markup.
func markdown(s string) string {
	var b strings.Builder
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>")
			para = nil
		}
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "```"):
			flush()
			var code []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				code = append(code, lines[i])
			}
			b.WriteString("<pre>" + html.EscapeString(strings.Join(code, "\n")) + "</pre>")
		case strings.TrimSpace(l) == "":
			flush()
		default:
			para = append(para, strings.TrimSpace(l))
		}
	}
	flush()
	return b.String()
}
