"""`jobsync boards add|remove|list|seed` and `jobsync discover add`: the one registry of boards, kept in
step with the lanes' partitions."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jobsync_pipeline.cli.runtime import CommandError, UsageError, instance, ready_store_url, resources
from jobsync_pipeline.cli.sync import register_partitions

REGISTRY_SOURCES = ("greenhouse", "lever")  # boards added by name or careers URL, each asked first
REMOVABLE_SOURCES = ("company_files", *REGISTRY_SOURCES)  # every source whose boards are dynamic partitions


def resolve_targets(words: Sequence[str]) -> list[tuple[str, str]]:
    """`SOURCE TOKEN...` or careers URLs → (source, token) pairs; UsageError names what is not."""
    from jobsync_pipeline.sources.board_urls import resolve_board_url

    if words and words[0] in REMOVABLE_SOURCES:
        if len(words) < 2:
            raise UsageError(f"name at least one {words[0]} board after the source")
        return [(words[0], token) for token in words[1:]]
    try:
        return [resolve_board_url(word) for word in words]
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def add(words: Sequence[str], *, check: bool = True, origin: str = "cli", display_name: str | None = None) -> list[dict]:
    """Register boards (checking that each answers first) as registry boards and partitions;
    `display_name` is the company's name for a single board."""
    from jobsync_pipeline.defs.source_specs import SOURCES_BY_NAME
    from jobsync_pipeline.sources.bucket import board_name_problem

    targets = resolve_targets(words)
    if display_name is not None and len(targets) != 1:
        raise UsageError("--name names the company of one board; add the boards one at a time")
    ready_store_url()
    outcomes = []
    dagster = instance()
    with resources() as res:
        store = res.store.store()
        for source, token in targets:
            spec = SOURCES_BY_NAME[source]
            problem = board_name_problem(token)
            if problem:
                outcomes.append({"source": source, "board": token, "added": False,
                                 "error": f"board name {token!r} {problem}"})
                continue
            jobs = None
            if check:
                connector = spec.connector(res)
                try:
                    jobs = connector.parse(connector.fetch(token)).found
                except Exception as exc:  # noqa: BLE001 - reported per board, the others go on
                    outcomes.append({"source": source, "board": token, "added": False, "error": str(exc)})
                    continue
                finally:
                    connector.close()
            store.boards.add(source, [token], origin,
                             display_names={token: display_name} if display_name else None)
            register_partitions(dagster, spec.partitions_name, [token])
            outcomes.append({"source": source, "board": token, "added": True, "jobs": jobs, "error": None})
    return outcomes


def remove(source: str, tokens: Sequence[str]) -> list[dict]:
    """Retire boards: their jobs expire once (`board_removed`) and their partitions go."""
    from jobsync_pipeline.core.status import BoardStatus
    from jobsync_pipeline.defs.source_specs import SOURCES_BY_NAME

    spec = SOURCES_BY_NAME[source]
    ready_store_url()
    dagster = instance()
    rows = []
    with resources() as res:
        registry = res.store.store().boards
        for token in tokens:
            status = registry.status(source, token)
            if status is None:
                raise CommandError(f"{source} has no board {token!r}; `jobsync boards list {source}` shows its boards")
            expired = 0 if status == BoardStatus.RETIRED else registry.remove(
                source, token, "removed by an operator (jobsync boards remove)")
            if dagster.has_dynamic_partition(spec.partitions_name, token):
                dagster.delete_dynamic_partition(spec.partitions_name, token)
            rows.append({"source": source, "board": token, "expired": expired})
    return rows


def describe(source: str | None, *, retired: bool) -> list[dict]:
    ready_store_url()
    with resources() as res:
        return [{"source": b.source, "board": b.board, "name": b.display_name, "status": b.status, "origin": b.origin,
                 "last_synced_at": _second(b.last_synced_at), "last_sync_status": b.last_sync_status,
                 "counts": b.last_sync_counts, "reason": b.status_reason or b.last_sync_error}
                for b in res.store.store().boards.describe(source, retired=retired)]


def _second(at) -> str | None:
    return at.replace(microsecond=0).isoformat() if at else None


def seed(path: Path) -> list[dict]:
    """The shipped seed list: `{source: [token, ...]}`, added without probing (a 404 retires later)."""
    try:
        seeds = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the seed list {path}: {exc}") from exc
    return [outcome for source, tokens in seeds.items() if tokens
            for outcome in add([source, *tokens], check=False, origin="seed")]


def discover_add(names: Sequence[str]) -> int:
    ready_store_url()
    with resources() as res:
        return res.store.store().boards.add_candidates(names, "cli")


def print_list(rows: list[dict]) -> None:
    columns = [("source", lambda r: r["source"]), ("board", lambda r: r["board"]),
               ("status", lambda r: r["status"]), ("last sync (UTC)", lambda r: (r["last_synced_at"] or "-")[:19]),
               ("result", lambda r: r["last_sync_status"] or "-"),
               ("found", lambda r: (r["counts"] or {}).get("found", "")),
               ("new", lambda r: (r["counts"] or {}).get("new", "")),
               ("expired", lambda r: (r["counts"] or {}).get("expired", "")),
               ("reason", lambda r: r["reason"] or "")]
    table = [[name for name, _ in columns]] + [[str(value(r)) for _, value in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    numeric = {"found", "new", "expired"}
    for line in table:
        print("  ".join(cell.rjust(w) if name in numeric else cell.ljust(w)
                        for (name, _), cell, w in zip(columns, line, widths)).rstrip())
