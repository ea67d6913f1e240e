#!/usr/bin/env bash
# Fails if a committed C/C++ source uses a non-cryptographic random generator outside the
# allow-list below. Tokens, unguessable ids, device codes and secrets must come from
# core/crypto/secure_random.h (the kernel CSPRNG); an ordinary PRNG is fine only for non-secret
# uses (retry jitter, seeded test data, temp-file names opened with O_EXCL), each listed here
# with its reason.
#
# Usage: weak_random_lint.sh [ROOT]   (default: the source tree this script lives in)
set -euo pipefail

ALLOWED=(
  "core/retry/backoff.cc"                # retry jitter (the one backoff for every client)
  "core/snapshot/safe_fs.cc"             # temp-file name, created with O_EXCL (retries on clash)
  "tests/runner/snapshot_pipeline_test.cc" # seeded file contents
  "tools/bench/snapshot_bench.cc"        # seeded file contents
)
PATTERN='std::random_device|random_device[[:space:]]*[({]|mt19937|minstd_rand|default_random_engine|BitGen|(^|[^[:alnum:]_.>])s?rand[[:space:]]*\(|drand48|(^|[^[:alnum:]_])random[[:space:]]*\([[:space:]]*\)'

root="${1:-}"
if [[ -z "$root" ]]; then
  # Under `bazel test` this script is a runfiles symlink into the source tree: follow it.
  self="$(readlink -f "${BASH_SOURCE[0]}")"
  root="$(cd "$(dirname "$self")/../.." && pwd)"
fi
cd "$root"

if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git -C "$root" ls-files -- '*.cc' '*.h' '*.c' '*.cpp' '*.hpp' | grep -v '^third_party/')
else
  mapfile -t files < <(find . -path ./third_party -prune -o -path './bazel-*' -prune -o \
      -type f \( -name '*.cc' -o -name '*.h' -o -name '*.c' -o -name '*.cpp' -o -name '*.hpp' \) -print |
      sed 's|^\./||')
fi
if (( ${#files[@]} < 1 )); then
  echo "weak_random_lint: no sources found under $root" >&2
  exit 2
fi

is_allowed() {
  local f
  for f in "${ALLOWED[@]}"; do [[ "$1" == "$f" ]] && return 0; done
  return 1
}

bad=0
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  is_allowed "$f" && continue
  if hits="$(grep -nE "$PATTERN" "$f" | grep -vE '^[0-9]+:[[:space:]]*//')"; then
    while IFS= read -r line; do
      echo "$f:$line" >&2
    done <<<"$hits"
    bad=1
  fi
done
if (( bad )); then
  echo "weak_random_lint: use core/crypto/secure_random.h for tokens, ids and secrets;" \
       "a non-secret PRNG use must be added to the allow-list in tests/lint/weak_random_lint.sh" >&2
  exit 1
fi
echo "weak_random_lint: ${#files[@]} files clean"
