#!/usr/bin/env bash
# Simulated nodes for bench/scale's kwok mode (issue #18): kwok's controller
# (sigs.k8s.io/kwok, built from its Go module, cached in $CACHE/kwok-<version>/) runs
# beside the local cluster as a host process and plays the kubelet of N fake Nodes:
# their Pods turn Running and Ready at once, with no container, so a benchmark
# measures the operator and the control plane, not the one real node.
#
#   hack/kwok.sh binary   build (or reuse) the kwok binary
#   hack/kwok.sh up [N]   start the controller, make N nodes (default 100), wait Ready
#   hack/kwok.sh down     delete the fake nodes (and their Pods), stop the controller
#   hack/kwok.sh status   the controller's PID and the fake nodes
#
# The fake nodes are tainted kwok.x-k8s.io/node=fake:NoSchedule and labelled
# type=kwok, so nothing lands on them that does not ask to: the operator's
# serving.nodeSelector / serving.tolerations (KACI_SCORING_*) do, in the bench.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

KWOK_VERSION="v0.7.0"
KWOK_BIN="$CACHE/kwok-$KWOK_VERSION/kwok"
SELECTOR="kwok.x-k8s.io/node=fake"
# Each fake node is large: capacity is not what the benchmark measures.
NODE_PODS=1000

kubectl_() { "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

binary() {
  if [ -x "$KWOK_BIN" ]; then echo "$KWOK_BIN"; return; fi
  command -v go >/dev/null || die "go is needed to build kwok (see hack/README.md)"
  local dir t0; t0=$(date +%s)
  dir="$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')" || true
  [ -d "$dir" ] || die "go mod download sigs.k8s.io/kwok@$KWOK_VERSION failed"
  mkdir -p "${KWOK_BIN%/*}"
  log "go build kwok $KWOK_VERSION (cold ~4 min on 2 cores; log $LOGS/kwok-build.log)"
  ( cd "$dir" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" \
      -o "$KWOK_BIN.tmp" ./cmd/kwok ) >"$LOGS/kwok-build.log" 2>&1 \
    || { rm -f "$KWOK_BIN.tmp"; die "go build kwok failed (see $LOGS/kwok-build.log)"; }
  mv -f "$KWOK_BIN.tmp" "$KWOK_BIN"
  log "go build kwok: $(( $(date +%s) - t0 )) s"
  echo "$KWOK_BIN"
}

nodes_manifest() { # N: the Node objects, one YAML stream
  local i
  for i in $(seq 0 $(( $1 - 1 ))); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
spec:
  taints:
    - {key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}
status:
  capacity: {cpu: "64", memory: 512Gi, pods: "$NODE_PODS"}
  allocatable: {cpu: "64", memory: 512Gi, pods: "$NODE_PODS"}
EOF
  done
}

nodes_ready() { # N: at least N fake nodes report Ready
  local ready
  ready="$(kubectl_ get nodes -l type=kwok -o \
    jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | grep -c True || true)"
  [ "$ready" -ge "$1" ]
}

up() {
  local n="${1:-100}" bin
  bin="$(binary)"
  # Pod IPs from a range of their own, never routed: nothing connects to them.
  start_bg kwok "$bin" --kubeconfig "$CLUSTER_DIR/kubeconfig" \
    --manage-nodes-with-annotation-selector "$SELECTOR" \
    --cidr 10.250.0.0/16 --node-ip 10.250.255.254 \
    --node-lease-duration-seconds 40
  log "kwok: $n fake nodes"
  # --force-conflicts: Nodes left by an earlier run carry the node controller's
  # annotations, which a plain server-side apply refuses to take over.
  nodes_manifest "$n" | kubectl_ apply --server-side --force-conflicts -f - >/dev/null
  wait_for "$n kwok nodes Ready" 300 nodes_ready "$n" \
    || die "the kwok nodes were not Ready in 300 s (see $LOGS/kwok.log)"
  log "kwok: $n nodes Ready (controller pid $(pid_of kwok))"
}

down() {
  if kubectl_ get nodes -l type=kwok -o name 2>/dev/null | grep -q .; then
    log "kwok: deleting the fake nodes and their Pods"
    kubectl_ delete nodes -l type=kwok --wait=false >/dev/null
    # Pods bound to a deleted node are removed by the controller-manager's pod GC.
  fi
  stop_pid kwok
}

status() {
  if pid="$(pid_of kwok)"; then echo "kwok controller: pid $pid"; else echo "kwok controller: not running"; fi
  kubectl_ get nodes -l type=kwok --no-headers 2>/dev/null | awk '{print $2}' | sort | uniq -c \
    | sed 's/^/fake nodes: /' || true
}

case "${1:-}" in
  binary) binary ;;
  up) up "${2:-100}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 binary|up [N]|down|status" >&2; exit 2 ;;
esac
