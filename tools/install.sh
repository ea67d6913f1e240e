#!/usr/bin/env bash
# Builds fastest optimised and installs it under PREFIX:
#   PREFIX/bin/{fastest-server,fastest,fastest-runner}
#   PREFIX/lib/fastest/libfastest_backend_{docker,podman,cloudflare}.so
# An installed fastest-server finds its plugins in <bindir>/../lib/fastest without flags, and the
# CLI finds fastest-server next to itself.
#
# Usage: tools/install.sh PREFIX        e.g. sudo tools/install.sh /usr/local
#        DESTDIR=/tmp/stage tools/install.sh /usr   (stage for packaging: files go to
#                                                    $DESTDIR$PREFIX, paths stay relative)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PREFIX   (e.g. $0 /usr/local)" >&2
  exit 2
fi
case "$1" in
  /*) prefix="$1" ;;
  *) prefix="$(pwd)/$1" ;;
esac
dest="${DESTDIR:-}${prefix}"

cd "$(dirname "$0")/.."
backends=(docker podman cloudflare)
targets=(//server:fastest-server //tools/cli:fastest //runner:fastest-runner)
for b in "${backends[@]}"; do targets+=("//backends/$b:libfastest_backend_$b.so"); done

echo "install: bazel build -c opt ${targets[*]}"
bazel build -c opt "${targets[@]}"
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"

install -d -m 0755 "$dest/bin" "$dest/lib/fastest"
install -m 0755 "$bin/server/fastest-server" "$dest/bin/fastest-server"
install -m 0755 "$bin/tools/cli/fastest" "$dest/bin/fastest"
install -m 0755 "$bin/runner/fastest-runner" "$dest/bin/fastest-runner"
for b in "${backends[@]}"; do
  install -m 0644 "$bin/backends/$b/libfastest_backend_$b.so" "$dest/lib/fastest/"
done

echo "install: done"
echo "  $dest/bin/fastest-server  $dest/bin/fastest  $dest/bin/fastest-runner"
echo "  $dest/lib/fastest/libfastest_backend_{$(IFS=,; echo "${backends[*]}")}.so"
