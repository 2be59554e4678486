# Shared helpers for hack/*.sh: paths, logging, and starting/stopping the local
# cluster's processes by PID (pid files under .cluster/run/). Sourced, not run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="$ROOT/.cluster"
BIN="$CLUSTER_DIR/bin"
RUN="$CLUSTER_DIR/run"
LOGS="$CLUSTER_DIR/logs"
# Caches that outlive a clone (CI clones into another folder on the same machine).
CACHE="${KACI_CACHE:-/var/cache/kaci}"
REGISTRY="127.0.0.1:5000"
# Go as the machine image installs it, even when a login shell did not add it.
export PATH="$BIN:$PATH:/usr/local/go/bin"

mkdir -p "$BIN" "$RUN" "$LOGS"

log() { printf '\033[1m[%s %s]\033[0m %s\n' "$(date +%T)" "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_of NAME: the PID in .cluster/run/NAME.pid when that process is alive and
# is ours: every process we start names a path under this .cluster/ in its
# command line, so a recycled PID (after the session's processes were killed)
# is not mistaken for it.
pid_of() {
  local f="$RUN/$1.pid" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  # No `| grep -q` under pipefail: grep quitting early can SIGPIPE the writer.
  local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  case "$cmd" in *"$CLUSTER_DIR/"*) echo "$pid" ;; *) return 1 ;; esac
}

# start_bg NAME CMD...: start CMD detached (own session, so it outlives the
# caller's job), stdout/stderr to .cluster/logs/NAME.log, PID to run/NAME.pid.
# The pid file is written by the process itself right before exec, so it holds
# the real PID of the daemon, not of a wrapper.
start_bg() {
  local name="$1"; shift
  if pid_of "$name" >/dev/null; then return 0; fi
  rm -f "$RUN/$name.pid"
  # The daemon inherits no descriptor but 0-2: above all not the lock of
  # take_lock (or of a caller's flock), which it would hold for its lifetime.
  setsid -f bash -c '
    for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done
    echo $$ > "$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null
  local i
  for i in $(seq 50); do [ -s "$RUN/$name.pid" ] && return 0; sleep 0.1; done
  die "$name did not start (see $LOGS/$name.log)"
}

# write_file PATH: stdin to PATH, but only when the content differs. A running
# kube-proxy exits when its config file is rewritten, so a second `up` must not
# touch files whose content it would not change.
write_file() {
  local tmp; tmp="$(mktemp "$1.XXXXXX")"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

# stop_pid NAME: SIGTERM the process in run/NAME.pid, wait up to 20 s, then SIGKILL.
stop_pid() {
  local name="$1" pid i
  if pid="$(pid_of "$name")"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 20 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/$name.pid"
}

# wait_for DESCRIPTION SECONDS CMD...: retry CMD every 0.5 s until it succeeds.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  log "$what: ready"
}

# holder_of_port PORT: PID of the process listening on 127.0.0.1/any PORT (TCP).
holder_of_port() {
  { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; } || true
}

# take_lock: one `up`/`down` at a time on this machine (the ports are machine-wide,
# and several test sessions call `up` at once). Held until the script exits.
take_lock() {
  # KACI_LOCK_HELD=1: the caller already holds it (a script driving several steps).
  [ "${KACI_LOCK_HELD:-0}" = 1 ] && return 0
  mkdir -p /run/lock
  exec 9>"${KACI_LOCK:-/run/lock/kaci-cluster.lock}"
  if ! flock -n 9; then
    log "waiting for another hack/cluster.sh to finish (lock ${KACI_LOCK:-/run/lock/kaci-cluster.lock})"
    flock -w 1800 9 || die "gave up waiting for the lock after 30 min"
  fi
}
