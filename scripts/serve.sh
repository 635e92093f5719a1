#!/usr/bin/env bash
# Runs jobsync as a service on this machine: jobsync's code server, the Dagster webserver and the Dagster
# daemon, three processes on the production instance (deploy/dagster.yaml: PostgreSQL, the run queue,
# run monitoring and retries). Ctrl-C or SIGTERM stops them all. docs/operations.md says more.
#
#   DAGSTER_POSTGRES_URL=postgresql://dagster@db/dagster \
#   JOBSYNC_DATABASE_URL=postgresql://jobsync@db/jobsync scripts/serve.sh
#
# Required: DAGSTER_POSTGRES_URL (Dagster's runs, events, schedules) and JOBSYNC_DATABASE_URL (the store:
# another database, or another schema). Optional, with their defaults:
#   DAGSTER_HOME               data/local/dagster_home (its dagster.yaml is linked to deploy/dagster.yaml
#                              when it has none; an existing one is used as it is)
#   JOBSYNC_WEBSERVER_HOST     127.0.0.1        JOBSYNC_WEBSERVER_PORT     3000
#   JOBSYNC_CODE_SERVER_HOST   127.0.0.1        JOBSYNC_CODE_SERVER_PORT   4266
#   JOBSYNC_CODE_SERVER_TIMEOUT 180 (seconds the code server gets to load and answer)
#   JOBSYNC_STOP_TIMEOUT       30 (seconds the processes get to end on Ctrl-C/TERM before they are killed)
# and every JOBSYNC_* variable of the README's configuration table, which the runs read.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "serve.sh: $*" >&2; }

# --- configuration, checked before anything starts ---------------------------------------------------
missing=0
if [ -z "${DAGSTER_POSTGRES_URL:-}" ]; then
  say "set DAGSTER_POSTGRES_URL to the PostgreSQL database of Dagster's runs, events and schedules" \
      "(e.g. postgresql://dagster@127.0.0.1:5432/dagster)"
  missing=1
fi
if [ -z "${JOBSYNC_DATABASE_URL:-}" ]; then
  say "set JOBSYNC_DATABASE_URL to the jobsync store, in its own database or schema" \
      "(e.g. postgresql://jobsync@127.0.0.1:5432/jobsync)"
  missing=1
fi
[ "$missing" = 0 ] || exit 1
case "$DAGSTER_POSTGRES_URL" in
  postgresql://* | postgres://* | postgresql+psycopg2://*) ;;
  *) say "DAGSTER_POSTGRES_URL must be a postgresql:// URL (the instance's storage is PostgreSQL)"; exit 1 ;;
esac
if [ "$DAGSTER_POSTGRES_URL" = "$JOBSYNC_DATABASE_URL" ]; then
  say "JOBSYNC_DATABASE_URL is DAGSTER_POSTGRES_URL: keep the store in its own database or schema" \
      "(Dagster has a table named jobs too)"
  exit 1
fi

if [ -x "$ROOT/.venv/bin/dagster" ]; then
  BIN="$ROOT/.venv/bin/"
elif command -v dagster > /dev/null && command -v jobsync > /dev/null; then
  BIN=""  # installed on the PATH (a container, a system package)
else
  say "no dagster here: run scripts/bootstrap.sh (a .venv) or install jobsync-pipeline"
  exit 1
fi

export JOBSYNC_CODE_SERVER_HOST="${JOBSYNC_CODE_SERVER_HOST:-127.0.0.1}"
export JOBSYNC_CODE_SERVER_PORT="${JOBSYNC_CODE_SERVER_PORT:-4266}"
WEBSERVER_HOST="${JOBSYNC_WEBSERVER_HOST:-127.0.0.1}"
WEBSERVER_PORT="${JOBSYNC_WEBSERVER_PORT:-3000}"
STOP_TIMEOUT="${JOBSYNC_STOP_TIMEOUT:-30}"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/data/local/dagster_home}"
# Runs are created by the webserver and the daemon, which never import jobsync: they log a backfill's
# planned materializations as one event per asset, not one per board (defs/__init__.py says why).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="${DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS:-1}"
export DAGSTER_EVENT_BATCH_SIZE="${DAGSTER_EVENT_BATCH_SIZE:-1000}"
WORKSPACE="$ROOT/deploy/workspace.yaml"

mkdir -p "$DAGSTER_HOME"
if [ ! -e "$DAGSTER_HOME/dagster.yaml" ]; then
  ln -s "$ROOT/deploy/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
