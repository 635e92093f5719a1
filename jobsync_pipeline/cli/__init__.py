"""`jobsync`: sync sources through Dagster, keep the registry of boards, upgrade the store.

An error a user can cause (a bad database URL, an unreachable database, a missing bucket, an unknown
board, an out-of-date schema) is one line on stderr and exit status 1 (2 for usage), or with --json
an object with "error"; --debug shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from jobsync_pipeline.cli.runtime import UsageError, explain


def build_parser() -> argparse.ArgumentParser:
    from jobsync_pipeline.settings import SEED_BOARDS

    parser = argparse.ArgumentParser(prog="jobsync", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="run a source's lane for all its boards or the named ones")
    sync.add_argument("source", help="the source to sync, e.g. company_files")
    sync.add_argument("--board", action="append", metavar="NAME", help="only this board (repeatable)")
    sync.add_argument("--pool-wait", type=float, metavar="SECONDS",
                      help="wait at most this long for the API host's pool slot (default: JOBSYNC_POOL_WAIT_SECONDS, "
                           "else 300)")
    sync.add_argument("--progress", action="store_true",
                      help="show each board's steps live as they run (on stderr)")

    boards = commands.add_parser("boards", help="the registry of boards each source syncs")
    board_commands = boards.add_subparsers(dest="boards_command", required=True)
    add = board_commands.add_parser(
        "add", help="add boards: `greenhouse stripe ...`, `company_files acme` or careers URLs (each asked "
                    "before it is added; a removed board comes back)")
    add.add_argument("targets", nargs="+", metavar="SOURCE TOKEN... | URL...")
    add.add_argument("--no-check", action="store_true", help="add without asking the board first")
    add.add_argument("--name", metavar="COMPANY",
                     help="the company's name as people write it (one board only); Lever names none, and "
                          "cross-source dedupe matches companies by name")
    remove = board_commands.add_parser("remove", help="retire boards: their jobs expire once, their partitions go")
    remove.add_argument("source", choices=("company_files", "greenhouse", "lever"))
    remove.add_argument("tokens", nargs="+", metavar="NAME")
    listing = board_commands.add_parser("list", help="boards with status, last sync and counts")
    listing.add_argument("source", nargs="?")
    listing.add_argument("--all", action="store_true", help="retired boards too")
    seed = board_commands.add_parser("seed", help="add the shipped seed list of boards (not asked first)")
    seed.add_argument("file", nargs="?", type=Path, default=SEED_BOARDS)

    discover = commands.add_parser("discover", help="companies for discovery to probe for boards")
    discover_commands = discover.add_subparsers(dest="discover_command", required=True)
    candidates = discover_commands.add_parser("add", help="add candidate company names")
    candidates.add_argument("names", nargs="+", metavar="COMPANY")

    db = commands.add_parser("db", help="the store's schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="bring the store's schema to this jobsync's (idempotent)")

    from jobsync_pipeline.cli.searches import add_commands as add_search_commands

    search_leaves = add_search_commands(commands)
    from jobsync_pipeline.cli.notifications import add_commands as add_alert_commands

    search_leaves += add_alert_commands(commands)
    from jobsync_pipeline.cli.sites import add_commands as add_site_commands
    from jobsync_pipeline.cli.syncs import add_commands as add_sync_commands

    from jobsync_pipeline.cli.status import add_command as add_status_command

    search_leaves += add_site_commands(commands) + add_sync_commands(commands) + [add_status_command(commands)]
    from jobsync_pipeline.cli.api import add_command as add_api_command

    add_api_command(commands)
    for sub in (sync, add, remove, listing, seed, candidates, db_commands.choices["upgrade"], *search_leaves):
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # Dagster's in-process run ends on an interrupt, not on SIGTERM
    try:
        return run(args)
    except KeyboardInterrupt:
        print("jobsync: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends as one line unless --debug asks for more
        if args.debug:
            raise
        message = explain(exc) or (f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        if getattr(args, "json", False):
            print(json.dumps({"error": message}))
        else:
            print(f"jobsync: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.command == "sync":
        return run_sync(args)
    if args.command == "api":
        from jobsync_pipeline.cli import api

        return api.run(args)
    if args.command in ("users", "searches", "search"):
        from jobsync_pipeline.cli import searches

        return searches.run(args)
    if args.command in ("channels", "alerts", "notifications", "followups"):
        from jobsync_pipeline.cli import notifications

        return notifications.run(args)
    if args.command == "sites":
        from jobsync_pipeline.cli import sites

        return sites.run(args)
    if args.command == "status":
        from jobsync_pipeline.cli import status

        return status.run(args)
    if args.command == "syncs":
        from jobsync_pipeline.cli import syncs

        return syncs.run(args)
    if args.command == "boards":
        return run_boards(args)
    if args.command == "discover":
        from jobsync_pipeline.cli.boards import discover_add

        added = discover_add(args.names)
        print(json.dumps({"added": added}) if args.json else
              f"{added} new candidate(s); discovery probes them on its schedule")
        return 0
    from jobsync_pipeline.cli.db import upgrade_store

    done = upgrade_store()
    if args.json:
        print(json.dumps(done))
    elif done["from"] == done["to"]:
        print(f"store {done['store']}: schema {done['to']}, already current")
    else:
        print(f"store {done['store']}: schema {done['from'] or 'none'} → {done['to']}")
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from jobsync_pipeline.cli.sync import print_table, sync
    from jobsync_pipeline.defs.source_specs import SOURCES_BY_NAME

    if args.source not in SOURCES_BY_NAME:
        raise UsageError(f"unknown source {args.source!r}; known: {', '.join(SOURCES_BY_NAME)}")
    # in text, named boards that are none of the source's are the whole story: one line, nothing run
    result = sync(args.source, args.board, refuse_unknown=not args.json, pool_wait=args.pool_wait,
                  progress=args.progress)
    ok = all(b["status"] == "success" for b in result["boards"].values())
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)
    return 0 if ok else 1


def run_boards(args: argparse.Namespace) -> int:
    from jobsync_pipeline.cli import boards

    if args.boards_command == "list":
        rows = boards.describe(args.source, retired=args.all)
        print(json.dumps(rows)) if args.json else boards.print_list(rows)
        return 0
    if args.boards_command == "remove":
        rows = boards.remove(args.source, args.tokens)
        if not args.json:
            for r in rows:
                print(f"removed {r['source']}/{r['board']}: {r['expired']} job(s) expired, partition deleted")
    else:
        rows = (boards.seed(args.file) if args.boards_command == "seed"
                else boards.add(args.targets, check=not args.no_check, display_name=args.name))
        if not args.json:
            for r in rows:
                detail = f"{r['jobs']} job(s) now" if r.get("jobs") is not None else "not checked"
                print(f"added {r['source']}/{r['board']} ({detail})" if r["added"]
                      else f"not added {r['source']}/{r['board']}: {r['error']}")
    if args.json:
        print(json.dumps(rows))
    return 0 if all(r.get("added", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
