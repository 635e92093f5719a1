"""`jobsync sync`: the command operators and scripts rely on, run as they run it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobsync_pipeline.defs.partitions import contiguous_ranges
from jobsync_pipeline.settings import PROJECT_ROOT
from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET

BIN = Path(sys.executable).parent
SHARED_CONTRACT = PROJECT_ROOT.parent / "shared" / "contract" / "check_sync_contract.py"
VENDORED_CONTRACT = Path(__file__).parent / "contract" / "check_sync_contract.py"


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
    shutil.copy(FIXTURES / "company_files" / "bad" / "truncated.json", tmp_path / "bucket" / "halcyon-bakery.json")
    done = jobsync(env, "sync", "company_files", "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["boards"]["halcyon-bakery"]["status"] == "failed"
    assert "halcyon-bakery.json" in out["boards"]["halcyon-bakery"]["error"]
    assert out["boards"]["kaito-mobility"] == {"found": 3, "new": 3, "changed": 0, "unchanged": 0, "expired": 0,
                                              "bad": 0, "reactivated": 0, "cross_source_duplicates": 0,
                                              "possible_duplicates": 0, "status": "success", "error": None}
    assert out["totals"]["new"] == 8


def test_named_boards_only_and_a_readable_table(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    assert jobsync(env, "sync", "company_files", "--board", "kaito-mobility").returncode == 0
    done = jobsync(env, "sync", "company_files", "--board", "brightwave-energy", "--board", "nordlicht-games")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["board", "found", "new", "changed", "unchanged", "expired", "bad", "dupes",
                                "status"]
    assert [line.split()[0] for line in lines[2:4]] == ["brightwave-energy", "nordlicht-games"]
    assert lines[5].split()[:3] == ["total", "5", "5"]


def test_an_unsafe_board_name_is_refused(env, tmp_path):
    (tmp_path / "bucket").mkdir()
    done = jobsync(env, "sync", "company_files", "--board", "../etc", "--json")
    assert done.returncode == 1
    assert "path separator" in json.loads(done.stdout)["boards"]["../etc"]["error"]


def test_the_shared_sync_contract_holds(env):
    """../shared/contract/check_sync_contract.py, or its copy when this clone stands alone."""
    script = SHARED_CONTRACT if SHARED_CONTRACT.exists() else VENDORED_CONTRACT
    done = subprocess.run([sys.executable, str(script)], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "contract ok" in done.stdout


def test_boards_add_from_a_careers_url_then_sync_and_list(env):
    """`boards add` checks the board answers, `sync greenhouse --board` runs it, `boards list` shows it."""
    from jobsync_pipeline_tests.http_server import LocalServer, Reply

    body = (FIXTURES / "greenhouse" / "northwindlabs.jobs.json").read_bytes()
    missing = (FIXTURES / "greenhouse" / "unknown_board.jobs.404.json").read_bytes()
    routes = {"/v1/boards/northwindlabs/jobs": Reply(body=body), "/v1/boards/nosuchboard/jobs": Reply(404, missing)}
    with LocalServer(routes) as server:
        env = {**env, "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url}
        added = jobsync(env, "boards", "add", "https://job-boards.greenhouse.io/northwindlabs/jobs/7423011",
                        "https://boards.greenhouse.io/nosuchboard", "--json")
        assert added.returncode == 1, added.stderr
        outcome = {r["board"]: r for r in json.loads(added.stdout)}
        assert outcome["northwindlabs"]["added"] and outcome["northwindlabs"]["jobs"] == 6
        assert not outcome["nosuchboard"]["added"] and "404" in outcome["nosuchboard"]["error"]

        synced = jobsync(env, "sync", "greenhouse", "--board", "northwindlabs", "--json")
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["boards"]["northwindlabs"]["new"] == 6

    listed = jobsync(env, "boards", "list", "greenhouse", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["board"], row["status"], row["origin"], row["last_sync_status"]) == \
        ("northwindlabs", "active", "cli", "success")
    assert row["counts"]["found"] == 6

    removed = jobsync(env, "boards", "remove", "greenhouse", "northwindlabs")
    assert "6 job(s) expired" in removed.stdout
    assert json.loads(jobsync(env, "boards", "list", "--json").stdout)[0]["status"] == "retired"


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
