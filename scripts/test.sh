#!/usr/bin/env bash
# Sets up, then runs the whole test suite (SQLite and the PostgreSQL server at 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pytest -q "$@"
