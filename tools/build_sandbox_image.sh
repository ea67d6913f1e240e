#!/usr/bin/env bash
# Builds the fastest sandbox image OFFLINE from files on this machine and imports it into Docker
# (and optionally Podman). No registry, no Dockerfile: a root filesystem is assembled in a temp dir
# and imported as one layer (`docker import` / `podman import`).
#
# Usage: tools/build_sandbox_image.sh [VERSION] [options]
#   VERSION            image tag, default 0.1.0 -> fastest/sandbox:0.1.0
#   --tag NAME:TAG     full image reference instead of fastest/sandbox:VERSION
#   --runner PATH      fastest-runner binary (default: bazel build //runner:fastest-runner, then
#                      bazel-bin/runner/fastest-runner)
#   --no-runner        leave the runner out (test images)
#   --no-opencode      leave OpenCode out (quick tests; it is ~185 MB)
#   --no-bash          leave /bin/bash out (busybox sh remains)
#   --podman           also import into podman (`podman import`)
#   --no-docker        do not import into docker
#   --rootfs-out DIR   keep the assembled rootfs in DIR (debugging); default: temp dir, removed
#
# Examples:
#   tools/build_sandbox_image.sh                              # fastest/sandbox:0.1.0 into docker
#   tools/build_sandbox_image.sh 0.1.0 --podman               # ... and into podman
#   tools/build_sandbox_image.sh --tag fastest/test-busybox:latest --no-runner --no-opencode --podman
#
# Contents: busybox (sh + coreutils applets, package busybox-static), bash (optional), CA
# certificates, /etc/passwd+group (root, sandbox uid 1000, agent uid 1001), /tmp (1777),
# /workspace, /run/fastest (channel mount point), the runner
# and OpenCode in /usr/local/bin, and every shared library they need (ldd, with the loader).
# OpenCode comes from npm (`opencode-ai`), installed once into $FASTEST_OPENCODE_CACHE
# (default ~/.cache/fastest/opencode); later builds are offline.
# Image config: Cmd ["fastest-runner"], WorkingDir /workspace, Env PATH, FASTEST_AGENT_USER=agent.
# Users with a registry can build the equivalent image from tools/sandbox/Dockerfile.
set -euo pipefail

start_ns=$(date +%s%N)
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=0.1.0
TAG=""
RUNNER=""
WITH_RUNNER=1
WITH_OPENCODE=1
WITH_BASH=1
TO_DOCKER=1
TO_PODMAN=0
ROOTFS_OUT=""
OPENCODE_CACHE="${FASTEST_OPENCODE_CACHE:-$HOME/.cache/fastest/opencode}"
DOCKER_SOCK="${FASTEST_DOCKER_SOCK:-/var/run/docker.sock}"

die() { echo "build_sandbox_image: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --runner) RUNNER="$2"; shift 2 ;;
    --no-runner) WITH_RUNNER=0; shift ;;
    --no-opencode) WITH_OPENCODE=0; shift ;;
    --no-bash) WITH_BASH=0; shift ;;
    --podman) TO_PODMAN=1; shift ;;
    --no-docker) TO_DOCKER=0; shift ;;
    --rootfs-out) ROOTFS_OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) VERSION="$1"; shift ;;
  esac
done
[ -n "$TAG" ] || TAG="fastest/sandbox:$VERSION"

BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then BUSYBOX="$b"; break; fi  # static only
done
[ -n "$BUSYBOX" ] || die "a static busybox is needed: apt-get install -y busybox-static (tools/setup.sh)"

if [ "$TO_DOCKER" = 1 ] && ! curl -fsS --max-time 2 --unix-socket "$DOCKER_SOCK" http://localhost/_ping >/dev/null 2>&1; then
  die "docker does not answer on $DOCKER_SOCK: start it with tools/start_dockerd.sh"
fi
if [ "$TO_PODMAN" = 1 ] && ! command -v podman >/dev/null 2>&1; then
  die "podman is not installed (tools/setup.sh)"
fi

if [ "$WITH_RUNNER" = 1 ]; then
  if [ -z "$RUNNER" ]; then
    RUNNER="$REPO_ROOT/bazel-bin/runner/fastest-runner"
    # Always ask Bazel (a no-op when up to date) so the image never carries a stale runner.
    echo "build_sandbox_image: building //runner:fastest-runner"
    (cd "$REPO_ROOT" && bazel build //runner:fastest-runner) || die "could not build the runner (or pass --runner PATH / --no-runner)"
  fi
  [ -x "$RUNNER" ] || die "runner binary $RUNNER not found or not executable"
fi

OPENCODE_BIN="$OPENCODE_CACHE/node_modules/opencode-linux-x64/bin/opencode"
if [ "$WITH_OPENCODE" = 1 ] && [ ! -x "$OPENCODE_BIN" ]; then
  command -v npm >/dev/null 2>&1 || die "npm is needed once to fetch opencode-ai (or pass --no-opencode)"
  echo "build_sandbox_image: installing opencode-ai into $OPENCODE_CACHE (once)"
  mkdir -p "$OPENCODE_CACHE"
  npm install --prefix "$OPENCODE_CACHE" --no-audit --no-fund opencode-ai >/dev/null ||
    die "npm install opencode-ai failed (or pass --no-opencode)"
  [ -x "$OPENCODE_BIN" ] || die "npm did not produce $OPENCODE_BIN"
fi

if [ -n "$ROOTFS_OUT" ]; then
  ROOTFS="$ROOTFS_OUT"; rm -rf "$ROOTFS"; mkdir -p "$ROOTFS"
else
  ROOTFS="$(mktemp -d /tmp/fastest-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
fi

# Copies a file to the same absolute path inside the rootfs, following symlinks.
put() {
  local src="$1" dst="$ROOTFS${2:-$1}"
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

# Copies a dynamically linked binary's shared libraries (and the loader) at the paths ldd reports.
put_libs() {
  local bin="$1" lib
  ldd "$bin" >/dev/null 2>&1 || return 0   # static
  for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}'); do
    [ -e "$ROOTFS$lib" ] || put "$lib"
  done
}

mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/ssl/certs,root,home/sandbox,proc,sys,dev,run/fastest,var/tmp,workspace,tmp}
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/tmp"
chmod 0700 "$ROOTFS/root"

