#!/usr/bin/env bash
# Starts dockerd for fastest when it is not already answering. Idempotent.
#
#   tools/start_dockerd.sh            # start (or confirm) dockerd on /var/run/docker.sock
#   tools/start_dockerd.sh --stop     # stop the dockerd this script started (pidfile), nothing else
#
# This machine has no systemd and no outbound network: dockerd runs without iptables and without
# the default bridge (fastest sandboxes use NetworkMode host or none). Log: $FASTEST_DOCKERD_LOG
# (default /var/log/fastest-dockerd.log); pid: $FASTEST_DOCKERD_PIDFILE (default
# /run/fastest-dockerd.pid).
set -euo pipefail

SOCK="${FASTEST_DOCKER_SOCK:-/var/run/docker.sock}"
LOG="${FASTEST_DOCKERD_LOG:-/var/log/fastest-dockerd.log}"
PIDFILE="${FASTEST_DOCKERD_PIDFILE:-/run/fastest-dockerd.pid}"
TIMEOUT="${FASTEST_DOCKERD_TIMEOUT:-30}"

. "$(dirname "$0")/lib/daemon.sh"

if [ "${1:-}" = "--stop" ]; then
  daemon_stop start_dockerd "$PIDFILE"
  exit 0
fi

if ! daemon_ping "$SOCK" && ! command -v dockerd >/dev/null 2>&1; then
  echo "start_dockerd: dockerd is not installed (run tools/setup.sh: package docker.io)" >&2
  exit 1
fi

daemon_ensure start_dockerd "$SOCK" "$LOG" "$PIDFILE" "$TIMEOUT" \
  dockerd --iptables=false --bridge=none --host "unix://$SOCK"
