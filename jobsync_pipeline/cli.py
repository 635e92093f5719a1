"""`jobsync`: run a source's lane through Dagster on the configured instance and report what it did."""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence

from jobsync_pipeline import settings
from jobsync_pipeline.defs.partitions import contiguous_ranges, range_tags

COUNTS = ("found", "new", "changed", "unchanged", "expired", "bad")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def board_summary(result) -> dict:
    skipped = result.error if result.status == "stale" else None
    return {**{c: result.counts.get(c, 0) for c in COUNTS}, "reactivated": result.counts.get("reactivated", 0),
            "status": "failed" if result.status != "success" and not skipped else "success",
            "error": None if result.status in ("success", "stale") else result.error,
            **({"skipped": skipped} if skipped else {})}


def failed_board(error: str) -> dict:
    return {**dict.fromkeys(COUNTS, 0), "reactivated": 0, "status": "failed", "error": error}


def sync(source: str, boards: Sequence[str] | None = None) -> dict:
    """Sync `boards` of `source` (all it knows when None) and return the `--json` summary."""
    import dagster as dg

    from jobsync_pipeline.defs.resources import build_resources
    from jobsync_pipeline.defs.sources import SOURCES_BY_NAME
    from jobsync_pipeline.definitions import defs
    from jobsync_pipeline.sources.bucket import board_name_problem

    spec = SOURCES_BY_NAME[source]
    started = time.monotonic()
    summary: dict[str, dict] = {}
    refused: dict[str, str] = {}
    with dg.build_resources(build_resources()) as resources:
        connector = spec.connector(resources)
        if boards:
            selected = list(dict.fromkeys(boards))
        else:
            selected = connector.boards()
            refused = getattr(getattr(connector, "bucket", None), "listing", lambda: None)()
            refused = refused.refused if refused else {}
        store = resources.store.store()
    for board in list(selected):
        problem = board_name_problem(board)
        if problem:
            summary[board] = failed_board(f"board name {board!r} {problem}")
            selected.remove(board)

    instance = dg.DagsterInstance.get()
    known = instance.get_dynamic_partitions(spec.partitions_name)
    missing = [b for b in selected if b not in known]
    if missing:
        instance.add_dynamic_partitions(spec.partitions_name, missing)
    job = defs.resolve_job_def(f"{spec.name}_sync")
    for start, end in contiguous_ranges(instance.get_dynamic_partitions(spec.partitions_name), selected):
        run = job.execute_in_process(instance=instance, tags=range_tags(start, end),
                                     run_config=QUIET_LOGS, raise_on_error=False)
        for result in store.syncs_for_run(run.run_id, spec.name):
            summary[result.board] = board_summary(result)
        for board in selected:
            if board not in summary and _in_range(board, start, end, selected):
                summary[board] = failed_board(f"run {run.run_id} ended before this board synced; see its logs")
    totals = {k: sum(b[k] for b in summary.values()) for k in (*COUNTS, "reactivated")}
    return {"boards": summary, "totals": totals, "refused": refused,
            "duration_seconds": round(time.monotonic() - started, 3)}


def _in_range(board: str, start: str, end: str, selected: Sequence[str]) -> bool:
    return selected.index(start) <= selected.index(board) <= selected.index(end)


def print_table(result: dict) -> None:
    name_width = max([len("board"), len("total"), *map(len, result["boards"])])
    header = f"{'board':<{name_width}}  " + "  ".join(f"{c:>9}" for c in COUNTS) + "  status"
    print(header)
    print("-" * len(header))
    for board, row in result["boards"].items():
        status = "stale, skipped" if row.get("skipped") else row["status"]
        print(f"{board:<{name_width}}  " + "  ".join(f"{row[c]:>9}" for c in COUNTS) + f"  {status}")
    print("-" * len(header))
    print(f"{'total':<{name_width}}  " + "  ".join(f"{result['totals'][c]:>9}" for c in COUNTS))
    print(f"\n{len(result['boards'])} board(s) in {result['duration_seconds']:.2f}s")
    for board, row in result["boards"].items():
        if row["error"] or row.get("skipped"):
            print(f"  {board}: {row['error'] or row['skipped']}")
    for name, reason in result["refused"].items():
        print(f"  refused {reason}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobsync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="run a source's lane for all its boards or the named ones")
    sync_parser.add_argument("source", help="the source to sync, e.g. company_files")
    sync_parser.add_argument("--board", action="append", metavar="NAME", help="only this board (repeatable)")
    sync_parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    settings.apply_defaults(dagster_home=True)
    import dagster as dg

    # The single-run backfill policy is beta in dagster 1.13; say so once in the docs, not on every call.
    warnings.filterwarnings("ignore", message="Parameter .backfill_policy.", category=dg.BetaWarning)
    from jobsync_pipeline.defs.sources import SOURCES_BY_NAME

    if args.source not in SOURCES_BY_NAME:
        parser.error(f"unknown source {args.source!r}; known: {', '.join(SOURCES_BY_NAME)}")
    result = sync(args.source, args.board)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        print()
    else:
        print_table(result)
    return 0 if all(b["status"] == "success" for b in result["boards"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
