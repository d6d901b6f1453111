package deptest

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pat, p string
		want   bool
	}{
		{"edge/...", "edge", true},
		{"edge/...", "edge/gps", true},
		{"edge/...", "edgeX", false},
		{"edge", "edge/gps", false},
		{"...", "anything", true},
		{"go.etcd.io/bbolt/...", "go.etcd.io/bbolt", true},
		{"go.etcd.io/bbolt/...", "go.etcd.io/bbolt/internal/common", true},
	}
	for _, tc := range tests {
		if got := match(tc.pat, tc.p); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pat, tc.p, got, tc.want)
		}
	}
}

// fakeT records failures so the checker itself can be tested.
type fakeT struct {
	testing.TB
	errs []string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, format) }

func TestCheckCatchesForbiddenImport(t *testing.T) {
	pkgs := []Package{
		{ImportPath: Module + "/edge", Deps: []string{"fmt", Module + "/shared/telemetry"}},
		{ImportPath: Module + "/edge/gps", Deps: []string{Module + "/cloud"}},
	}
	rules := []Rule{{From: "edge/...", Deny: []string{"cloud/..."}, Why: "edge never imports cloud"}}
	ft := &fakeT{TB: t}
	Check(ft, pkgs, rules)
	if len(ft.errs) != 1 {
		t.Fatalf("got %d failures, want 1 (edge/gps → cloud)", len(ft.errs))
	}
}
