#!/usr/bin/env bash
# The images every local build and Pod starts from, made here (no registry on the
# internet is reachable) and pushed to the local registry:
#   127.0.0.1:5000/kaci/pause:3.9    the kubelet's sandbox image (static C binary)
#   127.0.0.1:5000/kaci/python:3.11  Debian bookworm python3 + /opt/venv + /wheels
#   127.0.0.1:5000/kaci/buildkitd:<v> rootless buildkitd (rootlesskit, uidmap, runc)
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

# ---------------------------------------------------------------- rootfs
# rootfs_image NAME RECIPE: prints the local image name of a debootstrap rootfs made
# by RECIPE ("debootstrap <args> bookworm"), imported into Docker; the tarball is
# cached in $CACHE by a hash of the recipe.
rootfs_image() {
  local name="$1" recipe="$2" h tar img
  h="$(echo "$recipe" | sha256sum | cut -c1-12)"
  img="kaci/$name:$h"
  if docker image inspect "$img" >/dev/null 2>&1; then echo "$img"; return; fi
  tar="$CACHE/$name-$h.tar"
  if [ ! -s "$tar" ]; then
    log "rootfs: $recipe (cached in $tar)"
    local dir; dir="$(mktemp -d /var/tmp/kaci-rootfs.XXXX)"
    # shellcheck disable=SC2086
    debootstrap $(echo "$recipe" | cut -d' ' -f2-) "$dir" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
      || die "debootstrap failed (see $LOGS/debootstrap.log)"
    # What the host put there, and what a container image does not need.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/var/log/* "$dir"/etc/hostname "$dir"/etc/resolv.conf
    mkdir -p "$CACHE"
    # The mode bits keep setuid (uidmap's newuidmap/newgidmap are setuid root).
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  log "rootfs: docker import $tar"
  docker import "$tar" "$img" >/dev/null || die "docker import failed"
  echo "$img"
}

# ---------------------------------------------------------------- python
ROOTFS_RECIPE="debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm"
python_image() {
  local h ref repo="kaci/python" rootfs
  h="$(hash_of "$HACK/wheelhouse.txt" "$HACK/images/python/Dockerfile" <(echo "$ROOTFS_RECIPE"))"
  ref="$REGISTRY/$repo"
  if registry_current "$repo" 3.11 "3.11-$h"; then log "python image: $ref:3.11 current"; return; fi
  if ! docker image inspect "$ref:3.11-$h" >/dev/null 2>&1; then
    wheelhouse
    rootfs="$(rootfs_image bookworm-python-rootfs "$ROOTFS_RECIPE")"
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

# ---------------------------------------------------------------- buildkitd
# The chart's buildkitd (rootless: rootlesskit + uidmap; runc for its OCI worker)
# with buildkitd and buildctl from hack/buildkit.sh. Tagged <buildkit version>-<hash of
# the recipe, the Dockerfile and both binaries>, and <buildkit version> moved to it.
BUILDKIT_ROOTFS_RECIPE="debootstrap --variant=minbase --include=ca-certificates,rootlesskit,uidmap,runc,libcap2-bin bookworm"
buildkit_image() {
  local bins version h ref repo="kaci/buildkitd" rootfs
  bins="$("$HACK/buildkit.sh" | tail -1)"
  version="${bins##*/buildkit-}"
  h="$(hash_of "$HACK/images/buildkit/Dockerfile" <(echo "$BUILDKIT_ROOTFS_RECIPE") "$bins/buildkitd" "$bins/buildctl")"
  ref="$REGISTRY/$repo"
  if registry_current "$repo" "$version" "$version-$h"; then
    log "buildkitd image: $ref:$version current"; echo "$ref:$version-$h"; return
  fi
  if ! docker image inspect "$ref:$version-$h" >/dev/null 2>&1; then
    rootfs="$(rootfs_image bookworm-buildkit-rootfs "$BUILDKIT_ROOTFS_RECIPE")"
    log "buildkitd image: building $ref:$version-$h (log $LOGS/buildkit-image.log)"
    local ctx; ctx="$(mktemp -d)"
    cp "$HACK/images/buildkit/Dockerfile" "$bins/buildkitd" "$bins/buildctl" "$ctx/"
    docker build --build-arg "ROOTFS=$rootfs" -t "$ref:$version-$h" "$ctx" >"$LOGS/buildkit-image.log" 2>&1 \
      || { rm -rf "$ctx"; die "buildkitd image build failed (see $LOGS/buildkit-image.log)"; }
    rm -rf "$ctx"
  fi
  docker tag "$ref:$version-$h" "$ref:$version"
  push "$ref:$version-$h" "$ref:$version"
  log "buildkitd image: pushed $ref:$version ($(docker image inspect -f '{{.Size}}' "$ref:$version" | numfmt --to=iec))"
  echo "$ref:$version-$h"   # stdout: the content-hash reference (tests install exactly it)
}

registry_ok() { curl -fs -o /dev/null "http://$REGISTRY/v2/"; }
registry_ok || die "no registry on $REGISTRY: run hack/cluster.sh docker first"
case "${1:-all}" in
  all) pause_image; python_image; buildkit_image ;;
  pause) pause_image ;;
  buildkit) buildkit_image ;;
  python) python_image ;;
  wheelhouse) wheelhouse ;;
  *) echo "usage: $0 [all|pause|python|buildkit|wheelhouse]" >&2; exit 2 ;;
esac
