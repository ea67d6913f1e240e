#!/usr/bin/env bash
# Copies fastest-runner and the non-glibc shared libraries it links into stage/opt/fastest, the
# build context the Dockerfile COPYs. Run from anywhere:
#   backends/cloudflare/deploy/stage.sh [path/to/fastest-runner]
# The base image's glibc must be at least the build machine's (Debian 12: 2.36).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
RUNNER="${1:-$ROOT/bazel-bin/runner/fastest-runner}"
if [ ! -x "$RUNNER" ]; then
  (cd "$ROOT" && bazel build //runner:fastest-runner)
fi
[ -x "$RUNNER" ] || { echo "stage.sh: $RUNNER not found" >&2; exit 1; }
rm -rf "$HERE/stage"
mkdir -p "$HERE/stage/opt/fastest/bin" "$HERE/stage/opt/fastest/lib"
cp -L "$RUNNER" "$HERE/stage/opt/fastest/bin/fastest-runner"
ldd "$RUNNER" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;  # from the base image
    *) cp -L "$lib" "$HERE/stage/opt/fastest/lib/" ;;
  esac
done
echo "stage.sh: staged $(ls "$HERE/stage/opt/fastest/lib" | wc -l) libraries and the runner"
