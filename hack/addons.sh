#!/usr/bin/env bash
# The local cluster's add-ons (issue #16), installed as Pods from plain manifests
# the way a user installs them (see hack/README.md, "Add-ons"):
#   metrics-server v0.7.2  metrics.k8s.io for `kubectl top` and the HPA
#   Traefik v3.6.12        the ingress controller, IngressClass kaci-local,
#                          http://127.0.0.1:8080 and https://127.0.0.1:8443 from the host
# Both built from their Go modules (binaries cached in $CACHE/<name>-<version>/),
# in images FROM scratch pushed to the local registry.
#
#   hack/addons.sh binaries  build (or reuse) the two binaries
#   hack/addons.sh up [NAME] binaries, images, apply, wait until they answer (idempotent;
#                            NAME: only metrics-server or traefik)
#   hack/addons.sh down      delete what `up` applied
#   hack/addons.sh status    their Pods, the APIService, the loopback port
# `hack/cluster.sh up` runs `up` once the node is Ready (KACI_ADDONS=0 skips it).
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

METRICS_SERVER_VERSION="v0.7.2"   # hack/metrics-server/go.mod pins the same
TRAEFIK_VERSION="v3.6.12"
INGRESS_PORT=8080                 # the Traefik Pod's hostPort on 127.0.0.1 (HTTP)
MANIFESTS="$ROOT/hack/manifests/addons"
PKI="$CLUSTER_DIR/pki"

kubectl_() { "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

# ---------------------------------------------------------------- binaries
# go_build_cached NAME VERSION DIR PKG: $CACHE/NAME-VERSION/NAME, built in DIR
# (a module whose go.mod pins VERSION) when missing. Static (FROM scratch images).
go_build_cached() {
  local name="$1" version="$2" dir="$3" pkg="$4" out="$CACHE/$1-$2/$1"
  if [ -x "$out" ]; then echo "$out"; return 0; fi
  command -v go >/dev/null || die "go is needed to build $name (see hack/README.md)"
  mkdir -p "${out%/*}"
  log "go build $name $version (log $LOGS/$name-build.log)"
  local t0; t0=$(date +%s)
  ( cd "$dir" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w ${LDFLAGS_EXTRA:-}" \
      -o "$out.tmp" "$pkg" ) >"$LOGS/$name-build.log" 2>&1 \
    || { rm -f "$out.tmp"; die "go build $name failed (see $LOGS/$name-build.log)"; }
  mv -f "$out.tmp" "$out"
  log "go build $name: $(( $(date +%s) - t0 )) s"
  echo "$out"
}

metrics_server_bin() {
  # The version kubectl/klog report, as upstream's Makefile sets it.
  LDFLAGS_EXTRA="-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    go_build_cached metrics-server "$METRICS_SERVER_VERSION" "$ROOT/hack/metrics-server" \
      sigs.k8s.io/metrics-server/cmd/metrics-server
}

traefik_bin() {
  # Traefik's go.mod has replace directives, so `go install module@version` refuses
  # it: build inside the downloaded module itself, where they apply.
  local dir
  dir="$(cd /tmp && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" \
    | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')" || true
  [ -d "$dir" ] || die "go mod download github.com/traefik/traefik/v3@$TRAEFIK_VERSION failed"
  LDFLAGS_EXTRA="-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    go_build_cached traefik "$TRAEFIK_VERSION" "$dir" ./cmd/traefik
}

cached_or_build() { # NAME VERSION BUILDFN: the cached binary (no Go proxy asked), else BUILDFN
  local c="$CACHE/$1-$2/$1"
  if [ -x "$c" ]; then echo "$c"; else "$3"; fi
}

# ---------------------------------------------------------------- images
manifest_exists() { curl -fsI -o /dev/null \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/$1/manifests/$2"; }

# image NAME VERSION BINARY: 127.0.0.1:5000/kaci/NAME:VERSION-<hash of binary and
# Dockerfile>, built and pushed when the registry lacks it. The Deployments name
# this immutable tag, so a new binary rolls them.
image() {
  local name="$1" version="$2" binary="$3" df="$ROOT/hack/images/$1/Dockerfile" h ref
  h="$(cat "$binary" "$df" | sha256sum | cut -c1-12)"
  ref="$REGISTRY/kaci/$name:$version-$h"
  if ! manifest_exists "kaci/$name" "$version-$h"; then
    log "image $ref: building"
    local ctx; ctx="$(mktemp -d)"
    cp "$binary" "$df" "$ctx/"
    docker build -q -t "$ref" "$ctx" >"$LOGS/$name-image.log" 2>&1 \
      || { rm -rf "$ctx"; die "docker build $name failed (see $LOGS/$name-image.log)"; }
    rm -rf "$ctx"
    docker push -q "$ref" >/dev/null || die "docker push $ref failed"
  fi
  echo "$ref"
}

# ---------------------------------------------------------------- install
# The apiserver proxies to metrics-server only with the aggregation layer
# (requestheader CA + proxy client cert, hack/cluster.sh). Registering the
# APIService without it would leave an unavailable API group, and an unavailable
# group stalls every namespace deletion in the cluster: so it is registered only
# when the apiserver published its requestheader CA.
aggregation_layer_on() {
  [ -n "$(kubectl_ -n kube-system get configmap extension-apiserver-authentication \
    -o jsonpath='{.data.requestheader-client-ca-file}' 2>/dev/null)" ]
}

substitute() { # FILE KEY=VALUE...: FILE with each __KEY__ replaced
  local f="$1" text; shift
  text="$(cat "$f")"
  local kv
  for kv in "$@"; do text="${text//__${kv%%=*}__/${kv#*=}}"; done
  printf '%s\n' "$text"
}

up_metrics_server() {
  local ref; ref="$(image metrics-server "$METRICS_SERVER_VERSION" \
    "$(cached_or_build metrics-server "$METRICS_SERVER_VERSION" metrics_server_bin)")"
  [ -s "$PKI/metrics-server.crt" ] || die "no $PKI/metrics-server.crt: run hack/pki.sh (hack/cluster.sh up does)"
  kubectl_ -n kube-system create secret tls metrics-server-tls \
    --cert="$PKI/metrics-server.crt" --key="$PKI/metrics-server.key" --dry-run=client -o yaml \
    | kubectl_ apply -f - >/dev/null
  substitute "$MANIFESTS/metrics-server.yaml" "IMAGE=$ref" | kubectl_ apply -f - >/dev/null
  if aggregation_layer_on; then
    substitute "$MANIFESTS/metrics-server-apiservice.yaml" "CA_BUNDLE=$(base64 -w0 "$PKI/ca.crt")" \
      | kubectl_ apply -f - >/dev/null
  else
    log "WARNING: kube-apiserver runs without the aggregation layer (no requestheader CA):" \
      "metrics-server runs but metrics.k8s.io is not registered. Restart kube-apiserver with" \
      "hack/cluster.sh's flags: kill \$(cat $RUN/kube-apiserver.pid); hack/cluster.sh up"
  fi
  log "metrics-server: $ref"
}

up_traefik() {
  local ref; ref="$(image traefik "$TRAEFIK_VERSION" \
    "$(cached_or_build traefik "$TRAEFIK_VERSION" traefik_bin)")"
  # Right after `down` the namespace may still be terminating, and an apply into it
  # is refused: wait until it is gone.
  wait_for "namespace kaci-ingress not terminating" 180 ns_not_terminating kaci-ingress \
    || die "namespace kaci-ingress still terminating after 180 s (kubectl get ns kaci-ingress -o yaml)"
  # The static configuration is read once at start: a changed manifest rolls the Pod.
  substitute "$MANIFESTS/traefik.yaml" "IMAGE=$ref" \
    "CONFIG_HASH=$(sha256sum "$MANIFESTS/traefik.yaml" | cut -c1-12)" | kubectl_ apply -f - >/dev/null
  log "traefik: $ref"
}

ns_not_terminating() {
  [ -z "$(kubectl_ get namespace "$1" --ignore-not-found -o jsonpath='{.metadata.deletionTimestamp}')" ]
}

metrics_api_ok() {
  [ "$(kubectl_ get apiservice v1beta1.metrics.k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ]
}
# Any HTTP answer from the hostPort (Traefik says 404 for a path no Ingress has).
ingress_port_ok() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$INGRESS_PORT/"; }

wait_metrics_server() {
  kubectl_ -n kube-system rollout status deployment/metrics-server --timeout=180s >/dev/null \
    || die "metrics-server not ready (kubectl -n kube-system describe pod -l app.kubernetes.io/name=metrics-server)"
  if aggregation_layer_on; then
    wait_for "metrics.k8s.io available" 120 metrics_api_ok \
      || die "APIService v1beta1.metrics.k8s.io not Available (kubectl get apiservice v1beta1.metrics.k8s.io -o yaml)"
  fi
}

wait_traefik() {
  kubectl_ -n kaci-ingress rollout status deployment/traefik --timeout=180s >/dev/null \
    || die "traefik not ready (kubectl -n kaci-ingress describe pod -l app.kubernetes.io/name=traefik)"
  wait_for "ingress on 127.0.0.1:$INGRESS_PORT" 60 ingress_port_ok \
    || die "nothing answers on 127.0.0.1:$INGRESS_PORT (kubectl -n kaci-ingress logs deploy/traefik)"
}

cmd_up() { # [metrics-server|traefik]: one of them, both by default
  case "${1:-all}" in
    all) up_metrics_server; up_traefik; wait_metrics_server; wait_traefik ;;
    metrics-server) up_metrics_server; wait_metrics_server ;;
    traefik) up_traefik; wait_traefik ;;
    *) die "no add-on ${1}: metrics-server or traefik" ;;
  esac
}

