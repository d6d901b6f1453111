// Package deptest checks Fleetgate's layout rules from tests: which packages may
// import which, and that every package has a doc comment. It runs `go list`, so
// tests that use it must run with -count=1 (the test cache cannot see the
// subprocess's inputs); `make ci` does.
package deptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// Module is the module path of this repository.
const Module = "github.com/fleetgate/fleetgate"

// Package is what `go list -json` says of one package, the parts the rules need.
type Package struct {
	ImportPath string
	Dir        string
	Doc        string
	Imports    []string // direct imports, without tests
	Deps       []string // transitive imports, without tests
}

// List returns the packages matched by patterns (relative to the module root,
// e.g. "./edge/...").
func List(t testing.TB, patterns ...string) []Package {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,Dir,Doc,Imports,Deps"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v matched no packages", patterns)
	}
	return pkgs
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return path.Dir(strings.TrimSpace(string(out)))
}

// Rule forbids packages matching From (a module-relative pattern: "edge",
// "edge/..." or "..." for all) to import packages matching any of Deny, directly
// (Direct) or at any depth. Allow lists imports exempt from Deny, and Except lists
// importers exempt from the rule. Patterns name module-relative
// packages ("cloud/...") or full import paths of other modules
// ("go.etcd.io/bbolt/...").
type Rule struct {
	From   string
	Except []string // importers matching From that the rule does not apply to
	Deny   []string
	Allow  []string
	Direct bool
	Why    string
}

// Check fails t for every package in pkgs that breaks a rule, naming the package,
// the import and the rule's reason.
func Check(t testing.TB, pkgs []Package, rules []Rule) {
	t.Helper()
	for _, p := range pkgs {
		rel := relative(p.ImportPath)
		for _, r := range rules {
			if !match(r.From, rel) || matchAny(r.Except, rel) {
				continue
			}
			imps := p.Deps
			if r.Direct {
				imps = p.Imports
			}
			for _, imp := range imps {
				ri := relative(imp)
				if ri == rel {
					continue
				}
				if matchAny(r.Deny, ri) && !matchAny(r.Allow, ri) {
					t.Errorf("%s imports %s: %s", p.ImportPath, imp, r.Why)
				}
			}
		}
	}
}

// CheckDocs fails t for every package without a package doc comment.
func CheckDocs(t testing.TB, pkgs []Package) {
	t.Helper()
	for _, p := range pkgs {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s (%s) has no doc comment", p.ImportPath, p.Dir)
		}
	}
}

func relative(importPath string) string {
	if importPath == Module {
		return "."
	}
	if r, ok := strings.CutPrefix(importPath, Module+"/"); ok {
		return r
	}
	return importPath
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if match(pat, p) {
			return true
		}
	}
	return false
}

// match reports whether p matches pat: exact, or pat ending in "/..." matches the
// prefix and everything under it; "..." matches everything.
func match(pat, p string) bool {
	if pat == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pat, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return pat == p
}

// String describes r for failure messages.
func (r Rule) String() string { return fmt.Sprintf("%s must not import %v", r.From, r.Deny) }
