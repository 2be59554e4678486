#!/usr/bin/env bash
# The local kaci test cluster, as plain local processes (see hack/README.md).
#
#   hack/cluster.sh up        Docker + registry + base images + Kubernetes (idempotent)
#   hack/cluster.sh docker    only the Docker engine and the registry (component tests)
#   hack/cluster.sh down      stop everything this folder's .cluster/ started, by PID
#   hack/cluster.sh status    what runs
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- Docker + registry
docker_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

up_dockerd() {
  if docker_ok; then log "dockerd: already answering on /var/run/docker.sock"; return; fi
  command -v dockerd >/dev/null || die "dockerd missing: run hack/install-deps.sh"
  # Default data root (/var/lib/docker) on purpose: images survive a new clone.
  # No --containerd: dockerd runs a containerd of its own, apart from the kubelet's.
  log "dockerd: starting (log $LOGS/dockerd.log)"
  start_bg dockerd dockerd --pidfile "$RUN/dockerd.own.pid" -H unix:///var/run/docker.sock \
    --exec-opt native.cgroupdriver=cgroupfs
  wait_for dockerd 120 docker_ok || die "dockerd did not answer in 120 s (see $LOGS/dockerd.log)"
}

registry_ok() { curl -fs -o /dev/null "http://$REGISTRY/v2/"; }

up_registry() {
  if registry_ok; then log "registry: already answering on $REGISTRY"; return; fi
  mkdir -p "$CLUSTER_DIR/registry/data"
  cat >"$CLUSTER_DIR/registry/config.yml" <<CFG
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $CLUSTER_DIR/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
CFG
  log "registry: starting on $REGISTRY (log $LOGS/registry.log)"
  start_bg registry docker-registry serve "$CLUSTER_DIR/registry/config.yml"
  wait_for registry 30 registry_ok || die "registry did not answer in 30 s (see $LOGS/registry.log)"
}

cmd_docker() {
  up_dockerd
  up_registry
}

# ---------------------------------------------------------------- commands
cmd_status() {
  local name pid
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    case "$name" in *.own) continue ;; esac
    if pid="$(pid_of "$name")"; then echo "running  $name (pid $pid)"; else echo "stopped  $name (stale pid file)"; fi
  done
  docker_ok && echo "docker   $(docker version --format '{{.Server.Version}}') on /var/run/docker.sock" || echo "docker   not answering"
  registry_ok && echo "registry http://$REGISTRY" || echo "registry not answering"
}

cmd_down() {
  stop_pid registry
  stop_pid dockerd
}

case "${1:-}" in
  docker) cmd_docker ;;
  up) cmd_docker ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|docker|down|status" >&2; exit 2 ;;
esac
