# Shared by tools/start_dockerd.sh and tools/start_podman.sh: start an engine daemon that serves an
# HTTP API on a unix socket, once, and wait until it answers /_ping. Source it; do not run it.
#
#   daemon_ping SOCK
#   daemon_stop NAME PIDFILE                     stops only the pid this tooling recorded
#   daemon_ensure NAME SOCK LOG PIDFILE TIMEOUT COMMAND...

daemon_ping() {
  curl -fsS --max-time 2 --unix-socket "$1" http://localhost/_ping >/dev/null 2>&1
}

daemon_stop() {
  local name=$1 pidfile=$2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
    echo "$name: stopped"
  else
    echo "$name: nothing started by this script is running"
  fi
}

daemon_ensure() {
  local name=$1 sock=$2 log=$3 pidfile=$4 timeout=$5
  shift 5
  if daemon_ping "$sock"; then
    echo "$name: already answers on $sock"
    return 0
  fi
  # One started earlier that is still coming up: wait for it instead of racing it.
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name: pid $(cat "$pidfile") is running but not answering yet; waiting"
  else
    mkdir -p "$(dirname "$sock")" "$(dirname "$log")" "$(dirname "$pidfile")"
    # A stale socket from a dead daemon makes it refuse to start.
    [ -S "$sock" ] && rm -f "$sock"
    # setsid: the daemon must outlive this script's session and not get its signals.
    setsid "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    echo "$name: started $1 (pid $!), log $log"
  fi
  local deadline=$((SECONDS + timeout))
  until daemon_ping "$sock"; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name: $1 exited during startup; last log lines ($log):" >&2
      tail -n 20 "$log" >&2 || true
      rm -f "$pidfile"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$name: no answer to /_ping on $sock within ${timeout}s; last log lines ($log):" >&2
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "$name: answers on $sock"
}
