#!/usr/bin/env bash
# System packages the tests need, named by the Makefile: rclone for the S3 client tests,
# podman/runc/mmdebstrap for the container images and the compose test; protocol
# issues add their clients here (smbclient, libnfs-utils, ...).
set -euo pipefail
need=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
