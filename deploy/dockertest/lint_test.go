//go:build lint

// The tests that need the linters (shellcheck, caddy) run under `make lint`,
// which installs them (deploy/setup.sh --lint) and builds this file with
// -tags lint; `make test` needs neither tool.

package dockertest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLintShellScripts: the deployment scripts are run by
// operators and containers where nobody watches; shellcheck finds the usual
// quoting and error-handling mistakes.
func TestLintShellScripts(t *testing.T) {
	root := moduleRoot(t)
	// Every shell script of the repository, and CI's entry point.
	scripts := []string{".ci/run"}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".sh") {
			rel, _ := filepath.Rel(root, path)
			scripts = append(scripts, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) < 8 {
		t.Fatalf("found only %v", scripts)
	}
	for _, s := range scripts {
		out, err := exec.Command("shellcheck", filepath.Join(root, s)).CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

// TestLintCaddyfile validates deploy/proxy/Caddyfile with Caddy itself and checks
// what it adapts to: TLS on 8443 (published as 443) with the ACME TLS-ALPN
// challenge only, the API proxied to cloud:8000, /metrics and /ready kept
// inside, HSTS.
func TestLintCaddyfile(t *testing.T) {
	home := t.TempDir()
	env := append(os.Environ(), "API_DOMAIN=api.example.com", "ACME_EMAIL=ops@example.com",
		"HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	file := filepath.Join(moduleRoot(t), "deploy/proxy/Caddyfile")
	validate := exec.Command("caddy", "validate", "--adapter", "caddyfile", "--config", file)
	validate.Env = env
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	adapt := exec.Command("caddy", "adapt", "--adapter", "caddyfile", "--config", file)
	adapt.Env = env
	out, err := adapt.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v", err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				HTTPSPort int `json:"https_port"`
				Servers   map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Apps.HTTP.HTTPSPort != 8443 {
		t.Errorf("https_port %d, want 8443 (published as 443)", cfg.Apps.HTTP.HTTPSPort)
	}
	for name, s := range cfg.Apps.HTTP.Servers {
		if strings.Join(s.Listen, ",") != ":8443" {
			t.Errorf("server %s listens on %v, want only :8443 (no plain HTTP)", name, s.Listen)
		}
	}
	js := string(out)
	for _, want := range []string{`"dial":"cloud:8000"`, `"host":["api.example.com"]`, `"path":["/metrics","/metrics/*","/ready"]`,
		`"status_code":404`, `"Strict-Transport-Security":["max-age=63072000"]`, `"http":{"disabled":true}`, `"uri":"/health"`} {
		if !strings.Contains(js, want) {
			t.Errorf("the adapted configuration lacks %s:\n%s", want, js)
		}
	}
}
