#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the image builds need.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
packages=(
  docker.io docker-registry containerd runc containernetworking-plugins etcd-server
  iptables conntrack socat ipset debootstrap wrk lua5.4 curl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services are started by hack/cluster.sh with our own flags, never by the package scripts.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