cmd_down() {
  # The APIService first: without its backend it would stall namespace deletions.
  kubectl_ delete apiservice v1beta1.metrics.k8s.io --ignore-not-found --wait=false >/dev/null || true
  local f
  for f in traefik.yaml metrics-server.yaml; do
    substitute "$MANIFESTS/$f" IMAGE=none CONFIG_HASH=none \
      | kubectl_ delete -f - --ignore-not-found --wait=false >/dev/null || true
  done
  kubectl_ -n kube-system delete secret metrics-server-tls --ignore-not-found --wait=false >/dev/null || true
  log "add-ons deleted"
}

cmd_status() {
  kubectl_ get pods -A -l 'app.kubernetes.io/name in (metrics-server,traefik)' -o wide 2>/dev/null || true
  if kubectl_ get apiservice v1beta1.metrics.k8s.io >/dev/null 2>&1; then
    kubectl_ get apiservice v1beta1.metrics.k8s.io 2>/dev/null | sed 's/^/  /'
  elif aggregation_layer_on 2>/dev/null; then
    echo "metrics.k8s.io not registered"
  else
    echo "metrics.k8s.io not registered: kube-apiserver runs without the aggregation layer"
  fi
  if ingress_port_ok; then echo "ingress  http://127.0.0.1:$INGRESS_PORT (IngressClass kaci-local)"
  else echo "ingress  not answering on 127.0.0.1:$INGRESS_PORT"; fi
}

case "${1:-}" in
  binaries) metrics_server_bin >/dev/null; traefik_bin >/dev/null ;;
  up) cmd_up "${2:-}" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 binaries|up|down|status" >&2; exit 2 ;;
esac
