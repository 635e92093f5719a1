"""`jobsync sync`: the command operators and scripts rely on, run as they run it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobsync_pipeline.defs.run_tags import contiguous_ranges
from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET

BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    (tmp_path / "dagster_home").mkdir()
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "JOBSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "JOBSYNC_BUCKET_URL": str(tmp_path / "bucket"), "DAGSTER_HOME": str(tmp_path / "dagster_home")}


def jobsync(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["jobsync", *args], env=env, capture_output=True, text=True, timeout=600)


def test_contiguous_ranges_cover_exactly_the_selection():
    keys = ["a", "b", "c", "d", "e"]
    assert contiguous_ranges(keys, keys) == [("a", "e")]
    assert contiguous_ranges(keys, ["a", "c", "d"]) == [("a", "a"), ("c", "d")]
    assert contiguous_ranges(keys, ["e"]) == [("e", "e")]
    assert contiguous_ranges(keys, []) == []


def test_a_failed_board_is_reported_and_exits_1(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    shutil.copy(FIXTURES / "company_files" / "bad" / "truncated.json", tmp_path / "bucket" / "wickham-cycles.json")
    done = jobsync(env, "sync", "company_files", "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["boards"]["wickham-cycles"]["status"] == "failed"
    assert "wickham-cycles.json" in out["boards"]["wickham-cycles"]["error"]
    assert out["boards"]["marisol-hoteles"] == {"found": 3, "new": 3, "changed": 0, "unchanged": 0, "expired": 0,
                                               "bad": 0, "reactivated": 0, "already_expired": 0,
                                               "cross_source_duplicates": 0,
                                               "possible_duplicates": 0, "status": "success", "error": None}
    assert out["totals"]["new"] == 8


def test_named_boards_only_and_a_readable_table(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    assert jobsync(env, "sync", "company_files", "--board", "marisol-hoteles").returncode == 0
    done = jobsync(env, "sync", "company_files", "--board", "amberline-freight", "--board", "tessellate-studio")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["board", "found", "new", "changed", "unchanged", "expired", "reactivated", "bad",
                                "dupes", "status"]
    assert [line.split()[0] for line in lines[2:4]] == ["amberline-freight", "tessellate-studio"]
    assert lines[5].split()[:3] == ["total", "5", "5"]


def test_an_unsafe_board_name_is_refused(env, tmp_path):
    (tmp_path / "bucket").mkdir()
    done = jobsync(env, "sync", "company_files", "--board", "../etc", "--json")
    assert done.returncode == 1
    assert "path separator" in json.loads(done.stdout)["boards"]["../etc"]["error"]


def test_boards_add_from_a_careers_url_then_sync_and_list(env):
    """`boards add` checks the board answers, `sync greenhouse --board` runs it, `boards list` shows it."""
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    body = (FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()
    missing = (FIXTURES / "greenhouse" / "unknown_board.jobs.404.json").read_bytes()
    routes = {"/v1/boards/larkfieldhealth/jobs": Reply(body=body), "/v1/boards/nosuchboard/jobs": Reply(404, missing)}
    with LocalServer(routes) as server:
        env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url}
        added = jobsync(env, "boards", "add", "https://job-boards.greenhouse.io/larkfieldhealth/jobs/5120344",
                        "https://boards.greenhouse.io/nosuchboard", "--json")
        assert added.returncode == 1, added.stderr
        outcome = {r["board"]: r for r in json.loads(added.stdout)}
        assert outcome["larkfieldhealth"]["added"] and outcome["larkfieldhealth"]["jobs"] == 6
        assert not outcome["nosuchboard"]["added"] and "404" in outcome["nosuchboard"]["error"]

        synced = jobsync(env, "sync", "greenhouse", "--board", "larkfieldhealth", "--json")
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["boards"]["larkfieldhealth"]["new"] == 6

    listed = jobsync(env, "boards", "list", "greenhouse", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["board"], row["status"], row["origin"], row["last_sync_status"]) == \
        ("larkfieldhealth", "active", "cli", "success")
    assert row["counts"]["found"] == 6

    removed = jobsync(env, "boards", "remove", "greenhouse", "larkfieldhealth")
    assert "6 job(s) expired" in removed.stdout
    assert json.loads(jobsync(env, "boards", "list", "--json").stdout) == []  # retired boards only with --all
    assert json.loads(jobsync(env, "boards", "list", "--all", "--json").stdout)[0]["status"] == "retired"


def test_boards_add_names_the_company_of_one_board(env):
    done = jobsync(env, "boards", "add", "lever", "idealistconsulting", "--name", "Idealist Consulting", "--no-check")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(jobsync(env, "boards", "list", "lever", "--json").stdout)
    assert (row["board"], row["name"]) == ("idealistconsulting", "Idealist Consulting")
    two = jobsync(env, "boards", "add", "lever", "a", "b", "--name", "A and B", "--no-check")
    assert two.returncode == 2 and "--name names the company of one board" in two.stderr


def test_seed_list_registers_boards_without_asking(env, tmp_path):
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"greenhouse": ["acme"], "lever": ["globex", "initech"]}))
    done = jobsync(env, "boards", "seed", str(seeds))
    assert done.returncode == 0, done.stderr
    listed = json.loads(jobsync(env, "boards", "list", "--json").stdout)
    assert {(r["source"], r["board"], r["origin"]) for r in listed} == {
        ("greenhouse", "acme", "seed"), ("lever", "globex", "seed"), ("lever", "initech", "seed")}


def test_sync_remoteok_tag_and_himalayas_feed_as_json(env):
    """`sync remoteok --board TAG --json` and `sync himalayas --json` work as for the other sources."""
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    remoteok = (FIXTURES / "remoteok" / "api.tag_python.json").read_bytes()
    pages = [(FIXTURES / "himalayas" / f"jobs.offset{n}.limit3.json").read_bytes() for n in (0, 3)]
    routes = {"/api?tag=dev": Reply(body=remoteok), "/jobs/api?limit=20&offset=0": Reply(body=pages[0]),
              "/jobs/api?limit=20&offset=3": Reply(body=pages[1])}
    with LocalServer(routes) as server:
        env = {**env, "JOBSYNC_REMOTEOK_BASE_URL": server.base_url, "JOBSYNC_HIMALAYAS_BASE_URL": server.base_url}
        tag = jobsync(env, "sync", "remoteok", "--board", "dev", "--json")
        feed = jobsync(env, "sync", "himalayas", "--json")
        unknown = jobsync(env, "sync", "remoteok", "--board", "no-such-tag", "--json")
    assert tag.returncode == 0, tag.stderr
    assert json.loads(tag.stdout)["boards"]["dev"]["new"] == 6
    assert feed.returncode == 0, feed.stderr
    summary = json.loads(feed.stdout)
    assert summary["boards"]["all"]["new"] == 5 and summary["totals"]["new"] == 5
    assert unknown.returncode == 1
    assert "partitions" in json.loads(unknown.stdout)["boards"]["no-such-tag"]["error"]


def test_an_unknown_board_fails_in_one_line_and_registers_nothing(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    done = jobsync(env, "sync", "company_files", "--board", "typo")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no file typo.json in the bucket" in done.stderr
    assert "Traceback" not in done.stderr
    as_json = json.loads(jobsync(env, "sync", "company_files", "--board", "typo", "--json").stdout)
    assert as_json["boards"]["typo"]["status"] == "failed"
    assert json.loads(jobsync(env, "boards", "list", "--all", "--json").stdout) == []
    from dagster import DagsterInstance
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_dynamic_partitions("company_files_boards") == []


def test_a_removed_company_is_retired_and_loses_its_partition(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    assert jobsync(env, "sync", "company_files").returncode == 0
    removed = jobsync(env, "boards", "remove", "company_files", "marisol-hoteles", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == [{"source": "company_files", "board": "marisol-hoteles", "expired": 3}]
    import sqlalchemy as sa
    engine = sa.create_engine(env["JOBSYNC_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(sa.text("select distinct expired_reason from jobs where board = 'marisol-hoteles'")
                            ).all() == [("board_removed",)]
    engine.dispose()
    from dagster import DagsterInstance
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert "marisol-hoteles" not in instance.get_dynamic_partitions("company_files_boards")
    again = jobsync(env, "sync", "company_files", "--board", "marisol-hoteles")
    assert again.returncode == 1 and "is retired" in again.stderr
    unknown = jobsync(env, "boards", "remove", "company_files", "nobody")
    assert unknown.returncode == 1 and "has no board 'nobody'" in unknown.stderr


@pytest.mark.parametrize("url, says", [
    ("postgresql://jobsync:s3cret@127.0.0.1:1/jobs", "cannot use the store postgresql://jobsync:***@127.0.0.1:1/jobs"),
    ("nosuchdb://x", "is not a database URL jobsync can use"),
])
def test_a_bad_database_url_is_one_line_without_the_password(env, url, says):
    env = {**env, "JOBSYNC_DATABASE_URL": url}
    done = jobsync(env, "boards", "list")
    assert done.returncode == 1
    assert says in done.stderr and done.stderr.count("\n") == 1
    assert "s3cret" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    as_json = jobsync(env, "boards", "list", "--json")
    assert as_json.returncode == 1 and says in json.loads(as_json.stdout)["error"]
    debug = jobsync(env, "--debug", "boards", "list")
    assert "Traceback" in debug.stderr


def test_a_missing_bucket_and_an_old_schema_say_what_to_do(env, tmp_path):
    done = jobsync(env, "sync", "company_files")
    assert done.returncode == 1 and "point JOBSYNC_BUCKET_URL at the" in done.stderr
    from alembic import command
    from alembic.config import Config
    from jobsync_pipeline.store import engine as store_engine
    config = Config()
    config.set_main_option("script_location", str(store_engine.MIGRATIONS))
    engine = store_engine.engine_for(env["JOBSYNC_DATABASE_URL"])
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    store_engine.dispose(env["JOBSYNC_DATABASE_URL"])
    old = jobsync(env, "boards", "list")
    assert old.returncode == 1 and "run `jobsync db upgrade`" in old.stderr and "is at schema 0004" in old.stderr
    upgraded = jobsync(env, "db", "upgrade")
    assert upgraded.returncode == 0 and "0004 →" in upgraded.stdout
    assert jobsync(env, "boards", "list").returncode == 0
    assert jobsync(env, "sync", "nosuchsource").returncode == 2


def test_an_api_board_that_does_not_exist_is_refused_and_not_registered(env):
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    missing = (FIXTURES / "greenhouse" / "unknown_board.jobs.404.json").read_bytes()
    with LocalServer({"/v1/boards/typo/jobs": Reply(404, missing)}) as server:
        env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url}
        done = jobsync(env, "sync", "greenhouse", "--board", "typo")
    assert done.returncode == 1 and done.stdout == ""
    assert "no greenhouse board 'typo'" in done.stderr and "nothing registered" in done.stderr
    assert json.loads(jobsync(env, "boards", "list", "--all", "--json").stdout) == []
    from dagster import DagsterInstance
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_dynamic_partitions("greenhouse_boards") == []


def test_the_file_size_limit_comes_from_the_environment(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    small = jobsync({**env, "JOBSYNC_MAX_FILE_BYTES": "200"}, "sync", "company_files", "--board", "marisol-hoteles",
                    "--json")
    assert small.returncode == 1
    error = json.loads(small.stdout)["boards"]["marisol-hoteles"]["error"]
    size = (tmp_path / "bucket" / "marisol-hoteles.json").stat().st_size
    assert f"{size:,} bytes is over the 200-byte limit (JOBSYNC_MAX_FILE_BYTES raises it)" in error
    bad = jobsync({**env, "JOBSYNC_MAX_FILE_BYTES": "ten megabytes"}, "sync", "company_files")
    assert bad.returncode == 1 and "JOBSYNC_MAX_FILE_BYTES='ten megabytes' is not a size in bytes" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_a_killed_sync_does_not_block_its_host(env, tmp_path):
    """kill -9 a Greenhouse sync mid-fetch: the next sync of another board of that host completes."""
    import signal
    import time

    from dagster import DagsterInstance, DagsterRunStatus
    from jobsync_pipeline_tests.conftest import PROJECT_ROOT
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")  # pools: 1 per host
    body = (FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()
    slow = "/v1/boards/stuck/jobs?content=true"
    routes = {slow: Reply(body=body, delay=120), "/v1/boards/larkfieldhealth/jobs?content=true": Reply(body=body)}
    with LocalServer(routes) as server:
        env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url}
        assert jobsync(env, "boards", "add", "greenhouse", "stuck", "larkfieldhealth", "--no-check").returncode == 0
        stuck = subprocess.Popen(["jobsync", "sync", "greenhouse", "--board", "stuck"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not server.count(path=slow) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.count(path=slow), "the first sync never reached its fetch"
        stuck.send_signal(signal.SIGKILL)
        stuck.wait(timeout=30)

        started = time.monotonic()
        # blocked by the dead run's pool slot, this sync would wait without end: 60 s fails the test
        done = subprocess.run(["jobsync", "sync", "greenhouse", "--board", "larkfieldhealth", "--json"], env=env,
                              capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["boards"]["larkfieldhealth"]["status"] == "success"
    assert elapsed < 30
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == sorted([DagsterRunStatus.SUCCESS.value, DagsterRunStatus.FAILURE.value])


def run_worker_pid(dagster_home: str, partition: str) -> int:
    """The pid of the process running the run of `partition`, as its run's engine events name it."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(dagster_home) as instance:
        (run,) = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == partition]
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            metadata = getattr(event.event_specific_data, "metadata", None) if event else None
            if event and event.event_type_value == "ENGINE_EVENT" and metadata and "pid" in metadata:
                return int(metadata["pid"].value)
    raise AssertionError(f"the run of {partition} names no process")


