#!/usr/bin/env bash
# kaci's one-command demo: the Azure ML MNIST tutorial's model, deployed the three
# Azure ways (from model files, from a registered Model, from a built Image) by the
# kaci operator installed with Helm, then scored.
#
#   hack/demo.sh local   # (make demo) the local cluster from `make cluster`
#   hack/demo.sh kind    # (make demo CLUSTER=kind) a kind cluster with a local registry
#
# local: `make cluster` has started Docker, the registry on 127.0.0.1:5000 and the
#   cluster (the script runs `hack/cluster.sh up` again, which reuses what runs).
#   Everything is built offline from the local base image and wheelhouse.
# kind: needs Docker, kind, kubectl and helm on PATH and internet access (Docker Hub
#   for kindest/node, registry:2 and python:3.11-slim; PyPI). It follows kind's
#   "local registry" guide: a registry container beside the cluster, containerd told
#   where it is, and the local-registry-hosting ConfigMap. The host's Docker socket
#   is mounted into the kind node so the operator's builds run in the host's engine,
#   which pushes to the registry. This path cannot run on the machines kaci is tested
#   on (no Docker Hub there): it is kept short and close to kind's documentation.
#
# Environment: KACI_DEMO_NAMESPACE (default kaci-demo), KACI_DEMO_TIMEOUT (default 20m),
# KACI_DEMO_HELM_ARGS (more `helm upgrade` arguments, e.g. "--set rbac.namespaced=true
# --set watchNamespaces={kaci-demo}" on a cluster shared with other kaci operators).
set -euo pipefail
mode="${1:-local}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.cluster/bin:$root/.venv/bin:$PATH"
ns="${KACI_DEMO_NAMESPACE:-kaci-demo}"
timeout="${KACI_DEMO_TIMEOUT:-20m}"
release=kaci
operator_ns=kaci-system
read -r -a helm_args <<<"${KACI_DEMO_HELM_ARGS:-}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

install_local() {
  export KUBECONFIG="$root/.cluster/kubeconfig"
  step "local cluster (hack/cluster.sh up: reuses what already runs)"
  hack/cluster.sh up
  step "operator image (offline, from 127.0.0.1:5000/kaci/python:3.11 and its wheelhouse)"
  local ref
  ref="$(hack/build-operator-image.sh)"
  echo "$ref"
  step "helm upgrade --install $release charts/kaci"
  # The operator runs as user 1000; the node's Docker socket is root:<group> 0660,
  # so the Pod gets that group (its number differs from machine to machine).
  helm upgrade --install "$release" charts/kaci --namespace "$operator_ns" --create-namespace \
    -f charts/kaci/ci/local-values.yaml \
    --set "image.repository=${ref%:*}" --set "image.tag=${ref##*:}" \
    --set "podSecurityContext.supplementalGroups[0]=$(stat -c %g /var/run/docker.sock)" \
    "${helm_args[@]}" --wait --timeout 5m
}

install_kind() {
  local cluster=kaci reg_name=kaci-registry reg_port=5001
  mkdir -p "$root/.cluster/kind"
  export KUBECONFIG="$root/.cluster/kind/kubeconfig"
  step "registry container $reg_name on localhost:$reg_port"
  if [ "$(docker inspect -f '{{.State.Running}}' "$reg_name" 2>/dev/null || true)" != true ]; then
    docker run -d --restart=always -p "127.0.0.1:$reg_port:5000" --network bridge \
      --name "$reg_name" registry:2
  fi
  step "kind cluster $cluster"
  if ! kind get clusters | grep -qx "$cluster"; then
    # containerd reads per-registry config from certs.d; the host's Docker socket is
    # mounted so the operator (in the node) builds with the host's engine.
    kind create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --config=- <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
  - |-
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
nodes:
  - role: control-plane
    extraMounts:
      - hostPath: /var/run/docker.sock
        containerPath: /var/run/docker.sock
EOF
  fi
  # Inside the nodes, localhost:$reg_port means the registry container.
  for node in $(kind get nodes --name "$cluster"); do
    docker exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:$reg_port"
    printf '[host."http://%s:5000"]\n' "$reg_name" |
      docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:$reg_port/hosts.toml"
  done
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$reg_name")" = null ]; then
    docker network connect kind "$reg_name"
  fi
  # Tells tools (and people) where the cluster's local registry is (KEP-1755).
  kubectl apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$reg_port"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
  step "operator image (python:3.11-slim and PyPI)"
  local ref
  ref="$(BASE_IMAGE=python:3.11-slim PIP_OPTIONS='' REGISTRY="localhost:$reg_port" \
    hack/build-operator-image.sh)"
  echo "$ref"
  step "helm upgrade --install $release charts/kaci"
  helm upgrade --install "$release" charts/kaci --namespace "$operator_ns" --create-namespace \
    --set "image.repository=${ref%:*}" --set "image.tag=${ref##*:}" \
    --set "registry.url=localhost:$reg_port" --set registry.insecure=true \
    --set "podSecurityContext.supplementalGroups[0]=$(stat -c %g /var/run/docker.sock)" \
    "${helm_args[@]}" --wait --timeout 5m
}

walkthrough() {
  step "train the model (examples/mnist/train.py: scikit-learn's digits as 28x28 MNIST)"
  python examples/mnist/train.py
  step "deploy the three Azure ways into namespace $ns (kubectl apply -k examples/mnist)"
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  kubectl apply -k examples/mnist --namespace "$ns"
  step "wait until the Webservices are Ready (builds the scoring images: a few minutes the first time)"
  local start=$SECONDS
  if ! kubectl wait --for=condition=Ready webservice --all --namespace "$ns" --timeout "$timeout"; then
    kubectl get kaci --namespace "$ns" || true
    kubectl --namespace "$operator_ns" logs "deploy/$release" --tail 40 || true
    echo "demo: the Webservices did not become Ready (see above)" >&2
    exit 1
  fi
  echo "Ready after $((SECONDS - start)) s"
  kubectl get kaci --namespace "$ns"
  step "score 5 samples (examples/mnist/sample-request.json) through the API server's service proxy"
  for ws in $(kubectl get webservices --namespace "$ns" -o name); do
    local name="${ws#*/}"
    printf '%-12s state=%-8s uri=%s\n' "$name" \
      "$(kubectl get "$ws" -n "$ns" -o jsonpath='{.status.state}')" \
      "$(kubectl get "$ws" -n "$ns" -o jsonpath='{.status.scoringUri}')"
    printf '%-12s predictions=%s\n' "" "$(kubectl create --raw \
      "/api/v1/namespaces/$ns/services/$name:80/proxy/score" -f examples/mnist/sample-request.json)"
  done
  step "clean up"
  cat <<EOF
  kubectl delete namespace $ns                  # the Webservices, Images, Models and their Pods
  helm uninstall $release -n $operator_ns        # the operator (CRDs stay: kubectl delete crd -l app.kubernetes.io/part-of=kaci)
EOF
  if [ "$mode" = kind ]; then
    echo "  kind delete cluster --name kaci && docker rm -f kaci-registry"
  else
    echo "  make cluster-down                             # stop the local cluster"
  fi
  echo "  (KUBECONFIG=$KUBECONFIG)"
}

case "$mode" in
  local) install_local ;;
  kind) install_kind ;;
  *) echo "usage: $0 [local|kind]" >&2; exit 2 ;;
esac
walkthrough
