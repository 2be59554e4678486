#!/usr/bin/env bash
# The images every local build and Pod starts from, made here (no registry on the
# internet is reachable) and pushed to the local registry:
#   127.0.0.1:5000/kaci/pause:3.9    the kubelet's sandbox image (static C binary)
#   127.0.0.1:5000/kaci/python:3.11  Debian bookworm python3 + /opt/venv + /wheels
# and the wheelhouse (.cluster/wheelhouse) from hack/wheelhouse.txt.
# Idempotent: what the registry already holds (same content hash) is skipped.
# Needs dockerd and the registry: hack/cluster.sh docker.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"
HACK="$ROOT/hack"
MIRROR="${KACI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The content hash of the inputs of an image, so a changed input means a new tag.
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

manifest_digest() { # repo tag -> digest, or fails when the registry lacks it
  curl -fsI \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' | grep .
}

# registry_current REPO TAG HASHTAG: the registry holds TAG and it is HASHTAG.
registry_current() {
  local a b
  a="$(manifest_digest "$1" "$2")" && b="$(manifest_digest "$1" "$3")" && [ "$a" = "$b" ]
}

push() { # image refs
  local ref
  for ref in "$@"; do docker push -q "$ref" >/dev/null || die "push $ref failed"; done
}

# ---------------------------------------------------------------- pause
pause_image() {
  local h ref repo="kaci/pause"
  h="$(hash_of "$HACK/images/pause/pause.c" "$HACK/images/pause/Dockerfile")"
  ref="$REGISTRY/$repo"
  if registry_current "$repo" 3.9 "3.9-$h"; then log "pause image: $ref:3.9 current"; return; fi
  if ! docker image inspect "$ref:3.9-$h" >/dev/null 2>&1; then
    log "pause image: compiling and building"
    local ctx; ctx="$(mktemp -d)"
    gcc -static -Os -Wall -Werror -o "$ctx/pause" "$HACK/images/pause/pause.c"
    strip "$ctx/pause"
    cp "$HACK/images/pause/Dockerfile" "$ctx/"
    docker build -q -t "$ref:3.9-$h" "$ctx" >/dev/null 2>&1
    rm -rf "$ctx"
  fi
  docker tag "$ref:3.9-$h" "$ref:3.9"
  push "$ref:3.9-$h" "$ref:3.9"
  log "pause image: pushed $ref:3.9"
}

# ---------------------------------------------------------------- wheelhouse
WHEELS="$CLUSTER_DIR/wheelhouse"
wheelhouse() {
  local h; h="$(hash_of "$HACK/wheelhouse.txt")"
  if [ "$(cat "$WHEELS/.kaci-hash" 2>/dev/null)" = "$h" ]; then log "wheelhouse: current"; return; fi
  log "wheelhouse: pip wheel -r hack/wheelhouse.txt (cp311 wheels, dependencies included)"
  rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS.tmp"
  # pip wheel, not pip download: a dependency published only as an sdist becomes
  # a wheel here (host glibc = bookworm's), so images never compile anything.
  python3 -m pip wheel -q --prefer-binary --wheel-dir "$WHEELS.tmp" -r "$HACK/wheelhouse.txt"
  echo "$h" >"$WHEELS.tmp/.kaci-hash"
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  log "wheelhouse: $(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"
}

# ---------------------------------------------------------------- python
ROOTFS_RECIPE="debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm"
rootfs_image() { # prints the local image name of the imported rootfs
  local h tar img
  h="$(echo "$ROOTFS_RECIPE" | sha256sum | cut -c1-12)"
  img="kaci/bookworm-python-rootfs:$h"
  if docker image inspect "$img" >/dev/null 2>&1; then echo "$img"; return; fi
  tar="$CACHE/bookworm-python-rootfs-$h.tar"
  if [ ! -s "$tar" ]; then
    log "rootfs: $ROOTFS_RECIPE (cached in $tar)"
    local dir; dir="$(mktemp -d /var/tmp/kaci-rootfs.XXXX)"
    # shellcheck disable=SC2086
    debootstrap $(echo "$ROOTFS_RECIPE" | cut -d' ' -f2-) "$dir" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
      || die "debootstrap failed (see $LOGS/debootstrap.log)"
    # What the host put there, and what a container image does not need.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/var/log/* "$dir"/etc/hostname "$dir"/etc/resolv.conf
    mkdir -p "$CACHE"
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  log "rootfs: docker import $tar"
  docker import "$tar" "$img" >/dev/null || die "docker import failed"
  echo "$img"
}

python_image() {
  local h ref repo="kaci/python" rootfs
  h="$(hash_of "$HACK/wheelhouse.txt" "$HACK/images/python/Dockerfile" <(echo "$ROOTFS_RECIPE"))"
  ref="$REGISTRY/$repo"
  if registry_current "$repo" 3.11 "3.11-$h"; then log "python image: $ref:3.11 current"; return; fi
  if ! docker image inspect "$ref:3.11-$h" >/dev/null 2>&1; then
    wheelhouse
    rootfs="$(rootfs_image)"
    log "python image: building $ref:3.11-$h (log $LOGS/python-image.log)"
    local ctx; ctx="$(mktemp -d)"
    cp "$HACK/images/python/Dockerfile" "$ctx/"
    cp -al "$WHEELS" "$ctx/wheelhouse" 2>/dev/null || cp -a "$WHEELS" "$ctx/wheelhouse"
    rm -f "$ctx/wheelhouse/.kaci-hash"
    docker build --build-arg "ROOTFS=$rootfs" --label "dev.kaci.wheelhouse=$h" \
      -t "$ref:3.11-$h" "$ctx" >"$LOGS/python-image.log" 2>&1 \
      || { rm -rf "$ctx"; die "python image build failed (see $LOGS/python-image.log)"; }
    rm -rf "$ctx"
  fi
  docker tag "$ref:3.11-$h" "$ref:3.11"
  push "$ref:3.11-$h" "$ref:3.11"
  log "python image: pushed $ref:3.11 ($(docker image inspect -f '{{.Size}}' "$ref:3.11" | numfmt --to=iec))"
}

registry_ok() { curl -fs -o /dev/null "http://$REGISTRY/v2/"; }
registry_ok || die "no registry on $REGISTRY: run hack/cluster.sh docker first"
case "${1:-all}" in
  all) pause_image; python_image ;;
  pause) pause_image ;;
  python) python_image ;;
  wheelhouse) wheelhouse ;;
  *) echo "usage: $0 [all|pause|python|wheelhouse]" >&2; exit 2 ;;
esac
