#!/bin/sh
# core/abi/abi_golden_test.sh: fails when backend_abi.h changed without a recorded decision.
#
# backend_abi.golden holds one line per accepted header state: "<major>.<minor> <sha256>". The test
# requires that (a) the last line's hash is the header's current sha256 and (b) its version is the
# header's FASTEST_BACKEND_ABI_MAJOR.FASTEST_BACKEND_ABI_MINOR.
#
# When you change the header, decide first:
#   - slots appended at the end of the table -> bump FASTEST_BACKEND_ABI_MINOR;
#   - anything else that breaks old plugins  -> new _v2 struct and FASTEST_BACKEND_ABI_MAJOR;
#   - comments only                           -> no bump.
# then record it:  core/abi/update_abi_golden.sh   (from the repository root)
set -eu
header="$1"
golden="$2"

if [ ! -f "$header" ] || [ ! -f "$golden" ]; then
  echo "FAIL: missing $header or $golden" >&2
  exit 1
fi
major=$(sed -n 's/^#define FASTEST_BACKEND_ABI_MAJOR \([0-9][0-9]*\).*/\1/p' "$header")
minor=$(sed -n 's/^#define FASTEST_BACKEND_ABI_MINOR \([0-9][0-9]*\).*/\1/p' "$header")
actual=$(sha256sum "$header" | cut -d' ' -f1)
last=$(grep -v '^#' "$golden" | grep -v '^$' | tail -n 1)
recorded_version=${last%% *}
recorded_hash=${last#* }

status=0
if [ "$recorded_hash" != "$actual" ]; then
  echo "FAIL: core/abi/backend_abi.h changed (sha256 $actual, recorded $recorded_hash)." >&2
  status=1
fi
if [ "$recorded_version" != "$major.$minor" ]; then
  echo "FAIL: header says ABI $major.$minor, golden records $recorded_version." >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  cat >&2 <<'MSG'
Changing the plugin ABI header needs a version decision:
  appended slots at the end of the table -> bump FASTEST_BACKEND_ABI_MINOR
  a breaking change                      -> new _v2 struct + bump FASTEST_BACKEND_ABI_MAJOR
  comments only                          -> no bump
Then run, from the repository root:  core/abi/update_abi_golden.sh
MSG
  exit 1
fi
echo "backend_abi.h matches the recorded ABI $major.$minor hash"
