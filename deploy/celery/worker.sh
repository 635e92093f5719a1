#!/usr/bin/env bash
# Runs one Celery worker executing jobsync's steps (JOBSYNC_EXECUTOR=celery). Start as many as you want, on
# this machine or others; each needs the environment of the code server (the runs' resources read it there).
#
#   DAGSTER_HOME=… DAGSTER_POSTGRES_URL=… JOBSYNC_DATABASE_URL=… deploy/celery/worker.sh [NAME] [celery worker options]
#
# e.g. `deploy/celery/worker.sh w1 --concurrency 2` (default: one process per CPU). Optional, with defaults:
#   JOBSYNC_CELERY_BROKER_URL   redis://127.0.0.1:6379/0 (the same Redis the code server's runs send to)
#   JOBSYNC_CELERY_BACKEND_URL  the broker's URL (where the steps' results go back)
#   JOBSYNC_CELERY_CONFIG       deploy/celery/celery.yaml
# The worker is this process (exec): SIGTERM ends it warm (the steps it runs finish first), SIGKILL loses them
# until Redis hands them to another worker (visibility_timeout in celery.yaml). docs/operations.md says more.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "worker.sh: $*" >&2; }

if [ -z "${DAGSTER_HOME:-}" ]; then
  say "set DAGSTER_HOME to the deployment's instance folder (its dagster.yaml: deploy/dagster.yaml)"
  exit 1
fi
if [ -x "$ROOT/.venv/bin/celery" ]; then
  BIN="$ROOT/.venv/bin/"
elif command -v celery > /dev/null; then
  BIN=""
else
  say "no celery here: install jobsync-pipeline[celery] (scripts/bootstrap.sh does)"
  exit 1
fi

name="${1:-jobsync}"
if [ "$#" -gt 0 ]; then shift; fi
export JOBSYNC_CELERY_BROKER_URL="${JOBSYNC_CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
export JOBSYNC_CELERY_BACKEND_URL="${JOBSYNC_CELERY_BACKEND_URL:-$JOBSYNC_CELERY_BROKER_URL}"
config="${JOBSYNC_CELERY_CONFIG:-$ROOT/deploy/celery/celery.yaml}"

# What `dagster-celery worker start -y CONFIG` does, without its wrapper process (which would take SIGTERM
# and leave the worker running): dagster-celery validates the yaml (the env: URLs resolved) and writes it as
# the module dagster_celery_config under $DAGSTER_HOME/dagster_celery/config/, which its app imports.
config_dir=$("${BIN}python" -c 'import sys; from dagster_celery.cli import get_config_dir; print(get_config_dir(sys.argv[1]))' "$config")
export PYTHONPATH="$config_dir${PYTHONPATH:+:$PYTHONPATH}"

# The processes run in the project's folder, like the code server's: relative defaults land in the same place.
cd "$ROOT"
exec "${BIN}celery" -A dagster_celery.app worker --prefetch-multiplier=1 --loglevel "${JOBSYNC_CELERY_LOGLEVEL:-INFO}" \
  -n "$name@%h" "$@"
