#!/usr/bin/env bash
# The lint must be able to fail: plant each kind of offender in a scratch tree and expect exit 1,
# and expect exit 0 for the same tree with the offender removed or only in a comment.
set -euo pipefail
lint="$(readlink -f "$1")"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/lintself.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/server"
echo 'int f() { return 1; }' >"$tmp/server/ok.cc"
"$lint" "$tmp" >/dev/null || { echo "clean tree flagged"; exit 1; }

echo '// std::random_device in a comment is fine' >"$tmp/server/comment.cc"
"$lint" "$tmp" >/dev/null || { echo "comment flagged"; exit 1; }

for offender in \
    'std::random_device rd;' \
    'static thread_local std::mt19937_64 rng(1);' \
    'int x = rand();' \
    'srand(42);' \
    'int z = std::rand();' \
    'absl::BitGen gen;' \
    'long y = random();'; do
  echo "$offender" >"$tmp/server/bad.cc"
  if "$lint" "$tmp" >/dev/null 2>&1; then
    echo "not flagged: $offender"
    exit 1
  fi
done
rm "$tmp/server/bad.cc"
# Names that merely contain the letters are not offenders.
echo 'int n = operand(3) + brand(2) + SecureRandomHex(4) + x.rand(1);' >"$tmp/server/names.cc"
"$lint" "$tmp" >/dev/null || { echo "false positive on ordinary names"; "$lint" "$tmp"; exit 1; }
echo "selftest ok"
