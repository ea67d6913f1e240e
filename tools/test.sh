#!/usr/bin/env bash
# The test command: installs what is missing, starts the container engines, builds the sandbox
# image, runs every Bazel test target and ends with one line "N passed, M failed".
# Usage: bash tools/test.sh [bazel target patterns...]   (default //...)
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing packages"
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

step "starting container engines"
bash tools/start_dockerd.sh || { echo "dockerd did not start"; echo "0 passed, 1 failed"; exit 1; }
bash tools/start_podman.sh || { echo "podman service did not start"; echo "0 passed, 1 failed"; exit 1; }

step "building the sandbox image"
bash tools/build_sandbox_image.sh --podman ||
  { echo "sandbox image build failed"; echo "0 passed, 1 failed"; exit 1; }
# A 5 MB busybox image for the engine backend tests.
bash tools/build_sandbox_image.sh --tag fastest/test-busybox:latest --no-runner --no-opencode --podman ||
  { echo "test image build failed"; echo "0 passed, 1 failed"; exit 1; }

# Tests that read ../shared (manifest vectors) find it beside the checkout.
if [ -z "${FASTEST_SHARED_DIR:-}" ] && [ -d ../shared ]; then
  export FASTEST_SHARED_DIR="$(cd ../shared && pwd)"
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//...)

step "bazel test ${targets[*]}"
log=$(mktemp)
bazel test --test_summary=short --keep_going "${targets[@]}" 2>&1 | tee "$log"
bazel_rc=${PIPESTATUS[0]}

# Bazel prints one summary line per test target: "//pkg:name   PASSED in 1.2s" (or FAILED,
# TIMEOUT, FLAKY, NO STATUS, FAILED TO BUILD, ...). Count those.
passed=$(grep -E '^//[^ ]+ +(\(cached\) )?PASSED' "$log" | wc -l)
failed=$(grep -E '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)' "$log" | wc -l)
rm -f "$log"
if [ "$bazel_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # A build error before any test ran still has to count as a failure.
  failed=1
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$bazel_rc" -eq 0 ]
