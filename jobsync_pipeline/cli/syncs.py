"""`jobsync syncs list|show` and the live display of `jobsync sync --progress`: each sync's steps as
`sync_steps` records them (status, progress, counts, errors, times)."""
from __future__ import annotations

import argparse
import sys
import threading
from contextlib import AbstractContextManager, nullcontext

from jobsync_pipeline.cli.runtime import CommandError, ready_store_url
from jobsync_pipeline.cli.searches import _print
from jobsync_pipeline.core.steps import SyncStep

# How often the live display reads the store: the lane writes a step's progress at most twice a second.
POLL_SECONDS = 0.5


def add_commands(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    syncs = commands.add_parser("syncs", help="past and running syncs, step by step")
    sync_commands = syncs.add_subparsers(dest="syncs_command", required=True)
    listing = sync_commands.add_parser("list", help="syncs, newest first")
    listing.add_argument("--source", metavar="S")
    listing.add_argument("--board", metavar="B")
    listing.add_argument("--limit", type=int, default=50)
    show = sync_commands.add_parser("show", help="one sync and its steps")
    show.add_argument("sync_id", type=int, metavar="SYNC_ID")
    return [listing, show]


def run(args: argparse.Namespace) -> int:
    from jobsync_pipeline.store.repo import Store

    store = Store(ready_store_url())
    if args.syncs_command == "list":
        if args.limit < 1:
            raise CommandError(f"--limit must be at least 1, not {args.limit}")
        rows = [sync_json(s) for s in store.sync_history(args.source, args.board, args.limit)]
        _print(args, rows, "\n".join(_sync_line(r) for r in rows) or "no syncs")
        return 0
    sync = store.find_sync(args.sync_id)
    if sync is None:
        raise CommandError(f"no sync {args.sync_id}; `jobsync syncs list` shows the recent ones")
    steps = store.steps.steps(sync.id)
    row = {**sync_json(sync), "steps": [step_json(s) for s in steps]}
    text = _sync_line(row) + ("\n" + "\n".join(step_line(s) for s in steps) if steps else
                              "\n  (step details not kept: only the latest syncs of a board keep theirs)")
    _print(args, row, text)
    return 0


def sync_json(sync) -> dict:
    return {"id": sync.id, "source": sync.source, "board": sync.board, "run_id": sync.run_id, "status": sync.status,
            "counts": sync.counts, "error": sync.error,
            "started_at": sync.started_at.isoformat() if sync.started_at else None,
            "finished_at": sync.finished_at.isoformat() if sync.finished_at else None,
            "duration_seconds": sync.duration_seconds}


def step_json(step: SyncStep) -> dict:
    return {"name": step.name, "status": step.status, "done": step.done, "total": step.total, "counts": step.counts,
            "error": step.error, "started_at": step.started_at.isoformat() if step.started_at else None,
            "finished_at": step.finished_at.isoformat() if step.finished_at else None, "seconds": step.seconds}


def _sync_line(row: dict) -> str:
    counts = row["counts"]
    numbers = ", ".join(f"{counts.get(c, 0)} {c}" for c in ("found", "new", "changed", "expired", "bad"))
    took = f" in {row['duration_seconds']:.1f}s" if row["duration_seconds"] is not None else ""
    error = f": {row['error']}" if row["error"] else ""
    return (f"sync {row['id']} {row['source']}/{row['board']} {row['started_at'][:19]} {row['status']}{took} "
            f"({numbers}){error}")


def step_line(step: SyncStep) -> str:
    progress = step.progress_text()
    counts = ", ".join(f"{v} {k}" for k, v in step.counts.items())
    took = f"{step.seconds:.2f}s" if step.seconds is not None else ""
    detail = "  ".join(part for part in (progress, counts, took) if part)
    error = f"  — {step.error}" if step.error else ""
    return f"  {_MARKS.get(step.status, '?')} {step.name:<20} {step.status:<9} {detail}{error}"


_MARKS = {"pending": "·", "running": "▸", "completed": "✓", "failed": "✗", "skipped": "-"}


class LiveProgress:
    """Draws the steps of a run's syncs while it runs, from the store (the lane writes them there), on a
    terminal redrawn in place; elsewhere (a pipe, a log) each step change is one line."""

    def __init__(self, store, run_id: str, out=None, interval: float = POLL_SECONDS):
        self.store, self.run_id, self.interval = store, run_id, interval
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobsync-progress", daemon=True)
        self._drawn_lines = 0
        self._said: dict[tuple[int, str], tuple] = {}

    def __enter__(self) -> LiveProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.draw()  # the final state, every step ended

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.draw()
            except Exception:  # noqa: BLE001 - a display that cannot read the store must not stop the sync
                pass

    def draw(self) -> None:
        syncs = self.store.syncs_for_run(self.run_id)
        steps = self.store.steps.for_syncs([s.id for s in syncs])
        if self.tty:
            lines = []
            for sync in syncs:
                lines.append(f"{sync.source}/{sync.board} (sync {sync.id}): {sync.status}")
                lines.extend(step_line(step) for step in steps.get(sync.id, []))
            if self._drawn_lines:
                self.out.write(f"\x1b[{self._drawn_lines}F\x1b[J")  # back to the block's start, clear below
            self.out.write("\n".join(lines) + ("\n" if lines else ""))
            self._drawn_lines = len(lines)
        else:
            for sync in syncs:
                for step in steps.get(sync.id, []):
                    state = (step.status, step.done, step.total)
                    if step.status != "pending" and self._said.get((sync.id, step.name)) != state:
                        self._said[(sync.id, step.name)] = state
                        self.out.write(f"{sync.source}/{sync.board}{step_line(step)}\n")
        self.out.flush()


def with_progress(store, run_id: str, enabled: bool) -> AbstractContextManager:
    """A context showing the run's progress when `enabled`, else one doing nothing."""
    return LiveProgress(store, run_id) if enabled else nullcontext()
