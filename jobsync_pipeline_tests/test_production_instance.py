"""The production deployment for real (SLOW: about two minutes of wall time, a live service).

`scripts/serve.sh` starts jobsync's code server, the Dagster webserver and the daemon on
`deploy/dagster.yaml` (PostgreSQL storage in a scratch database, the store in a second one, blank until
serve.sh's `jobsync db upgrade`). Then, with a local server posing as Greenhouse:

- the bucket sensor (on by default) fires and its company_files run succeeds, seen through the
  webserver's GraphQL API;
- the followups_schedule (every minute, on by default) ticks and its run pauses an unconfirmed user;
- `dagster sensor start` turns on greenhouse_board_sensor, whose run stalls on a slow Greenhouse; its run
  worker is killed mid-fetch (SIGKILL): its code server marks the run failed, the daemon retries it (run_retries),
  the retry waits for the pool slot run monitoring frees and succeeds against a Greenhouse that now
  answers at once, the store holds the board's jobs, and the killed sync ends `interrupted`;
- SIGTERM stops serve.sh and every process it started.

Every process started here carries a marker in its environment; whatever is left of them when the test
ends, passed or failed, is killed.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from jobsync_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT, SAMPLE_BUCKET
from jobsync_pipeline_tests.http_server import LocalServer, Reply
from jobsync_pipeline_tests.lane_helpers import query

BIN = Path(sys.executable).parent
MARKER = "JOBSYNC_TEST_SERVE_MARKER"
BOARD = "larkfieldhealth"
FETCH = f"/v1/boards/{BOARD}/jobs?content=true"
USER = "ann@example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what, timeout: float, message, interval: float = 0.5):
    """`what()` once it is truthy; fails naming `message` (a string or a callable giving one) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message() if callable(message) else message} (after {timeout:.0f} s)")
        time.sleep(interval)


