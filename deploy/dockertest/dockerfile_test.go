package dockertest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// image describes what one of our Dockerfiles must produce.
type image struct {
	file   string // Dockerfile.cloud
	binary string // the program in the production image
	pkg    string // its main package
	port   string // EXPOSEd
	// health is the production HEALTHCHECK, exec form (no shell in scratch).
	health []string
	// edge: cross-compiled for the gateways, in the serial group, outbox volume.
	edge bool
}

var images = []image{
	{file: "Dockerfile.cloud", binary: "cloud-server", pkg: "./cloud/cmd/cloud-server", port: "8000",
		health: []string{"/cloud-server", "healthcheck"}},
	{file: "Dockerfile.edge", binary: "edge-agent", pkg: "./edge/cmd/edge-agent", port: "9100",
		health: []string{"/edge-agent", "healthcheck", "--config", "/etc/fleetgate/agent.yaml"}, edge: true},
}

// The platforms of the gateways, as buildx names them (docs/ARCHITECTURE.md).
var edgePlatforms = []struct{ arch, variant string }{{"amd64", ""}, {"arm64", ""}, {"arm", "v7"}}

// dockerfile is a Dockerfile parsed by BuildKit's own parser, as `docker
// build` would parse it.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	warnings []string // parser and linter warnings
	syntax   string   // the # syntax= directive
}

func parseDockerfile(src string) (*dockerfile, error) {
	res, err := parser.Parse(strings.NewReader(src))
	if err != nil {
		return nil, err
	}
	df := &dockerfile{}
	for _, w := range res.Warnings {
		df.warnings = append(df.warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		df.warnings = append(df.warnings, linter.LintFormatShort(rule, msg, line))
	}})
	df.stages, df.metaArgs, err = instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	if m := regexp.MustCompile(`(?m)^#\s*syntax=(\S+)`).FindStringSubmatch(src); m != nil {
		df.syntax = m[1]
	}
	return df, nil
}

func (df *dockerfile) stage(name string) *instructions.Stage {
	for i := range df.stages {
		if df.stages[i].Name == name {
			return &df.stages[i]
		}
	}
	return nil
}

func (df *dockerfile) metaArg(name string) (string, bool) {
	for _, a := range df.metaArgs {
		for _, kv := range a.Args {
			if kv.Key == name && kv.Value != nil {
				return *kv.Value, true
			}
		}
	}
	return "", false
}

// commands returns the stage's commands of type T.
func commands[T instructions.Command](s *instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if t, ok := c.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func runText(r *instructions.RunCommand) string { return strings.Join(r.CmdLine, " ") }

// cacheTargets lists the targets of the RUN's --mount=type=cache mounts.
func cacheTargets(r *instructions.RunCommand) []string {
	// Mount options are evaluated on expansion; no variable is used in them.
	if err := r.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		return nil
	}
	var out []string
	for _, m := range instructions.GetMounts(r) {
		if m.Type == instructions.MountTypeCache {
			out = append(out, m.Target)
		}
	}
	return out
}

