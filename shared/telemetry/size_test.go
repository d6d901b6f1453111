package telemetry_test

import (
	"testing"
)

// The wire sizes are deterministic, so their targets (docs/BENCHMARKS.md) are
// asserted here on every make test, not only reported by make bench: a fix
// in a 60-fix batch at 1 Hz costs at most 11 bytes, a lone fix's whole MQTT
// PUBLISH at most 64, and both beat the same fixes as JSON, JSON+gzip and
// JSON+zstd. Protocol version 1 met the first (10.95 bytes), not the second
// (103 bytes of payload, 137 on the wire); version 2 meets both.
func TestWireSizeTargets(t *testing.T) {
	fixes := liveFixes(60)
	batch := float64(len(encodedFixes(t, fixes))) / 60
	lone := len(encodedFixes(t, fixes[:1]))
	if w := onWire(t, encodedFixes(t, fixes[:1])); w > 64 {
		t.Errorf("a lone fix costs %d bytes on the wire (%d of payload), target ≤ 64", w, lone)
	}
	js, oneJS := jsonFixes(t, fixes), jsonFixes(t, fixes[:1])
	t.Logf("per fix %.1f B (JSON %.1f, +gzip %.1f, +zstd %.1f); lone fix %d B (JSON %d, +gzip %d, +zstd %d)",
		batch, float64(len(js))/60, float64(len(gzipped(t, js)))/60, float64(len(zstded(t, js)))/60,
		lone, len(oneJS), len(gzipped(t, oneJS)), len(zstded(t, oneJS)))
	if batch > 11 {
		t.Errorf("%.2f bytes per fix in a 60-fix batch, target ≤ 11", batch)
	}
	for name, base := range map[string][]byte{"JSON+gzip": gzipped(t, js), "JSON+zstd": zstded(t, js)} {
		if per := float64(len(base)) / 60; per <= batch {
			t.Errorf("%s takes %.2f bytes per fix, no more than the Batch's %.2f", name, per, batch)
		}
	}
	for name, base := range map[string][]byte{"JSON": oneJS, "JSON+gzip": gzipped(t, oneJS), "JSON+zstd": zstded(t, oneJS)} {
		if len(base) <= lone {
			t.Errorf("a lone fix as %s takes %d bytes, no more than the Batch's %d", name, len(base), lone)
		}
	}
}
