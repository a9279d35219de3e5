#!/usr/bin/env bash
# The whole test suite, on SQLite and PostgreSQL, including the headless-Chromium UI test.
# Sets up everything it needs: the venv (with dev extras), Chromium + ChromeDriver (Debian
# packages), and a running PostgreSQL server at 127.0.0.1:5432. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "==> installing chromium and chromium-driver (Debian packages)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "PostgreSQL at 127.0.0.1:5432 is not reachable; the suite needs it" >&2
  exit 1
fi

echo "==> mypy (configured in pyproject.toml)"
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -n 2 "$@"
