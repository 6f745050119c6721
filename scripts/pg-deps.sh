#!/usr/bin/env bash
# PostgreSQL for the test suite (Debian's `postgresql`): the tests start a throwaway cluster
# from /usr/lib/postgresql/*/bin with initdb + pg_ctl. As root, install it when missing;
# otherwise print the exact command and fail - never skip the PostgreSQL tests silently.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  exit 0
fi
echo "PostgreSQL server binaries are missing; install them with:" >&2
echo "  sudo apt-get update && sudo apt-get install -y postgresql" >&2
exit 1
