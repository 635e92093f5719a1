"""`jobsync search cancel` against runs a real dagster-daemon launched: a running search run's Dagster run
is terminated and ends CANCELED, the row ends `cancelled` with no results; a pending run cancelled before
the sensor sees it never gets a Dagster run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import sqlalchemy as sa

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.defs.searches import SEARCH_RUN_TAG
from jobsync_pipeline_tests.conftest import PROJECT_ROOT
from jobsync_pipeline_tests.test_cli import env, jobsync  # noqa: F401 - the fixture and the runner
from jobsync_pipeline_tests.test_searches import ANN, catalog, users


def wait_for(what, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{message} (after {timeout:.0f} s)")


def test_cancel_ends_a_running_search_and_a_pending_one_never_launches(env, tmp_path, postgres_url):
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    (tmp_path / "bucket").mkdir()
    env = {**env, "JOBSYNC_DATABASE_URL": postgres_url}
    searches = users(catalog(postgres_url))
    running = searches.add_search(ANN, SearchParameters(keywords="python"))
    pending = searches.add_search(ANN, SearchParameters(remote=True))
    never, _ = searches.enqueue(ANN, pending.id)
    searches.cancel(ANN, never.id)  # before the sensor ever ticks
    slow, _ = searches.enqueue(ANN, running.id)

    def dagster_runs(search_run_id: int):
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            return instance.get_runs(RunsFilter(tags={SEARCH_RUN_TAG: str(search_run_id)}))

    def forwarded(dagster_run_id: str) -> bool:
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            return any("forwarding to active child processes" in (event.message or "")
                       for event in instance.all_logs(dagster_run_id, of_type=DagsterEventType.ENGINE_EVENT))

    def sensor_ticks() -> int:
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            return sum(1 for tick in instance.get_ticks(*_sensor_ids(instance)))

    # The search holds: another transaction has the catalog locked, so the run's first query waits on it
    # (a migration or a bulk load holding `jobs` looks exactly like this to a search).
    admin = sa.create_engine(postgres_url)
    lock = admin.connect()
    lock.execute(sa.text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
    daemon = subprocess.Popen(["dagster-daemon", "run", "-w", "workspace.yaml"], env=env, cwd=PROJECT_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        row = wait_for(lambda: (r := searches.run(ANN, slow.id)).status == "running" and r.dagster_run_id and r,
                       60, "the daemon never started the search run")
        wait_for(lambda: _waiting_on_jobs(lock), 20, "the search never reached its query")
        (launched,) = dagster_runs(slow.id)
        assert launched.run_id == row.dagster_run_id and launched.status == DagsterRunStatus.STARTED

        done = jobsync(env, "search", "cancel", str(slow.id), "--user", ANN, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["status"] == "cancelled"
        (run,) = dagster_runs(slow.id)
        assert run.status == DagsterRunStatus.CANCELING  # asked to end; its query still waits on the lock
        # the run worker passes the interrupt on to the step's own process (the multiprocess executor);
        # let it get there while the query still waits, so the search is cut off mid-query, not after it
        deadline = time.monotonic() + 10
        while not forwarded(run.run_id) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1)

        lock.rollback()  # the query returns, and the interrupt waiting for it ends the step
        wait_for(lambda: dagster_runs(slow.id)[0].status.value in ("CANCELED", "FAILURE", "SUCCESS"), 30,
                 "the terminated Dagster run never ended")
        assert dagster_runs(slow.id)[0].status == DagsterRunStatus.CANCELED
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            kinds = {event.dagster_event_type for event in instance.all_logs(run.run_id)}
        assert DagsterEventType.STEP_FAILURE in kinds and DagsterEventType.ASSET_MATERIALIZATION not in kinds
        ticks = sensor_ticks()
        wait_for(lambda: sensor_ticks() >= ticks + 2, 30, "the sensor stopped ticking")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        lock.close()
        admin.dispose()

    ended = searches.run(ANN, slow.id)
    assert (ended.status, ended.error, ended.jobs_found) == ("cancelled", "cancelled by its user", None)
    assert searches.results(ANN, slow.id) == []
    assert len(dagster_runs(slow.id)) == 1  # the daemon launched nothing new for it
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_runs(RunsFilter(tags={"dagster/run_key": str(never.id)})) == []
    assert dagster_runs(never.id) == []
    assert searches.run(ANN, never.id).status == "cancelled"


def _sensor_ids(instance) -> tuple[str, str]:
    (state,) = [s for s in instance.all_instigator_state() if s.name == "search_run_sensor"]
    return state.instigator_origin_id, state.selector_id


def _waiting_on_jobs(conn) -> bool:
    return bool(conn.execute(sa.text(
        "SELECT count(*) FROM pg_locks WHERE relation = 'jobs'::regclass AND NOT granted")).scalar())
