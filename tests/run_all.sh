#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine with Python >= 3.11, run as root (CI) or
# by a developer with sudo-free apt (root).  Installs what the tests need, starts PostgreSQL
# on loopback, then runs every test, the slow and heavy ones included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== services: PostgreSQL + Chromium (Debian packages)" >&2
if [ "$(id -u)" = "0" ]; then
  bash .ci/services.sh >/dev/null
  # Chinese font for the plots (optional, quiet if unavailable)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || apt-get install -y --no-install-recommends fonts-noto-cjk >/dev/null 2>&1 || true
  # shellcheck disable=SC1091
  source .ci/services.env
else
  echo "not root: skipping service installation; PostgreSQL/browser tests run only if already set up" >&2
  [ -f .ci/services.env ] && source .ci/services.env || true
fi

echo "== python packages" >&2
"$PY" -m pip install -q -e ".[dev,transformers]"  # torch==2.13.0 is the CPU build on this disk

echo "== tests" >&2
set +e
"$PY" -m pytest -m "" -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
