#!/usr/bin/env bash
# The local cluster's PKI, made with openssl under .cluster/pki (idempotent: an
# existing file is kept). Also writes the kubeconfigs of every component and the
# admin's (.cluster/kubeconfig, context kaci-local).
#   hack/pki.sh NODE_NAME NODE_IP
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"
NODE="$1"
NODE_IP="$2"
PKI="$CLUSTER_DIR/pki"
mkdir -p "$PKI"
cd "$PKI"
umask 077

DAYS=3650
if [ ! -s ca.crt ]; then
  log "pki: CA"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$DAYS" \
    -subj "/CN=kaci-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
fi

# cert NAME SUBJECT EXTKEYUSAGE [SANS]: a key and a certificate signed by the CA
# (by the CA named in $SIGNER instead, when set).
cert() {
  local name="$1" subj="$2" eku="$3" sans="${4:-}"
  [ -s "$name.crt" ] && return 0
  log "pki: $name ($subj)"
  local ext; ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  local ca="${SIGNER:-ca}"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -out "$name.crt" -days "$DAYS" -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=kaci-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE" clientAuth
cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE" serverAuth "IP:127.0.0.1,IP:$NODE_IP,DNS:$NODE,DNS:localhost"
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert coredns "/CN=kaci:coredns" clientAuth
# The aggregation layer (metrics-server's metrics.k8s.io): the apiserver proxies to
# an extension apiserver with this client cert, which trusts the X-Remote-User
# headers only from a cert of this separate CA (a cluster client cert must not be
# able to claim any user in a header).
if [ ! -s front-proxy-ca.crt ]; then
  log "pki: front-proxy CA (aggregation layer)"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days "$DAYS" \
    -subj "/CN=kaci-local-front-proxy-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
fi
SIGNER=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" clientAuth
# metrics-server's serving cert: the APIService pins the cluster CA (caBundle)
# instead of skipping TLS verification.
cert metrics-server "/CN=metrics-server.kube-system.svc" serverAuth \
  "DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
if [ ! -s sa.key ]; then
  log "pki: service-account key pair"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi

# kubeconfig FILE CERTNAME: credentials of CERTNAME for https://127.0.0.1:6443.
kubeconfig() {
  local file="$1" name="$2"
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kaci-local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $PKI/ca.crt
users:
- name: $name
  user:
    client-certificate: $PKI/$name.crt
    client-key: $PKI/$name.key
contexts:
- name: kaci-local
  context: {cluster: kaci-local, user: $name}
current-context: kaci-local
KC
}
for c in controller-manager scheduler kubelet-client kube-proxy coredns; do
  kubeconfig "$PKI/$c.kubeconfig" "$c"
done
# The admin's, with the certificate data inline so it can be copied elsewhere.
umask 022
cat >"$CLUSTER_DIR/kubeconfig.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kaci-local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: kaci-admin
  user:
    client-certificate-data: $(base64 -w0 admin.crt)
    client-key-data: $(base64 -w0 admin.key)
contexts:
- name: kaci-local
  context: {cluster: kaci-local, user: kaci-admin}
current-context: kaci-local
KC
chmod 600 "$CLUSTER_DIR/kubeconfig.tmp"
mv "$CLUSTER_DIR/kubeconfig.tmp" "$CLUSTER_DIR/kubeconfig"