# busybox: one binary, a symlink per applet in /bin (the sandbox PATH covers /bin).
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
ln -sf /bin/env "$ROOTFS/usr/bin/env"   # for "#!/usr/bin/env" scripts

if [ "$WITH_BASH" = 1 ] && [ -x /bin/bash ]; then
  rm -f "$ROOTFS/bin/bash"
  put /bin/bash
  put_libs /bin/bash
fi

[ -f /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing (package ca-certificates)"
put /etc/ssl/certs/ca-certificates.crt

cat >"$ROOTFS/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
sandbox:x:1000:1000:fastest sandbox:/home/sandbox:/bin/sh
agent:x:1001:1001:fastest agent (no privileges):/nonexistent:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$ROOTFS/etc/group" <<'GR'
root:x:0:
sandbox:x:1000:
agent:x:1001:
nogroup:x:65534:
GR
echo "hosts: files dns" >"$ROOTFS/etc/nsswitch.conf"
chown 1000:1000 "$ROOTFS/home/sandbox"
chmod 0777 "$ROOTFS/workspace"   # the runner may drop to the sandbox user

if [ "$WITH_RUNNER" = 1 ]; then
  put "$RUNNER" /usr/local/bin/fastest-runner
  chmod 0755 "$ROOTFS/usr/local/bin/fastest-runner"
  put_libs "$RUNNER"
  # ICU, which the runner dlopens only for a base manifest in ICU order (the original TypeScript
  # runner's; core/snapshot/manifest_order.h): the major version of the headers it was built with.
  icu_major="$(awk '/#define U_ICU_VERSION_MAJOR_NUM/ {print $3}' /usr/include/unicode/uvernum.h 2>/dev/null || true)"
  # awk reads to the end: an early exit would SIGPIPE ldconfig, and pipefail would end the script.
  icu_lib="$(ldconfig -p | awk -v so="libicui18n.so.$icu_major" '$1 == so && /x86-64/ && !n++ {print $NF}')"
  [ -n "$icu_major" ] && [ -n "$icu_lib" ] || die "libicui18n.so.${icu_major:-?} not found (package libicu-dev)"
  put "$icu_lib"
  put_libs "$icu_lib"
fi
if [ "$WITH_OPENCODE" = 1 ]; then
  put "$OPENCODE_BIN" /usr/local/bin/opencode
  chmod 0755 "$ROOTFS/usr/local/bin/opencode"
  put_libs "$OPENCODE_BIN"
fi

rootfs_kb=$(du -sk "$ROOTFS" | cut -f1)
SANDBOX_PATH="/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"
CMD='["fastest-runner"]'
[ "$WITH_RUNNER" = 1 ] || CMD='["/bin/sh"]'
CHANGES=(
  --change "CMD $CMD"
  --change "WORKDIR /workspace"
  --change "ENV PATH=$SANDBOX_PATH"
  # The runner (root) starts the agent as this unprivileged user.
  --change "ENV FASTEST_AGENT_USER=agent"
  --change "LABEL org.opencontainers.image.title=fastest-sandbox"
  --change "LABEL org.opencontainers.image.version=$VERSION"
)

if [ "$TO_DOCKER" = 1 ]; then
  # A rebuilt tag leaves the old image dangling: remove it afterwards (fails harmlessly when a
  # container still uses it).
  old_id=$(DOCKER_HOST="unix://$DOCKER_SOCK" docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
  tar -C "$ROOTFS" --numeric-owner -c . |
    DOCKER_HOST="unix://$DOCKER_SOCK" docker import "${CHANGES[@]}" - "$TAG" >/dev/null ||
    die "docker import failed"
  new_id=$(DOCKER_HOST="unix://$DOCKER_SOCK" docker image inspect -f '{{.Id}}' "$TAG")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    DOCKER_HOST="unix://$DOCKER_SOCK" docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  size=$(DOCKER_HOST="unix://$DOCKER_SOCK" docker image inspect -f '{{.Size}}' "$TAG")
  echo "build_sandbox_image: docker image $TAG ($((size / 1024 / 1024)) MB)"
fi
if [ "$TO_PODMAN" = 1 ]; then
  old_id=$(podman image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
  tar -C "$ROOTFS" --numeric-owner -c . |
    podman --runtime runc import --quiet "${CHANGES[@]}" - "$TAG" >/dev/null ||
    die "podman import failed"
  new_id=$(podman image inspect -f '{{.Id}}' "$TAG")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
  fi
  echo "build_sandbox_image: podman image $TAG"
fi

elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
echo "build_sandbox_image: $TAG rootfs $((rootfs_kb / 1024)) MB, built in ${elapsed_ms} ms"
