#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, if they are missing:
#   gdal-bin:        gdaltransform / ogrinfo, GDAL's own tools the geo tests compare against.
#   python3-qgis, qgis-providers: QGIS 3.22 for /usr/bin/python3, where the plugin tests run.
#   python3-pytest, python3-mock: pytest for that same interpreter (nothing is pip-installed
#                    into the system Python: Debian's GDAL bindings are built for its numpy 1.x).
set -euo pipefail
missing=()
command -v gdaltransform >/dev/null 2>&1 || missing+=(gdal-bin)
if ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
  missing+=(python3-qgis qgis-providers)
fi
/usr/bin/python3 -c "import pytest" >/dev/null 2>&1 || missing+=(python3-pytest)
/usr/bin/python3 -c "import mock" >/dev/null 2>&1 || missing+=(python3-mock)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]} (QGIS takes a few minutes)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
