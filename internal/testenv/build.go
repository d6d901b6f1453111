package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// mainActive is set while Main runs a package's tests: Build refuses to run
// without it, since nothing else would remove what it built.
var mainActive atomic.Bool

var (
	buildMu   sync.Mutex
	buildDir  string
	buildErrs = map[string]error{} // package → the outcome of its build
)

// Main runs a package's tests and then removes the binaries Build and
// Binaries made for them. A package whose tests build binaries has
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m interface{ Run() int }) {
	os.Exit(run(m))
}

// run is Main without the exit.
func run(m interface{ Run() int }) int {
	prev := mainActive.Swap(true)
	defer mainActive.Store(prev)
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: remove the built binaries: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		buildDir = ""
		clear(buildErrs)
	}
	return code
}

// Build builds the main package pkg (a path from the repository root, as
// "./edge/cmd/edge-agent") once per test process, with -race when the test
// binary has it, and returns the program's path. The package's TestMain must
// call Main, which removes the program when the tests end.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if !mainActive.Load() {
		t.Fatal("testenv.Build: the package's TestMain must call testenv.Main, which removes the built binaries afterwards")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "fleetgate-bin-")
		if err != nil {
			t.Fatalf("testenv.Build: %v", err)
		}
		buildDir = dir
	}
	bin := filepath.Join(buildDir, filepath.Base(pkg))
	err, done := buildErrs[pkg]
	if !done {
		args := []string{"build"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "-o", bin, pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = ModuleRoot(t)
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), berr, out)
		}
		buildErrs[pkg] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Binaries builds edge-agent, cloud-server and firmware-sim once per test
// process, as Build does, and returns the directory that holds them.
func Binaries(t testing.TB) string {
	t.Helper()
	var dir string
	for _, pkg := range []string{"./edge/cmd/edge-agent", "./cloud/cmd/cloud-server", "./firmware-sim/cmd/firmware-sim"} {
		dir = filepath.Dir(Build(t, pkg))
	}
	return dir
}

// ModuleRoot returns the repository root (the directory of go.mod).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