// goVersion is the go directive of go.mod.
func goVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(repoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

const (
	goModCache   = "/go/pkg/mod"
	goBuildCache = "/root/.cache/go-build"
)

// checkDockerfile returns every broken rule of an image, each message
// starting with the rule's name in brackets.
func checkDockerfile(src string, img image, goVer string) []string {
	var bad []string
	fail := func(rule, format string, args ...any) {
		bad = append(bad, "["+rule+"] "+fmt.Sprintf(format, args...))
	}
	df, err := parseDockerfile(src)
	if err != nil {
		return []string{"[parse] " + err.Error()}
	}
	for _, w := range df.warnings {
		fail("lint", "%s", w)
	}
	if !strings.HasPrefix(df.syntax, "docker/dockerfile:1") {
		fail("syntax", "want a `# syntax=docker/dockerfile:1` directive (cache mounts), have %q", df.syntax)
	}
	var names []string
	for _, s := range df.stages {
		names = append(names, s.Name)
	}
	if want := []string{"base", "builder", "development", "production"}; !slices.Equal(names, want) {
		fail("stages", "stages %q, want %q in this order", names, want)
	}
	base, builder, dev, prod := df.stage("base"), df.stage("builder"), df.stage("development"), df.stage("production")
	if base == nil || builder == nil || dev == nil || prod == nil {
		return bad
	}

	// base: the Go toolchain of go.mod, the user appuser 1001:1001.
	if v, ok := df.metaArg("GO_VERSION"); !ok || v != goVer {
		fail("go-version", "ARG GO_VERSION=%q, want go.mod's %q", v, goVer)
	}
	if !strings.HasPrefix(base.BaseName, "golang:${GO_VERSION}") {
		fail("go-version", "base is FROM %q, want golang:${GO_VERSION}-...", base.BaseName)
	}
	if base.Platform != "$BUILDPLATFORM" {
		fail("cross", "base must run on the build machine (FROM --platform=$BUILDPLATFORM) and cross-compile, has %q", base.Platform)
	}
	baseRun := ""
	for _, r := range commands[*instructions.RunCommand](base) {
		baseRun += runText(r) + "\n"
	}
	for _, want := range []string{"addgroup -g 1001 -S appuser", "adduser -u 1001 ", "-G appuser",
		`appuser:x:1001:1001:`, `>/etc/passwd.appuser`, `appuser:x:1001:`, `>/etc/group.appuser`, "ca-certificates", "tzdata"} {
		if !strings.Contains(baseRun, want) {
			fail("appuser", "base: no %q (user and group appuser, UID/GID 1001; certificates and time zones)", want)
		}
	}

	// builder: module files first, cache mounts, static build, cross-compiling.
	var copies []*instructions.CopyCommand
	for _, c := range builder.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From == "" {
				copies = append(copies, c)
			}
		case *instructions.RunCommand:
			if len(copies) == 1 && strings.Contains(runText(c), "go mod download") && len(copies) == 1 {
				copies = append(copies, nil) // marks the download between the module files and the sources
			}
		}
	}
	if len(copies) < 3 || !slices.Equal(copies[0].SourcePaths, []string{"go.mod", "go.sum"}) || copies[1] != nil {
		fail("module-files-first", "builder must COPY go.mod go.sum, then RUN go mod download, then COPY the sources")
	}
	var build *instructions.RunCommand
	for _, r := range commands[*instructions.RunCommand](builder) {
		text := runText(r)
		if strings.Contains(text, "go mod download") && !slices.Contains(cacheTargets(r), goModCache) {
			fail("cache-mounts", "go mod download without --mount=type=cache,target=%s", goModCache)
		}
		if strings.Contains(text, "go build") {
			build = r
		}
	}
	if build == nil {
		fail("static", "builder has no RUN go build")
		return bad
	}
	text := runText(build)
	for _, target := range []string{goModCache, goBuildCache} {
		if !slices.Contains(cacheTargets(build), target) {
			fail("cache-mounts", "go build without --mount=type=cache,target=%s", target)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-o /out/" + img.binary + " " + img.pkg} {
		if !strings.Contains(text, want) {
			fail("static", "go build lacks %q", want)
		}
	}
	args := map[string]bool{}
	for _, a := range commands[*instructions.ArgCommand](builder) {
		for _, kv := range a.Args {
			args[kv.Key] = true
		}
	}
	for _, a := range []string{"TARGETOS", "TARGETARCH", "TARGETVARIANT"} {
		if !args[a] {
			fail("cross", "builder does not declare ARG %s", a)
		}
	}
	for _, want := range []string{"GOOS=$TARGETOS", "GOARCH=$TARGETARCH", "GOARM=${TARGETVARIANT#v}"} {
		if !strings.Contains(text, want) {
			fail("cross", "go build lacks %s", want)
		}
	}

	// development: air, non-root.
	if dev.BaseName != "base" {
		fail("development", "development is FROM %q, want base (the toolchain)", dev.BaseName)
	}
	devRun := ""
	for _, r := range commands[*instructions.RunCommand](dev) {
		devRun += runText(r) + "\n"
	}
	if !regexp.MustCompile(`go install github\.com/air-verse/air@\$\{AIR_VERSION\}`).MatchString(devRun) {
		fail("development", "development does not install air (hot reload) at ${AIR_VERSION}")
	}
	if cmds := commands[*instructions.CmdCommand](dev); len(cmds) == 0 || len(cmds[len(cmds)-1].CmdLine) == 0 || cmds[len(cmds)-1].CmdLine[0] != "air" {
		fail("development", "development's CMD must run air")
	}
	if u := commands[*instructions.UserCommand](dev); len(u) == 0 || !strings.HasPrefix(u[len(u)-1].User, "1001") {
		fail("non-root", "development must run as USER 1001")
	}

	// production: scratch, only what the binary needs, UID 1001, HEALTHCHECK
	// through the binary, the port.
	if prod.BaseName != "scratch" {
		fail("minimal", "production is FROM %q, want scratch", prod.BaseName)
	}
	if n := len(commands[*instructions.RunCommand](prod)); n > 0 {
		fail("minimal", "production has %d RUN instructions; scratch has no shell", n)
	}
	allowed := map[string]bool{
		"base:/etc/ssl/certs/ca-certificates.crt": true, "base:/usr/share/zoneinfo": true,
		"base:/etc/passwd.appuser": true, "base:/etc/group.appuser": true, "builder:/out/" + img.binary: true,
	}
	if img.edge {
		allowed["base:/var/lib/fleetgate"] = true
	}
	have := map[string]bool{}
	for _, c := range commands[*instructions.CopyCommand](prod) {
		for _, s := range c.SourcePaths {
			key := c.From + ":" + s
			have[key] = true
			if !allowed[key] {
				fail("minimal", "production copies %s; only the binary, certificates, time zones and the user belong there", key)
			}
			if img.edge && key == "base:/var/lib/fleetgate" && c.Chown != "1001:1001" {
				fail("volume", "the outbox directory must be copied --chown=1001:1001, is %q", c.Chown)
			}
		}
	}
	for _, need := range []string{"base:/etc/ssl/certs/ca-certificates.crt", "base:/usr/share/zoneinfo", "builder:/out/" + img.binary} {
		if !have[need] {
			fail("minimal", "production lacks %s", need)
		}
	}
	users := commands[*instructions.UserCommand](prod)
	wantUser := "1001:1001"
	if img.edge {
		wantUser = "1001:20" // 20 = dialout, the group of the serial devices
		if !strings.Contains(baseRun, "dialout:x:20:appuser") {
			fail("serial-group", "/etc/group of the image must put appuser in dialout (GID 20)")
		}
	}
	if len(users) == 0 || users[len(users)-1].User != wantUser {
		fail("non-root", "production must end with USER %s", wantUser)
	}
	var ports []string
	for _, e := range commands[*instructions.ExposeCommand](prod) {
		ports = append(ports, e.Ports...)
	}
	if !slices.Equal(ports, []string{img.port}) {
		fail("port", "production EXPOSEs %q, want [%s]", ports, img.port)
	}
	hc := commands[*instructions.HealthCheckCommand](prod)
	if len(hc) != 1 || hc[0].Health == nil || len(hc[0].Health.Test) == 0 || hc[0].Health.Test[0] != "CMD" ||
		!slices.Equal(hc[0].Health.Test[1:], img.health) {
		var got []string
		if len(hc) == 1 && hc[0].Health != nil {
			got = hc[0].Health.Test
		}
		fail("healthcheck", "production HEALTHCHECK is %q, want CMD %q (exec form: no shell, no curl)", got, img.health)
	} else if h := hc[0].Health; h.Interval <= 0 || h.Timeout <= 0 || h.Retries <= 0 {
		fail("healthcheck", "HEALTHCHECK needs --interval, --timeout and --retries")
	}
	if ep := commands[*instructions.EntrypointCommand](prod); len(ep) != 1 || ep[0].PrependShell || !slices.Equal(ep[0].CmdLine, []string{"/" + img.binary}) {
		fail("entrypoint", "production ENTRYPOINT must be [\"/%s\"]", img.binary)
	}
	if img.edge {
		var vols []string
		for _, v := range commands[*instructions.VolumeCommand](prod) {
			vols = append(vols, v.Volumes...)
		}
		if !slices.Equal(vols, []string{"/var/lib/fleetgate"}) {
			fail("volume", "production VOLUMEs %q, want the outbox [/var/lib/fleetgate]", vols)
		}
	}
	return bad
}

