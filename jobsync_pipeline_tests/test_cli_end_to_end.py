"""`jobsync sync company_files --json` end to end: the installed console script on a scratch bucket, store
and Dagster instance, judged only by what the README ("The `jobsync` command") promises and by the store."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET

JOBSYNC = Path(sys.executable).parent / "jobsync"  # the console script installed beside this interpreter
COUNTS = ("found", "new", "changed", "unchanged", "expired", "bad", "reactivated", "already_expired",
          "cross_source_duplicates", "possible_duplicates")
BOARD_KEYS = {*COUNTS, "status", "error"}
BOARDS = {"amberline-freight", "marisol-hoteles", "tessellate-studio"}


class Scratch:
    """A bucket folder, a SQLite store and a Dagster home that only this test uses."""

    def __init__(self, root: Path, store_url: str):
        self.bucket = root / "bucket"
        self.bucket.mkdir()
        (root / "dagster_home").mkdir()
        self.store_file = store_url.removeprefix("sqlite:///")
        self.env = {**os.environ, "JOBSYNC_DATABASE_URL": store_url, "JOBSYNC_BUCKET_URL": str(self.bucket),
                    "DAGSTER_HOME": str(root / "dagster_home")}

    def upload(self, *files: Path, as_name: str | None = None) -> None:
        """Put files into the bucket the way the scraper does: whole files, overwriting older uploads."""
        for f in files:
            shutil.copyfile(f, self.bucket / (as_name or f.name))

    def sync(self, expected_exit: int) -> dict:
        done = subprocess.run([str(JOBSYNC), "sync", "company_files", "--json"], env=self.env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == expected_exit, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
        summary = json.loads(done.stdout)  # stdout is the one JSON object and nothing else
        assert_documented_shape(summary)
        return summary

    def store(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.store_file) as db:
            return db.execute(sql).fetchall()


def snapshot(n: int) -> list[Path]:
    return sorted((SAMPLE_BUCKET / f"snapshot_{n}").glob("*.json"))


def assert_documented_shape(summary: dict) -> None:
    assert {"boards", "totals", "refused", "duration_seconds"} <= set(summary)
    for board, row in summary["boards"].items():
        assert BOARD_KEYS <= set(row) <= BOARD_KEYS | {"skipped"}, board
        assert all(isinstance(row[k], int) and row[k] >= 0 for k in COUNTS), board
        assert row["status"] in ("success", "failed"), board
        assert (row["error"] is None) == (row["status"] == "success"), board
    for k in COUNTS:  # the totals add up the boards
        assert summary["totals"][k] == sum(row[k] for row in summary["boards"].values()), k
    assert isinstance(summary["refused"], dict)
    assert isinstance(summary["duration_seconds"], (int, float)) and summary["duration_seconds"] >= 0


def picked(summary: dict, *keys: str) -> dict[str, tuple]:
    """Each board's values of `keys`, to compare whole snapshots at a glance."""
    return {board: tuple(row[k] for k in keys) for board, row in summary["boards"].items()}


@pytest.fixture
def scratch(tmp_path, sqlite_url) -> Scratch:
    return Scratch(tmp_path, sqlite_url)


def test_two_snapshots_a_repeat_and_a_late_file(scratch):
    scratch.upload(*snapshot(1))
    first = scratch.sync(expected_exit=0)
    assert set(first["boards"]) == BOARDS and first["refused"] == {}
    assert picked(first, "found", "new", "changed", "unchanged", "expired", "bad") == {
        "amberline-freight": (3, 3, 0, 0, 0, 0), "marisol-hoteles": (3, 3, 0, 0, 0, 0),
        "tessellate-studio": (2, 2, 0, 0, 0, 0)}
    assert all(row["status"] == "success" and "skipped" not in row for row in first["boards"].values())

    scratch.upload(*snapshot(2))  # a later scrapedAt for every company
    second = scratch.sync(expected_exit=0)
    assert picked(second, "found", "new", "changed", "unchanged", "expired") == {
        "amberline-freight": (3, 1, 1, 1, 1),  # af-3107 new, af-3102 changed, af-3103 gone
        "marisol-hoteles": (2, 0, 0, 2, 1),    # MH-124 gone; the job without an id is matched, unchanged
        "tessellate-studio": (2, 1, 0, 1, 1)}  # ts-0049 new, ts-0043 listed with isActive false
    assert (second["totals"]["new"], second["totals"]["changed"], second["totals"]["expired"]) == (2, 1, 3)
    assert scratch.store("select count(*) from jobs where expired_at is null") == [(7,)]
    assert sorted(scratch.store("select external_id from jobs where expired_at is not null")) == [
        ("MH-124",), ("af-3103",), ("ts-0043",)]

    again = scratch.sync(expected_exit=0)  # nothing uploaded since: nothing to report
    assert picked(again, "new", "changed", "expired", "reactivated") == dict.fromkeys(BOARDS, (0, 0, 0, 0))
    assert all(row["unchanged"] == row["found"] for row in again["boards"].values())

    # the scraper re-uploads an older file: skipped and said so, never applied, not a failure
    scratch.upload(SAMPLE_BUCKET / "snapshot_1" / "marisol-hoteles.json")
    late = scratch.sync(expected_exit=0)
    row = late["boards"]["marisol-hoteles"]
    assert row["status"] == "success" and row["error"] is None
    assert isinstance(row.get("skipped"), str) and row["skipped"]
    assert (row["new"], row["changed"], row["expired"], row["reactivated"]) == (0, 0, 0, 0)
    assert all("skipped" not in late["boards"][b] for b in BOARDS - {"marisol-hoteles"})
    assert scratch.store("select expired_at is not null from jobs where external_id = 'MH-124'") == [(1,)]
    assert scratch.store("select count(*) from jobs where expired_at is null") == [(7,)]


def test_a_broken_file_fails_only_its_board_and_the_exit_status(scratch):
    scratch.upload(*snapshot(1))
    scratch.upload(FIXTURES / "company_files" / "bad" / "truncated.json", as_name="wickham-cycles.json")
    scratch.upload(SAMPLE_BUCKET / "snapshot_1" / "tessellate-studio.json", as_name="draft copy.json")

    summary = scratch.sync(expected_exit=1)

    broken = summary["boards"]["wickham-cycles"]
    assert broken["status"] == "failed" and "wickham-cycles.json" in broken["error"]
    assert (broken["found"], broken["new"]) == (0, 0)
    assert picked(summary, "status", "new") == {"amberline-freight": ("success", 3), "marisol-hoteles": ("success", 3),
                                                "tessellate-studio": ("success", 2), "wickham-cycles": ("failed", 0)}
    assert summary["totals"]["new"] == 8
    # a file whose name cannot be a board is refused by name, not synced and not a failure
    assert list(summary["refused"]) == ["draft copy.json"] and "draft copy" not in summary["boards"]
    assert scratch.store("select count(*) from jobs where expired_at is null") == [(8,)]
