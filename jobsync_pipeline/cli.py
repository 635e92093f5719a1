"""`jobsync`: run a source's lane through Dagster on the configured instance and report what it did."""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from collections.abc import Sequence

from jobsync_pipeline import settings
from jobsync_pipeline.defs.partitions import contiguous_ranges, range_tags

COUNTS = ("found", "new", "changed", "unchanged", "expired", "bad")
# in --json beside the contract's counts: jobs another source lists too (one canonical job), and pairs
# too weakly alike to merge, recorded for review
MORE_COUNTS = ("reactivated", "cross_source_duplicates", "possible_duplicates")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def board_summary(result) -> dict:
    skipped = result.error if result.status == "stale" else None
    return {**{c: result.counts.get(c, 0) for c in (*COUNTS, *MORE_COUNTS)},
            "status": "failed" if result.status != "success" and not skipped else "success",
            "error": None if result.status in ("success", "stale") else result.error,
            **({"skipped": skipped} if skipped else {})}


def failed_board(error: str) -> dict:
    return {**dict.fromkeys((*COUNTS, *MORE_COUNTS), 0), "status": "failed", "error": error}


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
        store = resources.store.store()
        selected = list(dict.fromkeys(boards)) if boards else spec.known_boards(resources, store)
        if not boards and "bucket" in spec.resource_keys:
            refused = resources.bucket.bucket().listing().refused
    for board in list(selected):
        problem = board_name_problem(board)
        if spec.static_partitions is not None and board not in spec.static_partitions:
            problem = f"is not one of {spec.name}'s partitions ({', '.join(spec.static_partitions)})"
        if problem:
            summary[board] = failed_board(f"board name {board!r} {problem}")
            selected.remove(board)
    if spec.board_registry:
        store.boards.add(spec.name, [b for b in selected if b not in store.boards.syncable(spec.name)], "cli")

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(f"{spec.name}_sync")
    if spec.static_partitions is not None:
        ordered = list(spec.static_partitions)
    else:
        register_partitions(instance, spec.partitions_name, selected)
        ordered = instance.get_dynamic_partitions(spec.partitions_name)
    for start, end in contiguous_ranges(ordered, selected):
        run = job.execute_in_process(instance=instance, tags=range_tags(start, end),
                                     run_config=QUIET_LOGS, raise_on_error=False)
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
    name_width = max([len("board"), len("total"), *map(len, result["boards"])])
    header = f"{'board':<{name_width}}  " + "  ".join(f"{c:>9}" for c in COUNTS) + f"  {'dupes':>9}  status"
    print(header)
    print("-" * len(header))
    for board, row in result["boards"].items():
        status = "stale, skipped" if row.get("skipped") else row["status"]
        print(f"{board:<{name_width}}  " + "  ".join(f"{row[c]:>9}" for c in COUNTS)
              + f"  {row['cross_source_duplicates']:>9}  {status}")
    print("-" * len(header))
    print(f"{'total':<{name_width}}  " + "  ".join(f"{result['totals'][c]:>9}" for c in COUNTS)
          + f"  {result['totals']['cross_source_duplicates']:>9}")
    print(f"\n{len(result['boards'])} board(s) in {result['duration_seconds']:.2f}s")
    for board, row in result["boards"].items():
        if row["error"] or row.get("skipped"):
            print(f"  {board}: {row['error'] or row['skipped']}")
    for name, reason in result["refused"].items():
        print(f"  refused {reason}")


SEED_BOARDS = settings.PROJECT_ROOT / "data" / "seed_boards.json"
REGISTRY_SOURCES = ("greenhouse", "lever")


def _resources():
    """The configured resources (store, http, ...) the board commands work with."""
    import dagster as dg

    from jobsync_pipeline.defs.resources import build_resources

    return dg.build_resources(build_resources())


def resolve_targets(words: Sequence[str]) -> list[tuple[str, str]]:
    """`SOURCE TOKEN...` or careers URLs → (source, token) pairs; ValueError names what is not."""
    from jobsync_pipeline.sources.board_urls import resolve_board_url

    if words and words[0] in REGISTRY_SOURCES:
        if len(words) < 2:
            raise ValueError(f"name at least one {words[0]} board after the source")
        return [(words[0], token) for token in words[1:]]
    return [resolve_board_url(word) for word in words]


def boards_add(words: Sequence[str], *, check: bool = True, origin: str = "cli") -> list[dict]:
    """Register boards (checking that each answers first) as registry boards and partitions."""
    from jobsync_pipeline.defs.sources import SOURCES_BY_NAME
    from jobsync_pipeline.sources.bucket import board_name_problem

    import dagster as dg

    outcomes = []
    instance = dg.DagsterInstance.get()
    with _resources() as resources:
        store = resources.store.store()
        for source, token in resolve_targets(words):
            spec = SOURCES_BY_NAME[source]
            problem = board_name_problem(token)
            if problem:
                outcomes.append({"source": source, "board": token, "added": False,
                                 "error": f"board name {token!r} {problem}"})
                continue
            if check:
                connector = spec.connector(resources)
                try:
                    parsed = connector.parse(connector.fetch(token))
                except Exception as exc:  # noqa: BLE001 - reported per board, the others go on
                    outcomes.append({"source": source, "board": token, "added": False, "error": str(exc)})
                    continue
                finally:
                    connector.close()
                jobs = parsed.found
            else:
                jobs = None
            store.boards.add(source, [token], origin)
            register_partitions(instance, spec.partitions_name, [token])
            outcomes.append({"source": source, "board": token, "added": True, "jobs": jobs, "error": None})
    return outcomes


