#!/usr/bin/env bash
# Builds the operator image (operator/Dockerfile) and pushes it to the registry.
# Prints the image reference on stdout (the last line); progress goes to stderr.
#
#   hack/build-operator-image.sh            # the local cluster: base image and wheelhouse
#                                           # from 127.0.0.1:5000, no network during the build
#   BASE_IMAGE=python:3.11-slim PIP_OPTIONS= REGISTRY=localhost:5001 hack/build-operator-image.sh
#                                           # kind / internet: PyPI and Docker Hub
#
# The tag is a content hash of the build context, the Dockerfile, the base image's
# id and the pip options: the same inputs give the same tag and are built once.
# The same image is also pushed as the chart's appVersion (charts/kaci/Chart.yaml),
# the tag the chart pulls when image.tag is empty: `helm install kaci charts/kaci`
# with no --set then finds an image. That tag moves with every build of a changed
# tree; the hash tag never does, so installs that must run this very build (make
# demo, the chart tests) pass the hash tag printed here. APP_VERSION_TAG=0 skips it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BASE_IMAGE="${BASE_IMAGE-127.0.0.1:5000/kaci/python:3.11}"
PIP_OPTIONS="${PIP_OPTIONS---no-index --find-links /wheels}"
REGISTRY="${REGISTRY:-127.0.0.1:5000}"
REPOSITORY="${REPOSITORY:-kaci/operator}"
APP_VERSION_TAG="${APP_VERSION_TAG:-1}"
log() { echo "build-operator-image: $*" >&2; }

# buildctl, which the operator drives buildkitd with (builder.driver buildkit/remote):
# hack/buildkit.sh's static build from BuildKit's Go module (cached), or BUILDCTL=<path>.
BUILDCTL="${BUILDCTL:-$("$root/hack/buildkit.sh" | tail -1)/buildctl}"
[ -x "$BUILDCTL" ] || { log "no buildctl at $BUILDCTL"; exit 1; }

# A small context: only what `pip wheel .` needs (the tree holds .venv, .cluster, ...).
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/operator" "$ctx/scoring-runtime" "$ctx/bin"
cp "$BUILDCTL" "$ctx/bin/buildctl"
cp "$root/pyproject.toml" "$root/README.md" "$ctx/"
cp "$root/operator/Dockerfile" "$ctx/operator/"
cp -r "$root/operator/kaci" "$ctx/operator/"
cp -r "$root/scoring-runtime/kaci_runtime" "$ctx/scoring-runtime/"
find "$ctx" \( -name __pycache__ -o -name '*.egg-info' -o -name .mypy_cache \) -prune -exec rm -rf {} +

docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker pull "$BASE_IMAGE" >&2
base_id="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")"
tag="$(
  cd "$ctx"
  { find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; echo "$base_id"; echo "$PIP_OPTIONS"; } \
    | sha256sum | cut -c1-16
)"
ref="$REGISTRY/$REPOSITORY:$tag"

if docker image inspect "$ref" >/dev/null 2>&1; then
  log "$ref exists, not rebuilding"
else
  log "building $ref from $BASE_IMAGE"
  docker build --file "$ctx/operator/Dockerfile" --tag "$ref" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "PIP_OPTIONS=$PIP_OPTIONS" \
    "$ctx" >&2
fi
docker push "$ref" >&2
if [ "$APP_VERSION_TAG" = 1 ]; then
  app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$root/charts/kaci/Chart.yaml")"
  [ -n "$app_version" ] || { log "no appVersion in charts/kaci/Chart.yaml"; exit 1; }
  app_ref="$REGISTRY/$REPOSITORY:$app_version"
  log "also tagging $app_ref (the chart's default image)"
  docker tag "$ref" "$app_ref"
  docker push "$app_ref" >&2
fi
echo "$ref"
