"""`jobsync sync SOURCE [--board NAME ...] [--json]`: run a source's lane through Dagster on the
configured instance and report each board's outcome."""
from __future__ import annotations

import time
from collections.abc import Sequence

from jobsync_pipeline import settings
from jobsync_pipeline.cli.dead_runs import end_dead_runs, launch_tags, wait_for_pool
from jobsync_pipeline.cli.runtime import CommandError, ready_store_url, resources
from jobsync_pipeline.core.status import SYNC_COUNTS, SyncStatus
from jobsync_pipeline.defs.run_tags import contiguous_ranges, range_tags

COUNTS = ("found", "new", "changed", "unchanged", "expired", "bad")  # the --json contract's counts
# beside them: reactivated jobs, postings a feed listed past their own expiry date (found, not added:
# found = new + changed + unchanged + reactivated + already_expired), jobs another source lists too (one
# canonical job), and pairs too weakly alike to merge, recorded for review
MORE_COUNTS = ("reactivated", "already_expired", "cross_source_duplicates", "possible_duplicates")
TABLE_COUNTS = (*COUNTS[:5], "reactivated", "already_expired", "bad")
# a column only a feed fills: shown when a board has some, so found = the counts after it, read across
# The CLI prints its own table; the console logger would tell each board's story again.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
assert set(COUNTS + MORE_COUNTS) <= set(SYNC_COUNTS)


def board_summary(result) -> dict:
    skipped = result.error if result.status == SyncStatus.STALE else None
    failed = result.status not in (SyncStatus.SUCCESS, SyncStatus.STALE)
    return {**{c: result.counts.get(c, 0) for c in (*COUNTS, *MORE_COUNTS)},
            "status": "failed" if failed else "success",
            "error": (f"{result.status}: {result.error}" if result.status == SyncStatus.GUARDED else result.error)
            if failed else None,
            **({"skipped": skipped} if skipped else {})}


def failed_board(error: str) -> dict:
    return {**dict.fromkeys((*COUNTS, *MORE_COUNTS), 0), "status": "failed", "error": error}


def board_problem(spec, res, store, board: str, bucket_boards: set[str] | None) -> str | None:
    """Why `board` is not one of the source's boards (nothing is registered for it), or None."""
    from jobsync_pipeline.core.status import BoardStatus
    from jobsync_pipeline.defs.discovery import probe_board
    from jobsync_pipeline.sources.bucket import board_name_problem
    from jobsync_pipeline.sources.site_config import SOURCE as SITE_SOURCE

    problem = board_name_problem(board)
    if problem:
        return f"board name {board!r} {problem}"
    if spec.static_partitions is not None:
        if board not in spec.static_partitions:
            return f"{board!r} is not one of {spec.name}'s partitions ({', '.join(spec.static_partitions)})"
        return None
    status = store.boards.status(spec.name, board)
    if spec.name == SITE_SOURCE:
        if status is None:
            return f"no site {board!r}; `jobsync sites list` shows the sites, `jobsync sites add` adds one"
        if status == BoardStatus.INACTIVE:
            return f"site {board!r} is inactive; `jobsync sites set {board} --active` turns it on"
    if status == BoardStatus.INACTIVE:
        return f"{spec.name}/{board} is inactive"
    if status == BoardStatus.RETIRED:
        return f"{spec.name}/{board} is retired; `jobsync boards add {spec.name} {board}` brings it back"
    if bucket_boards is not None:
        if board not in bucket_boards:
            return f"no file {board}.json in the bucket {res.bucket.bucket().url}; nothing registered"
        return None
    if spec.board_registry and status is None:  # a board the registry does not know is asked first
        connector = spec.connector(res)
        try:
            outcome, detail = probe_board(connector, board)
        finally:
            connector.close()
        if outcome == "not_found":
            return f"no {spec.name} board {board!r} ({detail}); nothing registered"
        if outcome == "error":
            return f"{spec.name}/{board} did not answer ({detail}); nothing registered"
        store.boards.add(spec.name, [board], "cli")
    return None