def marked_processes(marker: str) -> list[int]:
    """The live processes whose environment carries this test's marker: the ones it started, and theirs."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _state(int(entry.name)) != "Z":
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    listed = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in listed.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = _parent(pid)
        chain.append(pid)
    return chain


class Service:
    """scripts/serve.sh as a test drives it: its environment, its log, the webserver's GraphQL API."""

    def __init__(self, tmp_path: Path, env: dict[str, str], webserver_port: int):
        self.env = env
        self.log_path = tmp_path / "serve.log"
        self.graphql_url = f"http://127.0.0.1:{webserver_port}/graphql"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PROJECT_ROOT / "scripts" / "serve.sh")], env=self.env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n--- serve.sh's output, its end ---\n" + "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def graphql(self, text: str, **variables) -> dict:
        request = urllib.request.Request(self.graphql_url, method="POST",
                                         data=json.dumps({"query": text, "variables": variables}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer
        return answer["data"]

    def webserver_up(self) -> bool:
        assert self.running(), "serve.sh ended" + self.log()
        try:
            with urllib.request.urlopen(self.graphql_url.replace("/graphql", "/server_info"), timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, marker: str) -> None:
        """SIGTERM serve.sh and wait for it, then kill whatever it left that carries the test's marker."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        for pid in marked_processes(marker):  # only what this test started: its marker is in their environment
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=30)

    def command(self, *args: str) -> str:
        done = subprocess.run(list(args), env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout


RUNS = """query Runs($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { __typename
  ... on Runs { results { runId jobName status tags { key value } } } } }"""
TICKS = """query Ticks($name: String!) { scheduleOrError(scheduleSelector: {repositoryLocationName: "jobsync",
  repositoryName: "__repository__", scheduleName: $name}) { __typename
  ... on Schedule { scheduleState { status ticks(limit: 5, statuses: [SUCCESS]) { status runIds } } } } }"""


def gql_runs(service: Service, *run_ids: str) -> dict[str, dict]:
    runs = service.graphql(RUNS, ids=list(run_ids))["runsOrError"]["results"]
    return {run["runId"]: {**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in runs}


def test_the_production_instance_runs_syncs_and_retries_a_killed_run(tmp_path, new_postgres_database, monkeypatch):
    import dagster as dg
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    from jobsync_pipeline.store.alerts import PAUSE_CHECK
    from jobsync_pipeline.store.boards import BoardRegistry
    from jobsync_pipeline.store.tables import followups
    from jobsync_pipeline.store.time import utcnow

    started = time.monotonic()
    instance_url, store_url = new_postgres_database(), new_postgres_database()
    home, bucket = tmp_path / "dagster_home", tmp_path / "bucket"
    bucket.mkdir()
    company_file = SAMPLE_BUCKET / "snapshot_1" / "marisol-hoteles.json"
    (bucket / company_file.name).write_bytes(company_file.read_bytes())
    greenhouse_body = (FIXTURES / "greenhouse" / f"{BOARD}.jobs.json").read_bytes()
    listed = len(json.loads(greenhouse_body)["jobs"])
    marker = uuid.uuid4().hex
    webserver_port = free_port()
    # the first fetch stalls (the run worker is killed during it); the retry's is answered at once
    greenhouse = LocalServer({FETCH: [Reply(body=greenhouse_body, delay=90), Reply(body=greenhouse_body)]})
    greenhouse.start()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JOBSYNC_", "DAGSTER_"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", MARKER: marker, "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": instance_url, "JOBSYNC_DATABASE_URL": store_url, "JOBSYNC_BUCKET_URL": str(bucket),
        "JOBSYNC_GREENHOUSE_BASE_URL": greenhouse.base_url, "JOBSYNC_WEBSERVER_PORT": str(webserver_port),
        "JOBSYNC_CODE_SERVER_HOST": "127.0.0.1", "JOBSYNC_CODE_SERVER_PORT": str(free_port()),
        "JOBSYNC_STOP_TIMEOUT": "30"})
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", instance_url)  # for this test's own look at the instance
    service = Service(tmp_path, env, webserver_port)
    try:
        service.start()
        wait_for(service.webserver_up, 240, lambda: "the webserver never answered" + service.log())
        assert (home / "dagster.yaml").resolve() == PROJECT_ROOT / "deploy" / "dagster.yaml"
        assert query(store_url, "select count(*) from boards") == [(0,)]  # serve.sh made the store's schema

        # a board in the registry as discovery adds one (not yet a partition: the board sensor makes it
        # one, with a run), and an unconfirmed user whose pause check is due
        service.command("jobsync", "users", "add", USER)
        service.command("jobsync", "alerts", "start", "--user", USER)
        engine = sa.create_engine(store_url)
        try:
            assert BoardRegistry(engine).add("greenhouse", [BOARD], origin="discovery") == [BOARD]
            with engine.begin() as conn:
                conn.execute(followups.update().where(followups.c.kind == PAUSE_CHECK)
                             .values(scheduled_at=utcnow() - timedelta(hours=1)))
        finally:
            engine.dispose()
        # what a deployment does to turn on an automation that calls a public API
        service.command("dagster", "sensor", "start", "-w", "deploy/workspace.yaml", "--location", "jobsync",
                        "greenhouse_board_sensor")

        with dg.DagsterInstance.from_config(str(home)) as instance:
            def runs(job_name: str) -> list[dg.DagsterRun]:
                return list(instance.get_runs(RunsFilter(job_name=job_name)))

            # --- the board sensor's run, killed mid-fetch ------------------------------------------------
            wait_for(lambda: greenhouse.count(path=FETCH), 180,
                     lambda: "the greenhouse run never fetched" + service.log())
            (first,) = runs("greenhouse_sync")
            assert first.status == DagsterRunStatus.STARTED
            assert first.tags["dagster/sensor_name"] == "greenhouse_board_sensor"
            starts = [e.message for e in instance.all_logs(first.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                      if e.message and e.message.startswith("Started process for run")]
            (worker,) = [int(re.search(r"pid: (\d+)", m).group(1)) for m in starts]
            # the run worker is the code server's child (a multiprocessing process), under this serve.sh
            assert service.process.pid in ancestors(worker)
            assert b"multiprocessing" in Path(f"/proc/{worker}/cmdline").read_bytes()
            # the worker and its step processes, frozen first so that none reports anything, then killed
            os.kill(worker, signal.SIGSTOP)
            tree = descendants(worker)
            for pid in tree:
                os.kill(pid, signal.SIGSTOP)
            for pid in [worker, *tree]:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()

            def run_status(run_id: str) -> DagsterRunStatus:
                return instance.get_run_by_id(run_id).status

            wait_for(lambda: run_status(first.run_id) == DagsterRunStatus.FAILURE, 60,
                     lambda: f"the killed run is {run_status(first.run_id)}, not failed" + service.log())
            marked_failed = time.monotonic() - killed
            messages = [e.message or "" for e in instance.all_logs(first.run_id)]
            assert any("terminated by signal 9" in m for m in messages), messages[-5:]

            def retried() -> dg.DagsterRun | None:
                for run in runs("greenhouse_sync"):
                    if run.tags.get("dagster/parent_run_id") == first.run_id and run.is_finished:
                        return run
                return None

            retry = wait_for(retried, 180, lambda: "the failed run was not retried to an end" + service.log())
            converged = time.monotonic() - killed
            assert retry.status == DagsterRunStatus.SUCCESS, service.log()
            assert retry.tags["dagster/retry_number"] == "1" and retry.tags["dagster/partition"] == BOARD
            assert instance.get_run_by_id(first.run_id).tags.get("dagster/will_retry") == "true"
            assert greenhouse.count(path=FETCH) == 2  # the killed fetch, then the retry's
            assert len(runs("greenhouse_sync")) == 2
            assert query(store_url, "select count(*) from jobs where source = 'greenhouse' and board = :b "
                                    "and expired_at is null", b=BOARD) == [(listed,)]

            def greenhouse_syncs() -> list[tuple]:
                return query(store_url, "select run_id, status, error from syncs where source = 'greenhouse' "
                                        "and board = :b order by id", b=BOARD)

            # interrupted_syncs_sensor (a run-failure sensor, every 60 s) ends the sync the dead run left running
            wait_for(lambda: greenhouse_syncs()[0][1] == "failed", 120,
                     lambda: f"the killed run's sync is still {greenhouse_syncs()}")
            (killed_sync, retry_sync) = greenhouse_syncs()
            assert killed_sync[0] == first.run_id and killed_sync[2].startswith("interrupted:")
            assert retry_sync[:2] == (retry.run_id, "success")

            # --- the bucket sensor's run --------------------------------------------------------------
            (bucket_run,) = wait_for(lambda: [r for r in runs("company_files_sync") if r.is_finished], 60,
                                     "the bucket sensor's run never ended")
            assert bucket_run.status == DagsterRunStatus.SUCCESS
            assert query(store_url, "select count(*) from jobs where source = 'company_files' "
                                    "and expired_at is null") == [(3,)]

            # --- the schedule's tick and run ------------------------------------------------------------
            def ticked_run() -> list[str]:
                state = service.graphql(TICKS, name="followups_schedule")["scheduleOrError"]["scheduleState"]
                assert state["status"] == "RUNNING"
                return [run_id for tick in state["ticks"] for run_id in tick["runIds"]]

            (followup_run_id,) = wait_for(ticked_run, 120, "followups_schedule never ticked with a run", interval=2)
            wait_for(lambda: instance.get_run_by_id(followup_run_id).is_finished, 60, "the follow-up run never ended")
            assert run_status(followup_run_id) == DagsterRunStatus.SUCCESS
            assert query(store_url, "select alert_status from users where email = :e", e=USER) == [("paused",)]

        # --- the same runs through the webserver's GraphQL API -----------------------------------------
        seen = gql_runs(service, bucket_run.run_id, first.run_id, retry.run_id, followup_run_id)
        assert seen[bucket_run.run_id]["status"] == "SUCCESS"
        assert seen[bucket_run.run_id]["jobName"] == "company_files_sync"
        assert seen[bucket_run.run_id]["tags"]["dagster/sensor_name"] == "company_files_bucket_sensor"
        assert seen[first.run_id]["status"] == "FAILURE"
        assert seen[retry.run_id]["status"] == "SUCCESS"
        assert seen[retry.run_id]["tags"]["dagster/parent_run_id"] == first.run_id
        assert seen[followup_run_id]["jobName"] == "alert_followups"
        assert seen[followup_run_id]["tags"]["dagster/schedule_name"] == "followups_schedule"

        # --- SIGTERM stops serve.sh and everything it started ----------------------------------------------
        service.process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert service.process.wait(timeout=90) == 0, service.log()
        stopped_in = time.monotonic() - stopping
        assert "did not end within" not in service.log(), service.log()
        wait_for(lambda: not marked_processes(marker), 10, lambda: "serve.sh left processes running: "
                 f"{[Path(f'/proc/{p}/cmdline').read_bytes()[:120] for p in marked_processes(marker)]}")
        print(f"\nwall time {time.monotonic() - started:.0f} s; killed run failed {marked_failed:.1f} s and its "
              f"retry succeeded {converged:.0f} s after the kill; serve.sh stopped in {stopped_in:.1f} s")
    finally:
        service.stop(marker)
        greenhouse.stop()


def test_serve_refuses_to_start_without_its_databases(tmp_path):
    """Fast: the configuration is checked before anything starts, each problem in one line."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JOBSYNC_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    serve = [str(PROJECT_ROOT / "scripts" / "serve.sh")]

    def refused(**variables) -> str:
        done = subprocess.run(serve, env={**env, **variables}, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
        return done.stderr

    both = refused()
    assert "set DAGSTER_POSTGRES_URL" in both and "set JOBSYNC_DATABASE_URL" in both
    assert both.count("\n") == 2
    url = "postgresql://postgres@127.0.0.1:5432/jobsync"
    assert "set JOBSYNC_DATABASE_URL" in refused(DAGSTER_POSTGRES_URL=url)
    assert "keep the store in its own database" in refused(DAGSTER_POSTGRES_URL=url, JOBSYNC_DATABASE_URL=url)
    assert "must be a postgresql:// URL" in refused(DAGSTER_POSTGRES_URL="sqlite:///x.db", JOBSYNC_DATABASE_URL=url)
    assert not (tmp_path / "home").exists()  # nothing was made
