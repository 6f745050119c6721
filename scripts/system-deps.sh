#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real (headless Chromium for the
# report test, Debian's `postgresql` whose initdb/pg_ctl the tests start as a throwaway
# cluster, Java 17 for PySpark's local[2] in the Spark tests). As root: installs what is missing (apt-get update once first). Otherwise:
# prints the exact command and exits 1, so `make test` never skips a browser test silently.
set -euo pipefail

PACKAGES=(chromium postgresql openjdk-17-jre-headless)
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "run as root: apt-get update && $cmd" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
$cmd
