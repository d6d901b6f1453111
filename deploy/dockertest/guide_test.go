package dockertest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProductionGuide: deploy/PRODUCTION_DEPLOYMENT.md covers what an
// operator needs, from an empty server to a TLS-protected stack, says what was
// not verified, and every command, file and variable it names exists.
func TestProductionGuide(t *testing.T) {
	guide := repoFile(t, "deploy/PRODUCTION_DEPLOYMENT.md")
	for _, want := range []string{
		"## 3. From an empty server", "### 3.2 Firewall", "## 5. The TLS reverse proxy",
		"## 6. Certificates and their rotation", "## 7. Backups and restore", "## 8. Monitoring",
		"## 9. Upgrades", "## 10. Security checklist",
		"pg_dump", "pg_restore", "WAL archiving", "http://cloud:8000/metrics", "127.0.0.1:9100/metrics",
		"the cloud first, then the agents", "version byte", "renew", "revoke", "CRL",
		"images have never\nbeen built", "Not verified",
	} {
		if !strings.Contains(guide, want) {
			t.Errorf("the guide lacks %q", want)
		}
	}
	makefile := repoFile(t, "Makefile")
	for _, m := range regexp.MustCompile("(?m)(?:^\\s*|`)make ([a-z][a-z0-9-]+)").FindAllStringSubmatch(guide, -1) {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).MatchString(makefile) {
			t.Errorf("the guide runs make %s, which the Makefile does not have", m[1])
		}
	}
	for _, m := range regexp.MustCompile("`((?:deploy|edge|cloud|shared)/[A-Za-z0-9_./-]+|Dockerfile\\.[a-z]+|docker-compose[a-z.]*\\.yml|\\.env\\.[a-z.]+)`").FindAllStringSubmatch(guide, -1) {
		if _, err := os.Stat(filepath.Join(moduleRoot(t), m[1])); err != nil && m[1] != ".env.production" {
			t.Errorf("the guide names %s, which does not exist", m[1])
		}
	}
	vars := envFile(t, repoFile(t, ".env.production.example"))
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]{3,})`").FindAllStringSubmatch(guide, -1) {
		if _, ok := vars[m[1]]; !ok && !strings.Contains(repoFile(t, "docker-compose.prod.yml"), m[1]) &&
			!strings.Contains(repoFile(t, "deploy/certs/make-certs.sh"), m[1]) {
			t.Errorf("the guide names the variable %s, which nothing uses", m[1])
		}
	}
}
