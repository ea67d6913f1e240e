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

ping() {
  curl -fsS --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$PIDFILE"
    echo "start_dockerd: stopped"
  else
    echo "start_dockerd: no dockerd started by this script is running"
  fi
  exit 0
fi

if ping; then
  echo "start_dockerd: dockerd already answers on $SOCK"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start_dockerd: dockerd is not installed (run tools/setup.sh: package docker.io)" >&2
  exit 1
fi

# A previous dockerd from this script that is still starting up: wait for it instead of racing.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "start_dockerd: dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
else
  mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
  # A stale socket from a dead daemon makes dockerd refuse to start.
  [ -S "$SOCK" ] && rm -f "$SOCK"
  # setsid: the daemon must outlive this script's session and not get its signals.
  setsid dockerd --iptables=false --bridge=none --host "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "start_dockerd: started dockerd (pid $!), log $LOG"
fi

deadline=$((SECONDS + TIMEOUT))
until ping; do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "start_dockerd: dockerd exited during startup; last log lines ($LOG):" >&2
    tail -n 20 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "start_dockerd: dockerd did not answer /_ping on $SOCK within ${TIMEOUT}s; last log lines ($LOG):" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.2
done
echo "start_dockerd: dockerd answers on $SOCK"