def sync(source: str, boards: Sequence[str] | None = None, *, refuse_unknown: bool = False,
         pool_wait: float | None = None, progress: bool = False) -> dict:
    """Sync `boards` of `source` (all it knows when None) and return the `--json` summary.

    `refuse_unknown`: raise CommandError, before anything runs, when none of the named boards is one of
    the source's (instead of reporting them as failed boards). `pool_wait`: seconds to wait for the
    source's API pool slot before giving up (default JOBSYNC_POOL_WAIT_SECONDS, 300). `progress`: draw
    each board's steps on stderr while the run goes."""
    from dagster._core.utils import make_new_run_id

    from jobsync_pipeline.cli.syncs import with_progress
    from jobsync_pipeline.cli.runtime import instance as dagster_instance
    from jobsync_pipeline.definitions import defs
    from jobsync_pipeline.defs.source_specs import SOURCES_BY_NAME

    spec = SOURCES_BY_NAME[source]
    started = time.monotonic()
    summary: dict[str, dict] = {}
    refused: dict[str, str] = {}
    ready_store_url()
    with resources() as res:
        store = res.store.store()
        bucket_boards = None
        if "bucket" in spec.resource_keys:
            listing = res.bucket.bucket().listing()
            bucket_boards = {f.board for f in listing.files}
            refused = {} if boards else listing.refused
        selected = list(dict.fromkeys(boards)) if boards else spec.known_boards(res, store)
        for board in list(selected):
            problem = board_problem(spec, res, store, board, bucket_boards)
            if problem:
                summary[board] = failed_board(problem)
                selected.remove(board)
    if boards and not selected and refuse_unknown:
        raise CommandError("; ".join(row["error"] for row in summary.values()))
    instance = dagster_instance()
    end_dead_runs(instance, store)  # a killed earlier sync must not hold its host's pool slot forever
    job = defs.resolve_job_def(f"{spec.name}_sync")
    if spec.static_partitions is not None:
        ordered = list(spec.static_partitions)
    else:
        register_partitions(instance, spec.partitions_name, selected)
        ordered = instance.get_dynamic_partitions(spec.partitions_name)
    for start, end in contiguous_ranges(ordered, selected):
        if spec.pool:
            wait_for_pool(instance, spec.pool, settings.pool_wait_seconds() if pool_wait is None else pool_wait)
        run_id = make_new_run_id()
        with with_progress(store, run_id, progress):
            run = job.execute_in_process(instance=instance, tags={**range_tags(start, end), **launch_tags()},
                                         run_config=QUIET_LOGS, raise_on_error=False, run_id=run_id)
        for result in store.syncs_for_run(run.run_id, spec.name):
            summary[result.board] = board_summary(result)
        for board in ordered[ordered.index(start): ordered.index(end) + 1]:
            summary.setdefault(board, failed_board(f"run {run.run_id} ended before this board synced; see its logs"))
    totals = {k: sum(b[k] for b in summary.values()) for k in (*COUNTS, *MORE_COUNTS)}
    return {"boards": summary, "totals": totals, "refused": refused,
            "duration_seconds": round(time.monotonic() - started, 3)}


def register_partitions(instance, partitions_name: str, boards: Sequence[str]) -> None:
    known = set(instance.get_dynamic_partitions(partitions_name))
    missing = [b for b in boards if b not in known]
    if missing:
        instance.add_dynamic_partitions(partitions_name, missing)


def print_table(result: dict) -> None:
    width = max([len("board"), len("total"), *map(len, result["boards"])])
    shown = [c for c in TABLE_COUNTS if c != "already_expired" or result["totals"]["already_expired"]]
    widths = {c: max(11, len(c)) for c in shown}
    header = f"{'board':<{width}}  " + "  ".join(f"{c:>{widths[c]}}" for c in shown) + f"  {'dupes':>7}  status"
    print(header)
    print("-" * len(header))
    for board, row in result["boards"].items():
        status = "stale, skipped" if row.get("skipped") else row["status"]
        print(f"{board:<{width}}  " + "  ".join(f"{row[c]:>{widths[c]}}" for c in shown)
              + f"  {row['cross_source_duplicates']:>7}  {status}")
    print("-" * len(header))
    print(f"{'total':<{width}}  " + "  ".join(f"{result['totals'][c]:>{widths[c]}}" for c in shown)
          + f"  {result['totals']['cross_source_duplicates']:>7}")
    print(f"\n{len(result['boards'])} board(s) in {result['duration_seconds']:.2f}s")
    for board, row in result["boards"].items():
        if row["error"] or row.get("skipped"):
            print(f"  {board}: {row['error'] or row['skipped']}")
    for reason in result["refused"].values():
        print(f"  refused {reason}")