def test_a_killed_daemon_run_frees_its_host(env, tmp_path):
    """Where the daemon runs: kill -9 a daemon-launched Greenhouse run mid-fetch; its code server marks it
    failed, run monitoring (as configured in dagster.yaml) frees its pool slot, and a run of another
    board of that host, launched at once, succeeds."""
    import signal
    import time

    from dagster import DagsterInstance, DagsterRunStatus
    from jobsync_pipeline_tests.conftest import PROJECT_ROOT
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    body = (FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()
    slow = "/v1/boards/stuck/jobs?content=true"
    routes = {slow: Reply(body=body, delay=600), "/v1/boards/larkfieldhealth/jobs?content=true": Reply(body=body)}

    def launch(board: str) -> None:
        done = subprocess.run(["dagster", "job", "launch", "-w", "workspace.yaml", "-j", "greenhouse_sync",
                               "--tags", json.dumps({"dagster/partition": board})],
                              env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def runs() -> dict[str, DagsterRunStatus]:
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            return {run.tags.get("dagster/partition"): run.status for run in instance.get_runs()}

    with LocalServer(routes) as server:
        env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url}
        assert jobsync(env, "boards", "add", "greenhouse", "stuck", "larkfieldhealth", "--no-check").returncode == 0
        daemon = subprocess.Popen(["dagster-daemon", "run", "-w", "workspace.yaml"], env=env, cwd=PROJECT_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            launch("stuck")
            deadline = time.monotonic() + 180
            while not server.count(path=slow) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert server.count(path=slow), "the daemon never launched the first run"
            # the process that runs the run (a child of the code server) says its pid in the run's log; the
            # daemon may be running other runs meanwhile (the default sensors'), so the tree is no guide
            os.kill(run_worker_pid(env["DAGSTER_HOME"], "stuck"), signal.SIGKILL)
            killed = time.monotonic()

            launch("larkfieldhealth")
            while runs().get("larkfieldhealth") not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE) \
                    and time.monotonic() - killed < 150:
                time.sleep(1)
            elapsed = time.monotonic() - killed
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

    statuses = runs()
    assert statuses["stuck"] == DagsterRunStatus.FAILURE
    assert statuses["larkfieldhealth"] == DagsterRunStatus.SUCCESS
    # the slot comes back free_slots_after_run_end_seconds (30) after the run ended, checked every 15 s
    assert elapsed < 75, elapsed


def test_a_sync_that_cannot_get_its_pool_slot_says_so_and_sigterm_ends_it(env, tmp_path):
    import signal
    import time

    from dagster import DagsterInstance
    from jobsync_pipeline_tests.conftest import PROJECT_ROOT

    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")  # pools: 1 per host
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:  # a stuck run of another process
        instance.event_log_storage.initialize_concurrency_limit_to_default("greenhouse_api")
        claim = instance.event_log_storage.claim_concurrency_slot("greenhouse_api", "stuck-run", "greenhouse__raw_snapshot")
        assert claim.is_claimed
    env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": "http://127.0.0.1:9"}
    assert jobsync(env, "boards", "add", "greenhouse", "acme", "--no-check").returncode == 0

    waited = jobsync(env, "sync", "greenhouse", "--pool-wait", "2")
    assert waited.returncode == 1 and waited.stderr.count("\n") == 1
    assert "the greenhouse_api pool has no free slot after 2 s: held by stuck-run" in waited.stderr

    waiting = subprocess.Popen(["jobsync", "sync", "greenhouse", "--pool-wait", "600"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(12)  # started, and waiting for the slot
    assert waiting.poll() is None
    waiting.send_signal(signal.SIGTERM)
    _, err = waiting.communicate(timeout=20)
    assert waiting.returncode == 130 and "interrupted" in err
