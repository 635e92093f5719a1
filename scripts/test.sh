#!/usr/bin/env bash
# Sets up, then runs the whole test suite (SQLite, the PostgreSQL server at 127.0.0.1:5432, and the API
# page in the system's headless Chromium, installed from Debian's packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
chromium=${JOBSYNC_TEST_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get install -y -qq chromium > /dev/null || { apt-get update -qq && apt-get install -y -qq chromium > /dev/null; }
  else
    echo "the page test needs Chromium at $chromium: apt-get install chromium (or set JOBSYNC_TEST_CHROMIUM)" >&2
    exit 1
  fi
fi
exec .venv/bin/pytest -q "$@"
