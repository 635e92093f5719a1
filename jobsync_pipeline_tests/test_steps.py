"""store/steps.py: a sync's planned steps, their progress, how they end with the sync, and the history
limit, on SQLite and PostgreSQL."""
from __future__ import annotations

from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.core.steps import API_STEPS, CRAWL_STEPS, StepStatus
from jobsync_pipeline.store.repo import Store


def test_a_run_opens_one_sync_per_board_with_its_steps_planned_and_reuses_it(store_url):
    store = Store(store_url)
    opened = store.steps.open_syncs("greenhouse", ["a", "b"], run_id="run-1", plan=API_STEPS.all())
    assert set(opened) == {"a", "b"} and opened["a"] != opened["b"]
    # a later step of the same run finds the same syncs; another run gets its own
    assert store.steps.open_syncs("greenhouse", ["b", "a"], run_id="run-1", plan=API_STEPS.all()) == opened
    assert store.steps.open_syncs("greenhouse", ["a"], run_id="run-2", plan=API_STEPS.all())["a"] != opened["a"]
    steps = store.steps.steps(opened["a"])
    assert [s.name for s in steps] == ["fetch", "archive", "parse", "apply", "cleanup"]
    assert {s.status for s in steps} == {StepStatus.PENDING}
    assert store.sync_result(opened["a"]).status == SyncStatus.RUNNING


def test_progress_counts_merge_and_a_step_the_plan_lacks_is_added_at_the_end(store_url):
    store = Store(store_url)
    sync_id = store.steps.open_syncs("site_crawl", ["s"], run_id="r", plan=CRAWL_STEPS.all())["s"]
    store.steps.update(sync_id, "crawl", status=StepStatus.RUNNING, done=0, total=10, started=True)
    store.steps.update(sync_id, "crawl", done=4, counts={"pages": 4})
    store.steps.update(sync_id, "crawl", done=10, counts={"jobs_found": 9})
    store.steps.update(sync_id, "crawl", status=StepStatus.COMPLETED, finished=True)
    store.steps.update(sync_id, "extra", status=StepStatus.SKIPPED)
    steps = {s.name: s for s in store.steps.steps(sync_id)}
    crawl = steps["crawl"]
    assert (crawl.status, crawl.done, crawl.total, crawl.counts) == ("completed", 10, 10, {"pages": 4, "jobs_found": 9})
    assert crawl.started_at <= crawl.finished_at and crawl.seconds >= 0
    assert steps["extra"].position == len(CRAWL_STEPS.all())


def test_a_failed_sync_fails_its_running_step_and_skips_the_rest_a_successful_one_leaves_them(store_url):
    store = Store(store_url)
    ids = store.steps.open_syncs("lever", ["bad", "good"], run_id="r", plan=API_STEPS.all())
    for sync_id in ids.values():
        store.steps.update(sync_id, "fetch", status=StepStatus.RUNNING, started=True)
    store.finish_sync(ids["bad"], SyncStatus.FAILED, error="GET … answered 500")
    bad = {s.name: s for s in store.steps.steps(ids["bad"])}
    assert (bad["fetch"].status, bad["fetch"].error) == ("failed", "GET … answered 500")
    assert {bad[n].status for n in ("archive", "parse", "apply", "cleanup")} == {"skipped"}
    store.finish_sync(ids["good"], SyncStatus.SUCCESS)
    assert store.steps.steps(ids["good"])[0].status == "running"  # the lane goes on after the apply


def test_interrupted_syncs_end_their_steps(store_url):
    store = Store(store_url)
    sync_id = store.steps.open_syncs("lever", ["x"], run_id="dead", plan=API_STEPS.all())["x"]
    store.steps.update(sync_id, "fetch", status=StepStatus.RUNNING, started=True)
    assert store.interrupt_syncs("dead", "the run's process died") == 1
    steps = store.steps.steps(sync_id)
    assert steps[0].status == "failed" and "interrupted: the run's process died" in steps[0].error
    assert store.sync_result(sync_id).status == SyncStatus.FAILED


def test_only_the_latest_completed_syncs_of_a_board_keep_their_steps(store_url):
    store = Store(store_url)
    ids = []
    for n in range(7):
        sync_id = store.steps.open_syncs("greenhouse", ["a"], run_id=f"r{n}", plan=API_STEPS.all())["a"]
        if n < 6:
            store.finish_sync(sync_id, SyncStatus.SUCCESS)
        ids.append(sync_id)
    other = store.steps.open_syncs("greenhouse", ["b"], run_id="r0", plan=API_STEPS.all())["b"]
    store.finish_sync(other, SyncStatus.FAILED, error="x")
    removed = store.steps.keep_latest("greenhouse", "a", keep=3)
    assert removed == 3 * len(API_STEPS.all())
    kept = store.steps.for_syncs(ids + [other])
    assert set(kept) == {ids[3], ids[4], ids[5], ids[6], other}  # the running one and the other board keep theirs
    assert len(store.sync_history("greenhouse", "a")) == 7  # the syncs rows themselves stay
    assert store.steps.keep_latest("greenhouse", "a", keep=3) == 0


def test_the_history_limit_of_some_boards_reports_what_it_removed_from_each(store_url):
    store = Store(store_url)
    for run in range(4):
        for board, sync_id in store.steps.open_syncs("greenhouse", ["a", "b", "c"], run_id=f"run-{run}",
                                                     plan=API_STEPS.all()).items():
            store.finish_sync(sync_id, SyncStatus.SUCCESS)
    removed = store.steps.keep_latest_of("greenhouse", ["a", "b"], keep=1)
    assert removed == {"a": 3 * len(API_STEPS.all()), "b": 3 * len(API_STEPS.all())}
    kept = {board: sum(bool(store.steps.steps(s.id)) for s in store.sync_history("greenhouse", board))
            for board in ("a", "b", "c")}
    assert kept == {"a": 1, "b": 1, "c": 4}  # c was not asked about


def test_previous_syncs_are_each_boards_latest_ended_one_before_this_run(store_url):
    store = Store(store_url)
    first = store.steps.open_syncs("greenhouse", ["a", "b"], run_id="run-1", plan=API_STEPS.all())
    store.finish_sync(first["a"], SyncStatus.SUCCESS)
    store.finish_sync(first["b"], SyncStatus.FAILED, error="404")
    second = store.steps.open_syncs("greenhouse", ["a", "b", "new"], run_id="run-2", plan=API_STEPS.all())
    store.finish_sync(second["a"], SyncStatus.FAILED, error="timeout")
    previous = store.previous_syncs("greenhouse", ["a", "b", "new"], run_id="run-2")
    assert {board: (s.id, s.status) for board, s in previous.items()} == {
        "a": (first["a"], SyncStatus.SUCCESS), "b": (first["b"], SyncStatus.FAILED)}
    results = store.sync_results([second["a"], second["b"]])
    assert {i: r.status for i, r in results.items()} == {second["a"]: SyncStatus.FAILED,
                                                          second["b"]: SyncStatus.RUNNING}
