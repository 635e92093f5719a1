#!/usr/bin/env bash
# Sets up, then syncs the shipped company files twice on the embedded defaults (SQLite store, local
# Dagster instance in .dagster_home, no server, no network): snapshot 1, then the later snapshot 2.
# --fresh starts over: the local store and instance are removed first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fresh" ]; then
  echo "== starting over: removing data/local/ and .dagster_home/"
  rm -rf data/local .dagster_home
elif [ -e data/local/jobsync.db ]; then
  echo "(the store already holds an earlier demo: its files are not newer, so each board says it is skipped;"
  echo " run scripts/demo.sh --fresh to start over)"
fi
scripts/bootstrap.sh
samples=$(.venv/bin/python -c 'from jobsync_pipeline.settings import SAMPLE_BUCKET; print(SAMPLE_BUCKET)')
.venv/bin/jobsync db upgrade
echo "== snapshot 1 ($samples/snapshot_1, the default bucket)"
.venv/bin/jobsync sync company_files
echo
echo "== snapshot 2 (a later scrapedAt: new, changed and expired jobs)"
JOBSYNC_BUCKET_URL="$samples/snapshot_2" .venv/bin/jobsync sync company_files
echo
echo "== alerts: a user with a saved search gets the window's new matching jobs as a digest"
if ! .venv/bin/jobsync users list --json | grep -q '"demo@example.com"'; then
  .venv/bin/jobsync users add demo@example.com --name Demo
  .venv/bin/jobsync users set demo@example.com --digest asap
  .venv/bin/jobsync searches add --user demo@example.com --keywords designer
  .venv/bin/jobsync alerts start --user demo@example.com
fi
# the jobs of this demo arrived in the current hour: build that window, then deliver what is due
# (the user has no channel, so the dev outbox folder gets the digest)
.venv/bin/jobsync notifications build
.venv/bin/jobsync notifications deliver
latest=$(ls -t data/local/outbox/*.md 2>/dev/null | head -1 || true)
if [ -n "$latest" ]; then
  echo "== the newest digest in data/local/outbox/:"
  cat "$latest"
fi
echo
echo "Store: data/local/jobsync.db. Open the Dagster UI on the same runs with:"
echo "  DAGSTER_HOME=\$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml"
