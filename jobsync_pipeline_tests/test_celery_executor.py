"""The Celery executor for real (SLOW: a few minutes of wall time, a live service and two Celery workers).

scripts/serve.sh runs the production instance (deploy/dagster.yaml on a scratch PostgreSQL database, the store
in a second one) with JOBSYNC_EXECUTOR=celery and JOBSYNC_BACKFILL_BOARDS_PER_RUN=50; two workers are
started with deploy/celery/worker.sh on a Redis database of their own. A local server posing as Greenhouse
serves 200 boards of 3 jobs and refuses (429) more than RATE requests a second. Then:

- an in-process run of the 200 boards into a third database (the baseline, timed);
- an asset backfill of the 200 boards launched through the webserver's GraphQL API, as the UI launches one:
  the daemon splits it into 4 runs of 50 boards, every step starts in a worker's process (none in a run's
  own), both workers work, two runs fetch at once (the host's pool raised to 2) and the server sees no 429
  (the pacing slots are shared through the store), and the catalog equals the in-process one;
- the boards change (a job edited, one gone, one new) and are backfilled again; one board answers slowly, and
  the worker fetching it is killed (SIGKILL, the whole worker) mid-step: Redis hands its step to the other
  worker after the visibility timeout (30 s here), the run succeeds, and the catalog equals the in-process
  one's after the same change.

Needs Redis at 127.0.0.1:6379 (its database 13 is flushed) and the PostgreSQL server of conftest.py; either
missing is a failure, never a skip. Every process started here carries a marker in its environment and is
killed when the test ends, passed or failed.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

from jobsync_pipeline.defs.executor import CELERY_SETTINGS, build_executor
from jobsync_pipeline.defs.lanes import build_source_lane
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.run_tags import RANGE_END, RANGE_START, range_tags
from jobsync_pipeline.defs.source_specs import GREENHOUSE
from jobsync_pipeline.settings import ConfigError
from jobsync_pipeline.store.engine import upgrade
from jobsync_pipeline_tests.conftest import PROJECT_ROOT
from jobsync_pipeline_tests.http_server import LocalServer, json_reply
from jobsync_pipeline_tests.lane_helpers import query
from jobsync_pipeline_tests.test_production_instance import (BIN, MARKER, Service, descendants, free_port,
                                                             wait_for)

REDIS_DB = 13
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
BOARDS = [f"celery-board-{i:03d}" for i in range(200)]
BOARDS_PER_RUN = 50
# the server's limit and the HttpResource's pace, requests/second: slow enough that a run's 50 fetches
# (12.5 s alone) outlast the daemon's launch of the next run (about 10 s apart on a busy machine), so two
# runs fetch at once; at 10/s they could each finish first, one after the other
RATE = 4.0
VISIBILITY_TIMEOUT = 30  # seconds before Redis hands a dead worker's step to another (the shipped 3600, shortened)
SLOW_BOARD = BOARDS[20]  # in the first run of the second backfill; its worker is killed while it waits
STAGES = ("raw_snapshot", "postings", "job_diff")
CATALOG = ("select board, external_id, title, content_hash, expired_at is null as listed, expired_reason "
           "from jobs where source = 'greenhouse' order by board, external_id")

BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""


def board_document(board: str, version: int) -> dict:
    """Version 1: jobs 0, 1, 2. Version 2: job 0 retitled, 1 as it was, 2 gone, 3 new."""
    numbers = [0, 1, 2] if version == 1 else [0, 1, 3]
    return {"jobs": [{
        "id": 7_000_000 + n,
        "title": f"Engineer {n} at {board}" + (" (edited)" if version == 2 and n == 0 else ""),
        "absolute_url": f"https://job-boards.greenhouse.io/{board}/jobs/{7_000_000 + n}",
        "location": {"name": "Berlin, Germany" if n % 2 else "Remote (EU)"},
        "content": f"&lt;p&gt;Build &amp;amp; run the {board} platform, role {n}.&lt;/p&gt;",
        "company_name": board.replace("-", " ").title(),
        "updated_at": "2026-11-20T10:00:00-05:00", "first_published": "2026-11-01T09:00:00-05:00",
    } for n in numbers], "meta": {"total": len(numbers)}}


def path(board: str) -> str:
    return f"/v1/boards/{board}/jobs"


# --- the executor's configuration (fast) ---------------------------------------------------------------------

def test_the_executor_is_dagsters_default_unless_celery_is_asked_for(monkeypatch):
    monkeypatch.delenv("JOBSYNC_EXECUTOR", raising=False)
    assert build_executor() is None
    monkeypatch.setenv("JOBSYNC_EXECUTOR", "multiprocess")
    assert build_executor() is None
    monkeypatch.setenv("JOBSYNC_EXECUTOR", "Celery")
    assert build_executor().name == "celery"
    monkeypatch.setenv("JOBSYNC_EXECUTOR", "kubernetes")
    with pytest.raises(ConfigError) as refused:
        build_executor()
    assert str(refused.value) == ("JOBSYNC_EXECUTOR='kubernetes' is not an executor; set one of multiprocess, "
                                  "celery, or leave it unset for multiprocess")


def test_the_workers_configuration_is_the_executors():
    """deploy/celery/celery.yaml (the workers') says what the executor's Celery app says (the runs')."""
    shipped = yaml.safe_load((PROJECT_ROOT / "deploy" / "celery" / "celery.yaml").read_text())["execution"]["config"]
    assert shipped["config_source"] == CELERY_SETTINGS
    assert shipped["broker"] == {"env": "JOBSYNC_CELERY_BROKER_URL"}
    assert shipped["backend"] == {"env": "JOBSYNC_CELERY_BACKEND_URL"}


# --- the live test ------------------------------------------------------------------------------------------

class Workers:
    """deploy/celery/worker.sh processes, each one worker (the script execs celery), and every pid each had."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path, self.env = tmp_path, env
        self.processes: dict[str, subprocess.Popen] = {}
        self.pids: dict[str, set[int]] = {}

    def start(self, name: str) -> None:
        with (self.tmp_path / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(PROJECT_ROOT / "deploy" / "celery" / "worker.sh"), name, "--concurrency", "1"], env=self.env,
                cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def log(self, name: str, lines: int = 40) -> str:
        text = (self.tmp_path / f"{name}.log").read_text(errors="replace")
        return f"\n--- worker {name}'s log, its end ---\n" + "\n".join(text.splitlines()[-lines:])

    def ready(self, name: str) -> bool:
        assert self.processes[name].poll() is None, f"worker {name} ended" + self.log(name)
        return " ready." in (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def note_pids(self) -> None:
        """Remember the pids of each live worker: its main process and its pool's."""
        for name, process in self.processes.items():
            if process.poll() is None:
                self.pids.setdefault(name, set()).update([process.pid, *descendants(process.pid)])

    def owner(self, pid: int) -> str | None:
        self.note_pids()
        return next((name for name, pids in self.pids.items() if pid in pids), None)

    def kill(self, name: str) -> None:
        """SIGKILL to the worker and its pool processes at once: a worker (its machine, its container) gone."""
        process = self.processes[name]
        tree = [process.pid, *descendants(process.pid)]
        self.pids[name].update(tree)
        for pid in tree:
            os.kill(pid, signal.SIGSTOP)  # frozen first, so that none reports anything
        for pid in tree:
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def redis_db():
    """Redis database 13, empty before and after; a Redis that does not answer fails the test."""
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    try:
        try:
            client.ping()
        except redis.ConnectionError as exc:
            pytest.fail(f"Redis does not answer at 127.0.0.1:6379 ({exc}); the Celery test needs it: start "
                        "redis-server", pytrace=False)
        client.flushdb()
        yield client
        client.flushdb()
    finally:
        client.close()


def in_process_run(instance: dg.DagsterInstance, store_url: str, server: LocalServer) -> tuple[float, bool, dict]:
    """The 200 boards in one run in this process (dg.materialize: the in-process executor); its wall time,
    success and the seconds of each step."""
    lane = build_source_lane(GREENHOUSE)
    resources = {"store": StoreResource(url=store_url), "sync_policy": SyncPolicyResource(),
                 "http": HttpResource(requests_per_second=RATE, greenhouse_base_url=server.base_url,
                                      pacing_store_url=store_url)}
    started = time.monotonic()
    result = dg.materialize(lane.assets, instance=instance, resources=resources, raise_on_error=False,
                            tags=range_tags(BOARDS[0], BOARDS[-1]),
                            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    wall = time.monotonic() - started
    return wall, result.success, step_seconds(instance, [result.run_id])


def step_seconds(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, float]:
    """Each stage's step time, summed over the runs."""
    total = dict.fromkeys(STAGES, 0.0)
    for run_id in run_ids:
        for stats in instance.get_run_step_stats(run_id):
            stage = stats.step_key.removeprefix("greenhouse__")
            if stage in total:  # not the checks the backfill's runs also evaluate (freshness)
                total[stage] += stats.end_time - stats.start_time
    return total


def seconds_text(steps: dict[str, float]) -> str:
    return ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in steps.items())


def test_a_backfill_runs_on_two_celery_workers_and_survives_losing_one(tmp_path, new_postgres_database, redis_db,
                                                                       monkeypatch):
    started = time.monotonic()
    instance_url, store_url, baseline_url = new_postgres_database(), new_postgres_database(), new_postgres_database()
    upgrade(baseline_url)
    home = tmp_path / "dagster_home"
    marker = uuid.uuid4().hex
    webserver_port = free_port()
    greenhouse = LocalServer({path(b): json_reply(board_document(b, 1)) for b in BOARDS}, rate_limit=RATE)
    greenhouse.start()

    # the workers' configuration: the shipped one, with a visibility timeout a test can wait for
    config = yaml.safe_load((PROJECT_ROOT / "deploy" / "celery" / "celery.yaml").read_text())
    config["execution"]["config"]["config_source"]["broker_transport_options"]["visibility_timeout"] = VISIBILITY_TIMEOUT
    (tmp_path / "celery.yaml").write_text(yaml.safe_dump(config))

    env = {key: value for key, value in os.environ.items() if not key.startswith(("JOBSYNC_", "DAGSTER_"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", MARKER: marker, "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": instance_url, "JOBSYNC_DATABASE_URL": store_url,
        "JOBSYNC_GREENHOUSE_BASE_URL": greenhouse.base_url, "JOBSYNC_WEBSERVER_PORT": str(webserver_port),
        "JOBSYNC_CODE_SERVER_HOST": "127.0.0.1", "JOBSYNC_CODE_SERVER_PORT": str(free_port()),
        "JOBSYNC_STOP_TIMEOUT": "30",
        "JOBSYNC_EXECUTOR": "celery", "JOBSYNC_CELERY_BROKER_URL": BROKER_URL,
        "JOBSYNC_BACKFILL_BOARDS_PER_RUN": str(BOARDS_PER_RUN),
        "JOBSYNC_CELERY_CONFIG": str(tmp_path / "celery.yaml"), "JOBSYNC_CELERY_LOGLEVEL": "INFO"})
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", instance_url)  # for this test's own look at the instance
    service = Service(tmp_path, env, webserver_port)
    workers = Workers(tmp_path, env)
    try:
        # --- the baseline: the same boards in process, while nothing else runs ------------------------------
        with dg.instance_for_test() as baseline:
            baseline.add_dynamic_partitions(GREENHOUSE.partitions_name, BOARDS)
            in_process_wall, ok, in_process_steps = in_process_run(baseline, baseline_url, greenhouse)
            assert ok
            assert greenhouse.count(429) == 0
            baseline_catalog = query(baseline_url, CATALOG)
            assert len(baseline_catalog) == 3 * len(BOARDS)

            # --- the service and two workers ----------------------------------------------------------------
            service.start()
            workers.start("w1")
            workers.start("w2")
            wait_for(service.webserver_up, 240, lambda: "the webserver never answered" + service.log())
            for name in ("w1", "w2"):
                wait_for(lambda: workers.ready(name), 120, lambda: f"worker {name} never got ready" + workers.log(name))
            workers.note_pids()
            # two runs may fetch from the host at once, one per worker (the pace still holds: the store's slots)
            service.command("dagster", "instance", "concurrency", "set", "greenhouse_api", "2")

            with dg.DagsterInstance.from_config(str(home)) as instance:
                # what the board sensor does for boards in the registry
                instance.add_dynamic_partitions(GREENHOUSE.partitions_name, BOARDS)

                def backfill(title: str) -> tuple[str, float]:
                    """An asset backfill of the lane over every board, as the UI's Materialize launches it."""
                    answer = service.graphql(BACKFILL, params={
                        "assetSelection": [{"path": ["greenhouse", stage]} for stage in STAGES],
                        "partitionNames": BOARDS, "title": title,
                        "runConfigData": {"resources": {"http": {"config": {"requests_per_second": RATE}}}}})
                    launched = answer["launchPartitionBackfill"]
                    assert launched["__typename"] == "LaunchBackfillSuccess", launched
                    return launched["backfillId"], time.time()

                def runs_of(backfill_id: str) -> list[dg.DagsterRun]:
                    return list(instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id})))

                def finished(backfill_id: str) -> list[dg.DagsterRun] | None:
                    runs = runs_of(backfill_id)
                    expected = len(BOARDS) // BOARDS_PER_RUN
                    return runs if len(runs) == expected and all(r.is_finished for r in runs) else None

                def ended_at(runs: list[dg.DagsterRun]) -> float:
                    return max(instance.get_run_record_by_id(r.run_id).end_time for r in runs)

                def step_starts(run_id: str) -> list[tuple[str, int, float]]:
                    return [(e.step_key, e.dagster_event.pid, e.timestamp)
                            for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)]

                def run_worker_pids(run_id: str) -> set[int]:
                    return {int(m.group(1)) for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
                            if (m := re.search(r"Started process for run \(pid: (\d+)\)", e.message or ""))}

                def explain(backfill_id: str):
                    return lambda: (f"backfill {backfill_id}: runs {[(r.run_id[:8], r.status.value) for r in runs_of(backfill_id)]}"
                                    + service.log(30) + workers.log("w1", 15) + workers.log("w2", 15))

                # --- the backfill, split into runs, every step on a worker --------------------------------------
                first_hits = len(greenhouse.hits)
                first_id, launched = backfill("celery: 200 boards")
                runs = wait_for(lambda: finished(first_id), 420, explain(first_id), interval=1)
                celery_wall = ended_at(runs) - launched
                first_start = min(instance.get_run_record_by_id(r.run_id).start_time for r in runs) - launched
                celery_steps = step_seconds(instance, [r.run_id for r in runs])
                assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * len(runs), explain(first_id)()
                assert sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in runs) == [
                    (BOARDS[i], BOARDS[i + BOARDS_PER_RUN - 1]) for i in range(0, len(BOARDS), BOARDS_PER_RUN)]
                fetching: dict[str, list[tuple[float, float]]] = {}  # worker -> when its raw_snapshot steps ran
                for run in runs:
                    starts = step_starts(run.run_id)
                    keys = [key for key, _, _ in starts]
                    assert len(keys) == len(set(keys)) and {f"greenhouse__{s}" for s in STAGES} <= set(keys), keys
                    orchestrators = run_worker_pids(run.run_id)
                    assert orchestrators, f"run {run.run_id}: no run worker started"
                    for key, pid, at in starts:
                        assert pid not in orchestrators and pid != os.getpid()
                        assert workers.owner(pid) is not None, f"{key} of run {run.run_id} started in pid {pid}, no worker's"
                    # the worker's engine event, as dagster-celery records it, for each step
                    delegated = [e.message for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                                 if (e.message or "").endswith("in celery worker")]
                    assert len(delegated) == len(starts), delegated
                    stats = {s.step_key: s for s in instance.get_run_step_stats(run.run_id)}
                    fetch_start = next(pid for key, pid, _ in starts if key == "greenhouse__raw_snapshot")
                    step = stats["greenhouse__raw_snapshot"]
                    fetching.setdefault(workers.owner(fetch_start), []).append((step.start_time, step.end_time))
                used = {workers.owner(pid) for run in runs for _, pid, _ in step_starts(run.run_id)}
                assert used == {"w1", "w2"}, f"the steps ran on {used} only"
                # two workers fetched at the same time, and the host never had to refuse a request
                assert any(a_start < b_end and b_start < a_end
                           for a_start, a_end in fetching.get("w1", []) for b_start, b_end in fetching.get("w2", [])), fetching
                first_phase = greenhouse.hits[first_hits:]
                assert [h for h in first_phase if h.status == 429] == []
                assert len(first_phase) == len(BOARDS)
                assert query(store_url, CATALOG) == baseline_catalog

                # --- the boards change; a worker is killed mid-step in the next backfill -------------------------
                for board in BOARDS:
                    greenhouse.set_route(path(board), json_reply(board_document(board, 2)))
                in_process_wall_2, ok, _ = in_process_run(baseline, baseline_url, greenhouse)
                assert ok
                changed_catalog = query(baseline_url, CATALOG)
                assert len(changed_catalog) == 4 * len(BOARDS) and changed_catalog != baseline_catalog
                # the slow board's first answer comes after 40 s (its worker is killed meanwhile), the next at once
                greenhouse.set_route(path(SLOW_BOARD), [json_reply(board_document(SLOW_BOARD, 2), delay=40),
                                                        json_reply(board_document(SLOW_BOARD, 2))])

                second_hits = len(greenhouse.hits)
                second_id, relaunched = backfill("celery: 200 boards, a worker killed")

                def slow_fetch_started() -> bool:
                    return any(h.path.startswith(path(SLOW_BOARD)) for h in greenhouse.hits[second_hits:])

                wait_for(slow_fetch_started, 300, explain(second_id), interval=0.2)
                (slow_run,) = [r for r in runs_of(second_id) if r.tags[RANGE_START] <= SLOW_BOARD <= r.tags[RANGE_END]]
                (killed_pid,) = [pid for key, pid, _ in step_starts(slow_run.run_id) if key == "greenhouse__raw_snapshot"]
                victim = workers.owner(killed_pid)
                survivor = ({"w1", "w2"} - {victim}).pop()
                workers.kill(victim)
                killed_at, killed_clock = time.monotonic(), time.time()

                runs = wait_for(lambda: finished(second_id), 420, explain(second_id), interval=1)
                converged = time.monotonic() - killed_at
                assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * len(runs), explain(second_id)()
                # the killed step started again, in the same run, on the other worker
                fetch_starts = [pid for key, pid, _ in step_starts(slow_run.run_id) if key == "greenhouse__raw_snapshot"]
                assert fetch_starts[0] == killed_pid and len(fetch_starts) == 2, fetch_starts
                assert workers.owner(fetch_starts[1]) == survivor
                outcomes = [e.dagster_event.event_type for e in instance.all_logs(slow_run.run_id)
                            if e.step_key == "greenhouse__raw_snapshot" and e.dagster_event
                            and e.dagster_event.event_type in (DagsterEventType.STEP_SUCCESS,
                                                               DagsterEventType.STEP_FAILURE)]
                assert outcomes == [DagsterEventType.STEP_SUCCESS]
                # every step started after the kill ran on the survivor
                for run in runs:
                    for key, pid, at in step_starts(run.run_id):
                        expected = {survivor} if at > killed_clock else {"w1", "w2"}
                        assert workers.owner(pid) in expected, f"{key} of run {run.run_id} started in pid {pid}"
                second_wall = ended_at(runs) - relaunched
                second_phase = greenhouse.hits[second_hits:]
                assert [h for h in second_phase if h.status == 429] == []
                assert query(store_url, CATALOG) == changed_catalog
                # the killed step's syncs ended with the retried step: none is left running
                assert query(store_url, "select count(*) from syncs where status = 'running'") == [(0,)]

        print(f"\n200 boards, {len(BOARDS) // BOARDS_PER_RUN} runs of {BOARDS_PER_RUN}, host paced at {RATE:g} req/s: "
              f"in process {in_process_wall:.1f} s (steps: {seconds_text(in_process_steps)}); Celery (2 workers, "
              f"launch to last run's end) {celery_wall:.1f} s, the first run started {first_start:.1f} s after the "
              f"launch (steps, summed over the runs: {seconds_text(celery_steps)}). "
              f"After the change: in process {in_process_wall_2:.1f} s; Celery with {victim} killed mid-fetch: "
              f"converged {converged:.0f} s after the kill (visibility timeout {VISIBILITY_TIMEOUT} s), "
              f"{second_wall:.0f} s from launch. Test wall time {time.monotonic() - started:.0f} s.")
    finally:
        workers.stop()
        service.stop(marker)
        greenhouse.stop()
