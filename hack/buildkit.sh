#!/usr/bin/env bash
# BuildKit's binaries, built from github.com/moby/buildkit's Go module (the
# version hack/buildkit/go.mod pins), static, cached machine-wide:
#
#   hack/buildkit.sh            build what is missing; print the folder that holds
#                               buildctl and buildkitd (the last line of stdout)
#
# The folder is $KACI_CACHE/buildkit-<version> (default /var/cache/kaci): a new
# clone (CI) finds the binaries there, and a cold build still reuses Go's build
# and module caches (~/.cache/go-build, ~/go/pkg/mod). The buildkitd image
# (hack/base-images.sh buildkit) and the operator image (hack/build-operator-image.sh,
# buildctl) copy them from there.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

MOD="$ROOT/hack/buildkit"
BUILDKIT_VERSION="$(awk '$1 == "require" && $2 == "github.com/moby/buildkit" {print $3}' "$MOD/go.mod")"
[ -n "$BUILDKIT_VERSION" ] || die "no github.com/moby/buildkit version in $MOD/go.mod"
OUT="$CACHE/buildkit-$BUILDKIT_VERSION"

# have NAME: the cached binary exists and says it is this version.
have() {
  local v; v="$("$OUT/$1" --version 2>/dev/null || true)"
  case "$v" in *" $BUILDKIT_VERSION "*|*" $BUILDKIT_VERSION") return 0 ;; *) return 1 ;; esac
}

# build NAME TAGS: one static binary into $OUT. The version is stamped the way
# upstream's Makefile does (github.com/moby/buildkit/version.Version), so
# `buildctl --version` names it.
build() {
  local name="$1" tags="$2" t0; t0=$(date +%s)
  command -v go >/dev/null || die "go is needed to build $name (see hack/README.md)"
  log "go build $name $BUILDKIT_VERSION (cold ~2 min on 2 cores; log $LOGS/buildkit-build.log)"
  mkdir -p "$OUT"
  ( cd "$MOD" && CGO_ENABLED=0 nice -n 10 go build -trimpath -tags "$tags" \
      -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
      -o "$OUT/$name.tmp" "github.com/moby/buildkit/cmd/$name" ) >>"$LOGS/buildkit-build.log" 2>&1 \
    || die "go build $name failed (see $LOGS/buildkit-build.log)"
  mv -f "$OUT/$name.tmp" "$OUT/$name"
  log "$name: $(du -h "$OUT/$name" | cut -f1) in $(( $(date +%s) - t0 )) s"
}

have buildctl || build buildctl ""
# upstream's tags for a static buildkitd: pure-Go user/group and DNS lookups, and
# the seccomp profile for build containers (no libseccomp: CGO is off).
have buildkitd || build buildkitd "osusergo netgo static_build seccomp"
echo "$OUT"
