#!/usr/bin/env bash
# make fuzz: every fuzz target of the module, FUZZTIME each (default 10s).
#
# A target fails when go test fails. One exception: Go 1.26's fuzz coordinator
# can fail a target at the -fuzztime boundary with "context deadline exceeded"
# having found nothing (golang/go#75804, fixed in Go 1.27). A run that fails
# that way without writing a failing input to testdata/fuzz/<target>/ is
# retried once; a second failure fails.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

inputs() { { find "$1" -type f 2>/dev/null || true; } | wc -l; }

for pkg in $("$GO" list ./...); do
  for f in $("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f"
    dir="$("$GO" list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$f"
    for try in 1 2; do
      before=$(inputs "$dir")
      if out=$("$GO" test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
        break
      fi
      if [ "$try" = 1 ] && [ "$(inputs "$dir")" = "$before" ] && grep -q 'context deadline exceeded' <<<"$out"; then
        echo "  $f: \"context deadline exceeded\" with no failing input (golang/go#75804): once more"
        continue
      fi
      echo "$out" | tail -60
      if [ "$(inputs "$dir")" != "$before" ]; then
        echo "the failing input is in $dir: commit it as a regression seed with the fix"
      else
        echo "$f failed without writing a failing input; see its output above"
      fi
      exit 1
    done
  done
done
