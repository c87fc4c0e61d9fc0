#!/usr/bin/env bash
# Build Tessera's container images, in visible stages, with no registry:
#   base      Debian bookworm rootfs from mmdebstrap, imported as localhost/tessera-base
#   wheels    the project's wheel and its dependencies, downloaded on the host
#   services  localhost/tessera (the service image; each protocol server runs from it)
# Usage: image/build.sh [stage ...]   (default: all stages, in order)
# Outputs go to image/build/ (ignored by git).  Containers are built with --pull=never.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=image/build
PY=${PY:-.venv/bin/python}
SUITE=${SUITE:-bookworm}
mkdir -p "$OUT"
stage() { printf '\n==> %s\n' "$*"; }

build_base() {
  stage "base: mmdebstrap $SUITE (python3) -> localhost/tessera-base"
  if [ ! -s "$OUT/base.tar" ] || [ "${REBUILD:-0}" = 1 ]; then
    mmdebstrap --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$OUT/base.tar.tmp"
    mv "$OUT/base.tar.tmp" "$OUT/base.tar"
  fi
  podman import --change 'CMD ["/bin/sh"]' "$OUT/base.tar" localhost/tessera-base:latest >/dev/null
}

build_wheels() {
  stage "wheels: project + dependencies for CPython 3.11 (downloaded on the host)"
  rm -rf "$OUT/ctx" && mkdir -p "$OUT/ctx/wheels"
  "$PY" -m pip wheel -q --no-deps -w "$OUT/ctx/wheels" .
  "$PY" -m pip download -q -d "$OUT/ctx/wheels" --python-version 3.11 --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    "$OUT"/ctx/wheels/tessera-*.whl
  ls "$OUT/ctx/wheels" | wc -l | xargs printf '   %s wheels\n'
}

build_services() {
  stage "services: localhost/tessera from image/containers/tessera/Containerfile"
  cp image/containers/tessera/Containerfile image/containers/tessera/tessera.yaml \
     image/containers/tessera/entrypoint.sh "$OUT/ctx/"
  podman build --pull=never -q -t localhost/tessera:latest "$OUT/ctx" >/dev/null
  podman image prune -f >/dev/null  # the images these replaced would otherwise pile up run after run
  podman image ls --format '   {{.Repository}}:{{.Tag}} {{.Size}}' localhost/tessera
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(base wheels services)
for s in "${stages[@]}"; do
  case "$s" in
    base) build_base ;;
    wheels) build_wheels ;;
    services) build_services ;;
    *) echo "unknown stage: $s (stages: base wheels services)" >&2; exit 2 ;;
  esac
done
