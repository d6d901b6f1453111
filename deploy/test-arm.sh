#!/usr/bin/env bash
# make test-arm: the tests of the agent's packages (edge/... and shared/...)
# built for the two ARM targets the agent ships for, linux/arm64 and
# linux/arm/v7, and run under Debian's qemu-user-static (go test -exec). It
# catches what a cross-build cannot: 32-bit overflows and alignment, and
# size assumptions. The test binaries talk to the same local PostgreSQL,
# Redis and Mosquitto and open the same ptys as on the host (qemu-user
# passes system calls to this kernel).
#
# What does not run here, and why (docs/ARCHITECTURE.md#arm):
#   - edge/cmd/edge-agent's tests that build the edge-agent program and run
#     it as a child process (TestVersion, TestBadConfigExitsTwoNamingTheField,
#     TestAgent, TestHealthcheckAgainstTheAgent, TestReportIntervalSurvivesRestart,
#     TestAgentOnAFullFilesystem): the child is an ARM program
#     the kernel cannot start without binfmt_misc, which these machines lack.
#     They run natively in make test.
#   - -race: the race detector exists for neither target.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

skip='^(TestVersion|TestBadConfigExitsTwoNamingTheField|TestAgent|TestHealthcheckAgainstTheAgent|TestReportIntervalSurvivesRestart|TestAgentOnAFullFilesystem)$'
pkgs=(./edge/... ./shared/...)

run() { # label qemu env...
  local label=$1 qemu=$2
  shift 2
  echo "== $label (qemu: $qemu)"
  env "$@" CGO_ENABLED=0 "$GO" test -count=1 -timeout 20m -exec "$qemu" -skip "$skip" "${pkgs[@]}"
}

# TARGETS picks the targets (the Makefile passes TEST_ARM_TARGETS).
for target in ${TARGETS:-arm64 armv7}; do
  case $target in
  arm64) run linux/arm64 qemu-aarch64-static GOARCH=arm64 ;;
  armv7) run linux/arm/v7 qemu-arm-static GOARCH=arm GOARM=7 ;;
  *) echo "test-arm: unknown target $target (arm64, armv7)" >&2; exit 2 ;;
  esac
done
