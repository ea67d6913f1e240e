#!/usr/bin/env bash
# Installs every Debian package fastest needs to build, test and run, and the dashboard's
# browser test driver from npm. Idempotent: when everything is present it installs nothing and
# says so.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ make pkg-config git ca-certificates
  # libraries
  libboost-dev libboost-filesystem-dev libboost-system-dev
  nlohmann-json3-dev libcurl4-openssl-dev libabsl-dev libgtest-dev libgmock-dev
  libsqlite3-dev libssl-dev zlib1g-dev
  # ICU collation for manifests in the original TypeScript runner's order (dlopen'ed by the runner)
  libicu-dev
  # engines and runtime
  docker.io podman runc catatonit iproute2 procps tar zstd curl
  # the sandbox image's shell and basic tools
  busybox-static
  # the agent is installed from npm (nodejs from Debian ships npm too)
  nodejs
  # the dashboard's browser test (headless Chromium; a font for its screenshots)
  chromium fonts-dejavu-core
  # //tools/bench:http_bench: the load generator and the reference server
  wrk nginx-light
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# Debian splits npm out of nodejs; other nodejs builds bundle it.
if dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed" &&
   ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# The dashboard test's driver: puppeteer-core at the version pinned in
# tests/dashboard/package.json, into tests/dashboard/node_modules (gitignored, bazelignored).
# It drives the Debian chromium; it downloads no browser of its own.
dashboard_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/dashboard"
want=$(sed -n 's/.*"puppeteer-core": *"\([^"]*\)".*/\1/p' "$dashboard_dir/package.json")
have=$(node -p "require(process.argv[1]).version" \
  "$dashboard_dir/node_modules/puppeteer-core/package.json" 2>/dev/null || true)
if [ "$have" = "$want" ]; then
  echo "setup: puppeteer-core $want present"
else
  echo "setup: npm install puppeteer-core@$want"
  (cd "$dashboard_dir" && npm install --no-audit --no-fund --no-package-lock --omit=dev \
    --loglevel=error >/dev/null)
  echo "setup: done"
fi
