package dockertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// The day-to-day commands the Makefile must offer (make help lists them).
// chaos is expected once the Makefile has it.
var makeTargets = []string{"start", "down", "logs", "shell", "db-reset", "db-migrate", "db-shell",
	"prod-build", "prod-up", "prod-start", "prod-logs", "prod-shell", "build-edge", "demo", "test", "ci", "bench"}

// runMake runs make in the module root with makefile (a path) and returns
// its output; the parent's make variables are not passed on.
func runMake(t *testing.T, makefile string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-f", makefile}, args...)...)
	cmd.Dir = moduleRoot(t)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEFILES" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkMakefile returns what the Makefile at path lacks: a target in `make
// help`, or a command that `make -n` cannot print, or a docker target that
// does not run the right compose file.
func checkMakefile(t *testing.T, path string) []string {
	t.Helper()
	var bad []string
	want := slices.Clone(makeTargets)
	if regexp.MustCompile(`(?m)^chaos:`).MatchString(readFile(t, path)) {
		want = append(want, "chaos")
	}
	help, err := runMake(t, path, nil, "help")
	if err != nil {
		return []string{"make help: " + err.Error() + "\n" + help}
	}
	helpPlain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(help, "")
	for _, target := range want {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(target) + `\s+\S`).MatchString(helpPlain) {
			bad = append(bad, "make help does not list "+target)
		}
		out, err := runMake(t, path, nil, "-n", target)
		if err != nil || strings.TrimSpace(out) == "" {
			bad = append(bad, "make -n "+target+": "+strings.TrimSpace(out))
			continue
		}
		var wantIn []string
		switch {
		case target == "start":
			wantIn = []string{"docker compose --env-file .env.docker -f docker-compose.yml up -d --build"}
		case slices.Contains([]string{"down", "logs", "shell"}, target):
			wantIn = []string{"docker compose --env-file .env.docker -f docker-compose.yml " + map[string]string{"down": "down", "logs": "logs", "shell": "exec"}[target]}
		case strings.HasPrefix(target, "db-"):
			wantIn = []string{"docker compose --env-file .env.docker -f docker-compose.yml", "postgres://postgres@127.0.0.1:5432/fleetgate"}
		case strings.HasPrefix(target, "prod-"):
			wantIn = []string{"docker compose --env-file .env.production -f docker-compose.prod.yml"}
		case target == "build-edge":
			wantIn = []string{"GOARCH=amd64", "GOARCH=arm64", "GOARCH=arm GOARM=7"}
		}
		for _, w := range wantIn {
			if !strings.Contains(out, w) {
				bad = append(bad, "make -n "+target+" does not run "+w+":\n"+out)
			}
		}
	}
	return bad
}

func TestMakefileTargets(t *testing.T) {
	root := moduleRoot(t)
	for _, b := range checkMakefile(t, filepath.Join(root, "Makefile")) {
		t.Error(b)
	}
	// A target without its help line, or gone, is caught.
	src := readFile(t, filepath.Join(root, "Makefile"))
	for _, m := range []struct{ old, new string }{
		{"prod-up: .env.production ## ", "prod-up: .env.production # "},
		{"\ndb-shell: ## ", "\ndb-sh: ## "},
		{"$(DEV) up -d --build", "$(COMPOSE) up -d"},
	} {
		broken := filepath.Join(t.TempDir(), "Makefile")
		writeFile(t, broken, mustReplace(t, src, m.old, m.new))
		if len(checkMakefile(t, broken)) == 0 {
			t.Errorf("a Makefile with %q changed to %q passed", m.old, m.new)
		}
	}
}

// TestMakeDatabaseTargetsWithoutDocker: with no development stack running
// (no Docker engine here), db-migrate, db-reset and db-shell work on the
// database of DATABASE_URL with the local tools.
func TestMakeDatabaseTargetsWithoutDocker(t *testing.T) {
	url := testenv.Postgres(t)
	makefile := filepath.Join(moduleRoot(t), "Makefile")
	env := []string{"DATABASE_URL=" + url}
	ctx := context.Background()
	query := func(sql string) (int, error) {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		var n int
		err = c.QueryRow(ctx, sql).Scan(&n)
		return n, err
	}
	const migrated = `SELECT count(*) FROM information_schema.tables WHERE table_name = 'positions'`
	if out, err := runMake(t, makefile, env, "db-migrate"); err != nil {
		t.Fatalf("make db-migrate: %v\n%s", err, out)
	}
	if n, err := query(migrated); err != nil || n != 1 {
		t.Fatalf("after db-migrate: positions tables %d, %v", n, err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE before_reset (x int)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if out, err := runMake(t, makefile, env, "db-reset"); err == nil || !strings.Contains(out, "nothing done") {
		t.Errorf("db-reset without an answer: %v\n%s; want it to refuse", err, out)
	}
	if out, err := runMake(t, makefile, env, "db-reset", "FORCE=1"); err != nil {
		t.Fatalf("make db-reset FORCE=1: %v\n%s", err, out)
	}
	if n, err := query(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'before_reset'`); err != nil || n != 0 {
		t.Errorf("after db-reset the old table is still there (%d, %v)", n, err)
	}
	if n, err := query(migrated); err != nil || n != 1 {
		t.Errorf("after db-reset: not migrated (%d, %v)", n, err)
	}
	cmd := exec.Command("make", "--no-print-directory", "-f", makefile, "db-shell", "DATABASE_URL="+url)
	cmd.Dir = moduleRoot(t)
	cmd.Stdin = strings.NewReader("SELECT 40 + 2 AS answer;\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "42") {
		t.Errorf("make db-shell: %v\n%s", err, out)
	}
}
