package dockertest

import (
	"debug/buildinfo"
	"debug/elf"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// contextMatcher is .dockerignore as the Docker client applies it.
func contextMatcher(t *testing.T, dockerignore string) *patternmatcher.PatternMatcher {
	t.Helper()
	patterns, err := ignorefile.ReadAll(strings.NewReader(dockerignore))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func ignored(t *testing.T, pm *patternmatcher.PatternMatcher, rel string) bool {
	t.Helper()
	ok, err := pm.MatchesOrParentMatches(rel)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// checkDockerignore returns the paths (slash, relative to the context) that
// the context wrongly keeps or wrongly drops.
func checkDockerignore(t *testing.T, dockerignore string) []string {
	t.Helper()
	pm := contextMatcher(t, dockerignore)
	var bad []string
	for _, p := range []string{".git/HEAD", ".git/config", ".env", ".env.docker", ".env.production", ".env.production.example",
		"bin/edge-agent", "bin/cloud-server", "deploy/certs/dev/ca.key", "deploy/certs/dev/vehicles/veh-001.key",
		"server.key", "edge/cmd/edge-agent/edge-agent.test", "cover.out", ".ci/run",
		"edge/cmd/edge-agent/testdata/minimal.yaml", "docker-compose.prod.yml"} {
		if !ignored(t, pm, p) {
			bad = append(bad, "kept: "+p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "shared/telemetry/codec.go", "cloud/cmd/cloud-server/main.go",
		"cloud/postgres/migrations/0001_init.up.sql", "edge/cmd/edge-agent/main.go", "edge/bolt/outbox.go"} {
		if ignored(t, pm, p) {
			bad = append(bad, "dropped: "+p)
		}
	}
	return bad
}

func TestDockerignore(t *testing.T) {
	for _, b := range checkDockerignore(t, repoFile(t, ".dockerignore")) {
		t.Error(b)
	}
	// Breaking it is caught.
	src := repoFile(t, ".dockerignore")
	for _, m := range []struct{ old, new string }{
		{"\n.git\n", "\n"}, {"\n.env\n.env.*\n", "\n"}, {"\nbin/\n", "\n"}, {"\n**/*.key\n", "\n"}, {"\n**/testdata\n", "\n"},
	} {
		if len(checkDockerignore(t, mustReplace(t, src, m.old, m.new))) == 0 {
			t.Errorf(".dockerignore without %q passed the check", strings.TrimSpace(m.old))
		}
	}
	if len(checkDockerignore(t, src+"\n**/*.go\n")) == 0 {
		t.Error(".dockerignore that drops the sources passed the check")
	}
}

// TestBuilderStagesBuildStaticBinaries does what the builder stage of each
// Dockerfile does, without Docker: it copies the build context (filtered by
// .dockerignore) as the stage's COPY instructions say into an empty
// directory, sets the stage's ENV and ARGs, and runs its go commands with
// sh, as BuildKit would (the cache mounts become this machine's caches). For
// each target platform the result must be a static ELF binary of that
// architecture, without cgo, trimmed and stripped (-s -w; Go does not
// record -ldflags in the build info under -trimpath, so the sections tell). This proves that the
// files the Dockerfile copies are enough, that .dockerignore keeps them, and
// that TARGETARCH/TARGETVARIANT reach the compiler.
func TestBuilderStagesBuildStaticBinaries(t *testing.T) {
	root := testenv.ModuleRoot(t)
	pm := contextMatcher(t, repoFile(t, ".dockerignore"))
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}
	for _, img := range images {
		// Each platform is a cold build on a fresh machine (about a minute
		// of CI on two cores). The edge stage is played for amd64 and
		// arm/v7, whose TARGETVARIANT must reach GOARM; arm64 differs from
		// amd64 only in TARGETARCH, and make ci's build-edge and test-arm
		// build for it. The cloud: amd64 is enough to prove the stage.
		platforms := []struct{ arch, variant string }{edgePlatforms[0], edgePlatforms[2]}
		if !img.edge {
			platforms = platforms[:1]
		}
		df, err := parseDockerfile(repoFile(t, img.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range platforms {
			t.Run(img.file+"/linux-"+p.arch+p.variant, func(t *testing.T) {
				dir := t.TempDir()
				bin := runBuilder(t, df, root, pm, dir, map[string]string{
					"TARGETOS": "linux", "TARGETARCH": p.arch, "TARGETVARIANT": p.variant, "VERSION": "dockertest"}, img.binary)
				f, err := elf.Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Machine != machines[p.arch] {
					t.Errorf("machine %v, want %v", f.Machine, machines[p.arch])
				}
				for _, prog := range f.Progs {
					if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
						t.Errorf("program header %v: the binary is dynamically linked", prog.Type)
					}
				}
				if f.Section(".symtab") != nil {
					t.Error("the binary has a symbol table: not built with -s")
				}
				info, err := buildinfo.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				settings := map[string]string{}
				for _, s := range info.Settings {
					settings[s.Key] = s.Value
				}
				want := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": p.arch, "-trimpath": "true"}
				if p.variant != "" {
					want["GOARM"] = strings.TrimPrefix(p.variant, "v")
				}
				for k, v := range want {
					if settings[k] != v {
						t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
					}
				}
				if f.Section(".debug_info") != nil {
					t.Error("the binary has DWARF: not built with -w")
				}
			})
		}
	}
}

// runBuilder plays the builder stage in dir and returns the path of binary.
func runBuilder(t *testing.T, df *dockerfile, root string, pm *patternmatcher.PatternMatcher, dir string, args map[string]string, binary string) string {
	t.Helper()
	env := map[string]string{}
	for _, name := range []string{"base", "builder"} {
		for _, c := range df.stage(name).Commands {
			if e, ok := c.(*instructions.EnvCommand); ok {
				for _, kv := range e.Env {
					// As BuildKit does: quotes removed, variables expanded.
					v, _, err := shell.NewLex(parser.DefaultEscapeToken).ProcessWord(kv.Value, mapEnv(env))
					if err != nil {
						t.Fatalf("ENV %s=%s: %v", kv.Key, kv.Value, err)
					}
					env[kv.Key] = v
				}
			}
		}
	}
	for k, v := range args {
		env[k] = v
	}
	work, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	for _, d := range []string{work, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var environ []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "GOFLAGS" && k != "CGO_ENABLED" && k != "GOARCH" && k != "GOOS" && k != "GOARM" {
			environ = append(environ, kv)
		}
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	for _, c := range df.stage("builder").Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				t.Fatalf("builder: COPY --from=%s is not played by this test", c.From)
			}
			for _, src := range c.SourcePaths {
				copyContext(t, root, pm, strings.TrimSuffix(src, "/"), filepath.Join(work, c.DestPath))
			}
		case *instructions.RunCommand:
			script := strings.ReplaceAll(runText(c), "/out/", out+"/")
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir, cmd.Env = work, environ
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("RUN %s: %v\n%s", runText(c), err, b)
			}
		}
	}
	return filepath.Join(out, binary)
}

// mapEnv is a shell.EnvGetter over a map.
type mapEnv map[string]string

func (m mapEnv) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }

func (m mapEnv) Keys() []string { return slices.Collect(maps.Keys(m)) }

// copyContext copies the context path rel (file or directory) as COPY does:
// a file into dest (a directory when it ends in /, or names one), a
// directory's contents into dest. Paths .dockerignore drops are skipped, as
// the Docker client never sends them.
func copyContext(t *testing.T, root string, pm *patternmatcher.PatternMatcher, rel, dest string) {
	t.Helper()
	src := filepath.Join(root, filepath.FromSlash(rel))
	st, err := os.Stat(src)
	if err != nil {
		t.Fatalf("COPY %s: %v", rel, err)
	}
	if !st.IsDir() {
		if ignored(t, pm, rel) {
			t.Fatalf("COPY %s: .dockerignore drops it", rel)
		}
		copyFile(t, src, filepath.Join(dest, filepath.Base(src)))
		return
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		if ignored(t, pm, filepath.ToSlash(r)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		inner, _ := filepath.Rel(src, p)
		copyFile(t, p, filepath.Join(dest, inner))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
