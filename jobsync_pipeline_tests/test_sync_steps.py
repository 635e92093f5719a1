"""defs/sync_steps.py: a lane step's step changes, written to sync_steps and told in the run's log in
batches, on SQLite and PostgreSQL."""
from __future__ import annotations

import logging

from jobsync_pipeline.core.steps import API_STEPS, CRAWL_STEPS, StepStatus
from jobsync_pipeline.defs.sync_steps import StepJournal, StepLog
from jobsync_pipeline.store.repo import Store


class Lines:
    """A log that keeps what it is told, as (level, message)."""

    def __init__(self):
        self.messages: list[tuple[int, str]] = []

    def log(self, level: int, message: str) -> None:
        self.messages.append((level, message))


def journal(store: Store, interval: float = 3600) -> tuple[StepJournal, Lines]:
    lines = Lines()
    return StepJournal(store.steps, lines, interval=interval), lines


def test_changes_wait_for_the_flush_then_land_in_one_go_with_their_log_lines(store_url):
    store = Store(store_url)
    ids = store.steps.open_syncs("greenhouse", ["a", "b"], run_id="r", plan=API_STEPS.all())
    steps, lines = journal(store)
    steps.load(ids.values())
    for board in ("a", "b"):
        log = StepLog(steps, ids[board], f"greenhouse/{board}")
        with log.run("fetch") as fetching:
            fetching["bytes"] = 120
        log.start("archive")
    # nothing written or said yet: a backfill pays for its changes a batch at a time
    assert {s.status for s in store.steps.steps(ids["a"])} == {StepStatus.PENDING}
    assert lines.messages == []
    assert [s.status for s in steps.steps(ids["a"])][:2] == [StepStatus.COMPLETED, StepStatus.RUNNING]

    steps.flush()
    stored = {s.name: s for s in store.steps.steps(ids["b"])}
    assert (stored["fetch"].status, stored["fetch"].counts) == (StepStatus.COMPLETED, {"bytes": 120})
    assert stored["fetch"].started_at <= stored["fetch"].finished_at
    assert stored["archive"].status == StepStatus.RUNNING and stored["parse"].status == StepStatus.PENDING
    # one message per level, one line per change, in order
    assert len(lines.messages) == 1 and lines.messages[0][0] == logging.INFO
    said = lines.messages[0][1].splitlines()
    assert said[0] == f"greenhouse/a sync {ids['a']} step fetch: running"
    assert said[1].startswith(f'greenhouse/a sync {ids["a"]} step fetch: completed {{"counts": {{"bytes": 120}}')
    assert len(said) == 6


def test_a_failure_is_told_as_a_warning_and_counts_merge_across_flushes(store_url):
    store = Store(store_url)
    sync_id = store.steps.open_syncs("site_crawl", ["s"], run_id="r", plan=CRAWL_STEPS.all())["s"]
    steps, lines = journal(store)
    steps.load([sync_id])
    log = StepLog(steps, sync_id, "site_crawl/s", interval=0)
    log.start("crawl", total=10)
    log.advance("crawl", 4, 10, counts={"pages": 4})
    steps.flush()
    log.advance("crawl", 10, 10, counts={"jobs_found": 9})
    log.fail("crawl", "robots.txt changed", counts={"pages": 10})
    log.skip("extra", "not needed")  # a step the plan lacks: added at the end
    steps.flush()
    stored = {s.name: s for s in store.steps.steps(sync_id)}
    crawl = stored["crawl"]
    assert (crawl.status, crawl.done, crawl.total, crawl.error) == (StepStatus.FAILED, 10, 10, "robots.txt changed")
    assert crawl.counts == {"pages": 10, "jobs_found": 9}
    assert stored["extra"].position == len(CRAWL_STEPS.all()) and stored["extra"].status == StepStatus.SKIPPED
    levels = [level for level, _ in lines.messages]
    assert logging.WARNING in levels and logging.DEBUG in levels  # progress lines are DEBUG
    warned = next(message for level, message in lines.messages if level == logging.WARNING)
    assert "step crawl: failed" in warned and "robots.txt changed" in warned


def test_the_journal_flushes_by_itself_once_its_interval_has_passed(store_url):
    store = Store(store_url)
    sync_id = store.steps.open_syncs("lever", ["x"], run_id="r", plan=API_STEPS.all())["x"]
    steps, lines = journal(store, interval=0)  # every change is due at once: a slow crawl is seen live
    steps.load([sync_id])
    StepLog(steps, sync_id, "lever/x").start("fetch")
    assert store.steps.steps(sync_id)[0].status == StepStatus.RUNNING
    assert len(lines.messages) == 1
