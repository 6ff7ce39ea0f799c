#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, if they are missing:
#   gdal-bin: gdaltransform / ogrinfo, GDAL's own tools the geo tests compare against.
set -euo pipefail
missing=()
command -v gdaltransform >/dev/null 2>&1 || missing+=(gdal-bin)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