elif [ ! "$DAGSTER_HOME/dagster.yaml" -ef "$ROOT/deploy/dagster.yaml" ]; then
  say "note: using $DAGSTER_HOME/dagster.yaml as it is (not a link to deploy/dagster.yaml)"
fi

# The folder the processes run in: relative defaults (data/local/outbox, ...) land in the project.
cd "$ROOT"

# --- the store's schema, before any run touches it -------------------------------------------------
"${BIN}jobsync" db upgrade

# --- the three processes, each in its own process group (set -m): stopping one ends what it started ----
set -m
pids=()
names=()
stopping=0

# A shell started in the background (`serve.sh &` in a script) ignores SIGINT, and so would the processes
# it starts; Dagster's then ignore SIGTERM too (it maps TERM to INT's handler) and could only be killed:
# they get the default handlers back.
default_signals=()
if env --default-signal=INT true 2> /dev/null; then default_signals=(env --default-signal=INT,TERM); fi

start() {  # start NAME COMMAND...
  local name=$1
  shift
  "${default_signals[@]}" "$@" &
  pids+=("$!")
  names+=("$name")
  say "$name started (pid $!)"
}

alive() {  # whether anything of the process group of pid $1 is still running
  kill -0 -- "-$1" 2> /dev/null
}

stop_groups() {  # stop_groups INDEX...: TERM to those process groups, KILL to what is left after the timeout
  local i deadline
  for i in "$@"; do kill -TERM -- "-${pids[$i]}" 2> /dev/null || true; done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for i in "$@"; do
    while alive "${pids[$i]}" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  done
  for i in "$@"; do
    if alive "${pids[$i]}"; then
      say "${names[$i]} did not end within ${STOP_TIMEOUT} s: killed"
      kill -KILL -- "-${pids[$i]}" 2> /dev/null || true
    fi
  done
}

stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  # the daemon and the webserver first (no run is launched any more), then the code server (always the
  # first started): its run workers, in its process group, get the TERM too and end their runs as
  # failed, which the daemon retries once it is back
  if [ "${#pids[@]}" -gt 1 ]; then stop_groups $(seq 1 $((${#pids[@]} - 1))); fi
  if [ "${#pids[@]}" -gt 0 ]; then stop_groups 0; fi
  wait 2> /dev/null || true
  say "stopped"
}

on_signal() {
  say "stopping ($1)"
  stop
  exit 0
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'stop' EXIT

if "${BIN}dagster" api grpc-health-check -h "$JOBSYNC_CODE_SERVER_HOST" -p "$JOBSYNC_CODE_SERVER_PORT" \
    > /dev/null 2>&1; then
  say "a code server already answers on $JOBSYNC_CODE_SERVER_HOST:$JOBSYNC_CODE_SERVER_PORT:" \
      "stop it, or set JOBSYNC_CODE_SERVER_PORT to a free port"
  exit 1
fi
start code-server "${BIN}dagster" code-server start -h "$JOBSYNC_CODE_SERVER_HOST" -p "$JOBSYNC_CODE_SERVER_PORT" \
  -m jobsync_pipeline.definitions -a defs --location-name jobsync
code_server=${pids[0]}

# the webserver and the daemon load the code from the code server: start them once it answers
deadline=$((SECONDS + ${JOBSYNC_CODE_SERVER_TIMEOUT:-180}))
until "${BIN}dagster" api grpc-health-check -h "$JOBSYNC_CODE_SERVER_HOST" -p "$JOBSYNC_CODE_SERVER_PORT" \
    > /dev/null 2>&1; do
  if ! kill -0 "$code_server" 2> /dev/null; then
    say "the code server ended before it answered (its output above)"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "the code server did not answer on $JOBSYNC_CODE_SERVER_HOST:$JOBSYNC_CODE_SERVER_PORT in time"
    exit 1
  fi
  sleep 1
done
say "code server answering on $JOBSYNC_CODE_SERVER_HOST:$JOBSYNC_CODE_SERVER_PORT"

start webserver "${BIN}dagster-webserver" -h "$WEBSERVER_HOST" -p "$WEBSERVER_PORT" -w "$WORKSPACE"
start daemon "${BIN}dagster-daemon" run -w "$WORKSPACE"
say "the UI: http://$WEBSERVER_HOST:$WEBSERVER_PORT (DAGSTER_HOME=$DAGSTER_HOME)"

# until one of them ends (then the others are stopped: a half-running service is not a service) or a
# signal stops them all
status=0
wait -n || status=$?
if [ "$stopping" = 0 ]; then
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2> /dev/null || say "${names[$i]} ended (status $status): stopping the others"
  done
  stop
  exit 1
fi