def boards_remove(source: str, tokens: Sequence[str]) -> list[dict]:
    with _resources() as resources:
        store = resources.store.store()
        return [{"source": source, "board": token,
                 "expired": store.boards.retire(source, token, "removed by an operator (jobsync boards remove)")}
                for token in tokens]


def boards_list(source: str | None) -> list[dict]:
    with _resources() as resources:
        return [{"source": b.source, "board": b.board, "status": b.status, "origin": b.origin,
                 "last_synced_at": b.last_synced_at.isoformat() if b.last_synced_at else None,
                 "last_sync_status": b.last_sync_status, "counts": b.last_sync_counts,
                 "reason": b.status_reason or b.last_sync_error}
                for b in resources.store.store().boards.describe(source)]


def boards_seed(path: Path) -> list[dict]:
    """The shipped seed list: `{source: [token, ...]}`, added without probing (a 404 retires later)."""
    seeds = json.loads(path.read_text())
    return [outcome for source, tokens in seeds.items() if tokens
            for outcome in boards_add([source, *tokens], check=False, origin="seed")]


def discover_add(names: Sequence[str]) -> int:
    with _resources() as resources:
        return resources.store.store().boards.add_candidates(names, "cli")


def print_boards(rows: list[dict]) -> None:
    print(f"{'source':<11} {'board':<28} {'status':<9} {'last sync':<26} {'result':<8} "
          f"{'found':>6} {'new':>5} {'expired':>7}  reason")
    for r in rows:
        counts = r["counts"] or {}
        print(f"{r['source']:<11} {r['board']:<28} {r['status']:<9} {r['last_synced_at'] or '-':<26} "
              f"{r['last_sync_status'] or '-':<8} {counts.get('found', ''):>6} {counts.get('new', ''):>5} "
              f"{counts.get('expired', ''):>7}  {r['reason'] or ''}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobsync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="run a source's lane for all its boards or the named ones")
    sync_parser.add_argument("source", help="the source to sync, e.g. company_files")
    sync_parser.add_argument("--board", action="append", metavar="NAME", help="only this board (repeatable)")
    sync_parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    boards_parser = commands.add_parser("boards", help="the Greenhouse and Lever boards jobsync syncs")
    boards_commands = boards_parser.add_subparsers(dest="boards_command", required=True)
    add_parser = boards_commands.add_parser(
        "add", help="add boards: `greenhouse stripe ...` or careers URLs (checked before they are added)")
    add_parser.add_argument("targets", nargs="+", metavar="SOURCE TOKEN... | URL...")
    add_parser.add_argument("--no-check", action="store_true", help="add without asking the board first")
    remove_parser = boards_commands.add_parser("remove", help="retire boards; their jobs expire once")
    remove_parser.add_argument("source", choices=REGISTRY_SOURCES)
    remove_parser.add_argument("tokens", nargs="+", metavar="TOKEN")
    list_parser = boards_commands.add_parser("list", help="boards with status, last sync and counts")
    list_parser.add_argument("source", nargs="?")
    seed_parser = boards_commands.add_parser("seed", help="add the shipped seed list of boards")
    seed_parser.add_argument("file", nargs="?", type=Path, default=SEED_BOARDS)
    for sub in (add_parser, remove_parser, list_parser, seed_parser):
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
    discover_parser = commands.add_parser("discover", help="companies for discovery to probe for boards")
    discover_commands = discover_parser.add_subparsers(dest="discover_command", required=True)
    candidates_parser = discover_commands.add_parser("add", help="add candidate company names")
    candidates_parser.add_argument("names", nargs="+", metavar="COMPANY")
    args = parser.parse_args(argv)

    settings.apply_defaults(dagster_home=True)
    import dagster as dg

    # The single-run backfill policy is beta in dagster 1.13; say so once in the docs, not on every call.
    warnings.filterwarnings("ignore", message="Parameter .backfill_policy.", category=dg.BetaWarning)
    from jobsync_pipeline.defs.sources import SOURCES_BY_NAME

    if args.command == "boards":
        return run_boards_command(parser, args)
    if args.command == "discover":
        print(f"{discover_add(args.names)} new candidate(s); discovery probes them on its schedule")
        return 0
    if args.source not in SOURCES_BY_NAME:
        parser.error(f"unknown source {args.source!r}; known: {', '.join(SOURCES_BY_NAME)}")
    result = sync(args.source, args.board)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        print()
    else:
        print_table(result)
    return 0 if all(b["status"] == "success" for b in result["boards"].values()) else 1


def run_boards_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.boards_command == "list":
        rows = boards_list(args.source)
        json.dump(rows, sys.stdout) if args.json else print_boards(rows)
        return 0
    if args.boards_command == "remove":
        rows = boards_remove(args.source, args.tokens)
        if not args.json:
            for r in rows:
                print(f"retired {r['source']}/{r['board']}: {r['expired']} job(s) expired")
    else:
        try:
            rows = (boards_seed(args.file) if args.boards_command == "seed"
                    else boards_add(args.targets, check=not args.no_check))
        except ValueError as exc:
            parser.error(str(exc))
        if not args.json:
            for r in rows:
                detail = f"{r['jobs']} job(s) now" if r.get("jobs") is not None else "not checked"
                print(f"added {r['source']}/{r['board']} ({detail})" if r["added"]
                      else f"not added {r['source']}/{r['board']}: {r['error']}")
    if args.json:
        json.dump(rows, sys.stdout)
        print()
    return 0 if all(r.get("added", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
