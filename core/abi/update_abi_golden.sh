#!/bin/sh
# core/abi/update_abi_golden.sh: records the current backend_abi.h as an accepted state in
# backend_abi.golden (appends "<major>.<minor> <sha256>"). Run from the repository root AFTER
# deciding whether the change needs a FASTEST_BACKEND_ABI_MINOR/MAJOR bump (see
# abi_golden_test.sh). Refuses when the version did not change unless you confirm the edit was
# comment-only with --comments-only.
set -eu
cd "$(dirname "$0")"
header=backend_abi.h
golden=backend_abi.golden
major=$(sed -n 's/^#define FASTEST_BACKEND_ABI_MAJOR \([0-9][0-9]*\).*/\1/p' "$header")
minor=$(sed -n 's/^#define FASTEST_BACKEND_ABI_MINOR \([0-9][0-9]*\).*/\1/p' "$header")
hash=$(sha256sum "$header" | cut -d' ' -f1)
last=$(grep -v '^#' "$golden" 2>/dev/null | grep -v '^$' | tail -n 1 || true)
if [ "$last" = "$major.$minor $hash" ]; then
  echo "backend_abi.golden is already up to date ($major.$minor)"
  exit 0
fi
if [ -n "$last" ] && [ "${last%% *}" = "$major.$minor" ] && [ "${1:-}" != "--comments-only" ]; then
  echo "ABI version is still $major.$minor but the header changed." >&2
  echo "Bump FASTEST_BACKEND_ABI_MINOR (appended slots) or MAJOR (breaking), or re-run with" >&2
  echo "--comments-only if you changed only comments." >&2
  exit 1
fi
echo "$major.$minor $hash" >>"$golden"
echo "recorded ABI $major.$minor $hash"