func TestDockerfiles(t *testing.T) {
	goVer := goVersion(t)
	for _, img := range images {
		t.Run(img.file, func(t *testing.T) {
			for _, v := range checkDockerfile(repoFile(t, img.file), img, goVer) {
				t.Error(v)
			}
		})
	}
}

// TestDockerfileChecksCatchRegressions breaks one rule at a time in a copy of
// each Dockerfile and expects checkDockerfile to name that rule.
func TestDockerfileChecksCatchRegressions(t *testing.T) {
	goVer := goVersion(t)
	type mutation struct {
		name, old, new, rule string
	}
	common := []mutation{
		{"stage renamed", "AS development", "AS dev", "stages"},
		{"Go version drifts from go.mod", "ARG GO_VERSION=" + goVer, "ARG GO_VERSION=1.21", "go-version"},
		{"appuser gets another UID", "adduser -u 1001 ", "adduser -u 1000 ", "appuser"},
		{"sources before module files", "COPY go.mod go.sum ./\n", "COPY . .\nCOPY go.mod go.sum ./\n", "module-files-first"},
		{"no module cache on download", "RUN --mount=type=cache,target=/go/pkg/mod \\\n    go mod download", "RUN go mod download", "cache-mounts"},
		{"no build cache", "    --mount=type=cache,target=/root/.cache/go-build \\\n    GOOS", "    GOOS", "cache-mounts"},
		{"cgo on", "CGO_ENABLED=0 \\\n", "CGO_ENABLED=1 \\\n", "static"},
		{"no trimpath", "go build -trimpath", "go build", "static"},
		{"no cross-compile", "GOARCH=$TARGETARCH ", "", "cross"},
		{"builder on the target platform", "FROM --platform=$BUILDPLATFORM golang", "FROM golang", "cross"},
		{"no hot reload", `CMD ["air", `, `CMD ["go", "run", `, "development"},
		{"production not minimal", "FROM scratch AS production", "FROM alpine AS production", "minimal"},
		{"shell-form health check", "CMD [\"/", "CMD curl -f http://localhost/health || exit 1\n#", "healthcheck"},
		{"lint: lowercase as", "AS base", "as base", "lint"},
	}
	for _, img := range images {
		src := repoFile(t, img.file)
		ms := append([]mutation(nil), common...)
		prodUser := "USER 1001:1001\nEXPOSE " + img.port + "\n# No shell"
		if img.edge {
			prodUser = "USER 1001:20\n"
		}
		ms = append(ms,
			mutation{"wrong port", "EXPOSE " + img.port + "\n# No shell", "EXPOSE 80\n# No shell", "port"},
			mutation{"production runs as root", prodUser, strings.Replace(prodUser, "USER 1001:", "USER 0:", 1), "non-root"})
		if img.edge {
			ms = append(ms,
				mutation{"not in the serial group", "USER 1001:20", "USER 1001:1001", "non-root"},
				mutation{"serial group missing from /etc/group", `dialout:x:20:appuser`, `dialout:x:20:`, "serial-group"},
				mutation{"no outbox volume", `VOLUME ["/var/lib/fleetgate"]`, `VOLUME ["/data"]`, "volume"},
				mutation{"no ARM variant", "GOARM=${TARGETVARIANT#v} ", "", "cross"})
		}
		for _, m := range ms {
			t.Run(img.file+"/"+m.name, func(t *testing.T) {
				var broken string
				if m.name == "shell-form health check" {
					broken = mustReplace(t, src, "  CMD [\"/"+img.binary+"\", \"healthcheck\"", "  CMD curl -f http://127.0.0.1/health || exit 1\n#")
				} else {
					broken = mustReplace(t, src, m.old, m.new)
				}
				v := checkDockerfile(broken, img, goVer)
				if !slices.ContainsFunc(v, func(s string) bool { return strings.HasPrefix(s, "["+m.rule+"]") }) {
					t.Errorf("breaking %q was not caught as [%s]; checker said %q", m.name, m.rule, v)
				}
			})
		}
	}
}
