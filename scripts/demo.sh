#!/usr/bin/env bash
# Sets up, then syncs the shipped company files twice on the embedded defaults (SQLite store, local
# Dagster instance in .dagster_home, no server, no network): snapshot 1, then the later snapshot 2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "== snapshot 1 (data/sample_bucket/snapshot_1, the default bucket)"
.venv/bin/jobsync sync company_files
echo
echo "== snapshot 2 (a later scrapedAt: new, changed and expired jobs)"
JOBSYNC_BUCKET_URL="$PWD/data/sample_bucket/snapshot_2" .venv/bin/jobsync sync company_files
echo
echo "Store: data/local/jobsync.db. Open the Dagster UI on the same runs with:"
echo "  DAGSTER_HOME=\$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml"
