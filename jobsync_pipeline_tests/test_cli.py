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
                                              "bad": 0, "reactivated": 0, "status": "success", "error": None}
    assert out["totals"]["new"] == 8


def test_named_boards_only_and_a_readable_table(env, tmp_path):
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    assert jobsync(env, "sync", "company_files", "--board", "kaito-mobility").returncode == 0
    done = jobsync(env, "sync", "company_files", "--board", "brightwave-energy", "--board", "nordlicht-games")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["board", "found", "new", "changed", "unchanged", "expired", "bad", "status"]
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
