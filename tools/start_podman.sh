#!/usr/bin/env bash
# Starts the Podman REST API service for fastest when it is not already answering. Idempotent.
#
#   tools/start_podman.sh            # start (or confirm) `podman system service` on the socket
#   tools/start_podman.sh --stop     # stop the service this script started (pidfile), nothing else
#
# Socket: $FASTEST_PODMAN_SOCK (default /run/podman/podman.sock, rootful). The one socket serves the
# libpod API (/v4.x/libpod/...) and the Docker-compatible API (/v1.41/...).
#
# Configuration this script writes (once) so podman works on this machine, CLI and API alike:
#   /etc/containers/containers.conf.d/50-fastest.conf
#     [engine] runtime = "runc"      crun is picked when installed and fails here
#                                    ("cgroups in hybrid mode not supported")
#     [engine] cgroup_manager = "cgroupfs"   there is no systemd
#     [containers] default_ulimits   podman raises RLIMIT_NOFILE/NPROC to the host max by default,
#                                    which fails here ("error setting rlimit type 7: operation not
#                                    permitted"); explicit lower limits work.
#     [containers] init_path         only when catatonit is missing: tini-static (from docker.io)
#                                    serves HostConfig.Init instead.
# The fastest podman backend still sends explicit Ulimits per container (derived from the instance
# type), so it does not depend on this file. Set FASTEST_PODMAN_NO_CONF=1 to skip writing it.
# --time=0: the service never exits on idle.
set -euo pipefail

SOCK="${FASTEST_PODMAN_SOCK:-/run/podman/podman.sock}"
LOG="${FASTEST_PODMAN_LOG:-/var/log/fastest-podman.log}"
PIDFILE="${FASTEST_PODMAN_PIDFILE:-/run/fastest-podman.pid}"
TIMEOUT="${FASTEST_PODMAN_TIMEOUT:-30}"
CONF_DIR=/etc/containers/containers.conf.d
CONF="$CONF_DIR/50-fastest.conf"

. "$(dirname "$0")/lib/daemon.sh"

if [ "${1:-}" = "--stop" ]; then
  daemon_stop start_podman "$PIDFILE"
  exit 0
fi

if [ "${FASTEST_PODMAN_NO_CONF:-0}" != "1" ]; then
  # HostConfig.Init needs an init binary: catatonit (package catatonit) or, failing that, tini.
  init_line=""
  if [ ! -x /usr/libexec/podman/catatonit ] && [ ! -x /usr/bin/catatonit ]; then
    if [ -x /usr/bin/tini-static ]; then
      init_line='init_path = "/usr/bin/tini-static"'
    else
      echo "start_podman: warning: no catatonit (apt-get install catatonit): sandboxes with Init will fail" >&2
    fi
  fi
  want="$(cat <<CONF
# Written by fastest tools/start_podman.sh - see that script for why.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
$init_line

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
)"
  if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
    mkdir -p "$CONF_DIR"
    printf '%s\n' "$want" >"$CONF"
    echo "start_podman: wrote $CONF"
  fi
fi

if ! daemon_ping "$SOCK" && ! command -v podman >/dev/null 2>&1; then
  echo "start_podman: podman is not installed (run tools/setup.sh: packages podman runc)" >&2
  exit 1
fi

daemon_ensure start_podman "$SOCK" "$LOG" "$PIDFILE" "$TIMEOUT" \
  podman --runtime runc system service --time=0 "unix://$SOCK"
