package dockertest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// repoFile reads a file of the repository by its slash path.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	return readFile(t, filepath.Join(moduleRoot(t), filepath.FromSlash(rel)))
}

var (
	rootOnce sync.Once
	rootDir  string
)

// moduleRoot is testenv.ModuleRoot, asked once per test binary.
func moduleRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() { rootDir = testenv.ModuleRoot(t) })
	return rootDir
}

// mustReplace replaces the one occurrence of old in s; it fails the test when
// old does not occur exactly once, so that a mutation can never silently
// leave the file unchanged.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("mutation: %q occurs %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}
