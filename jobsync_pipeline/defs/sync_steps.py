"""A sync's steps as the lane runs them: written to `sync_steps` (what `jobsync sync --progress` and
`jobsync syncs show` read) and told in the run's log as one structured line per change, both in batches."""
import json
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import dagster as dg

from jobsync_pipeline.core.steps import StepStatus, SyncStep, run_step
from jobsync_pipeline.sources.base import error_text
from jobsync_pipeline.store.steps import StepStore
from jobsync_pipeline.store.time import utcnow

# Step changes are written, and told in the run's log, at most this often: a crawl of a thousand
# pages must not write a thousand rows, a backfill of thousands of boards must not pay a transaction
# and a Dagster event per change (both cost milliseconds each), and a reader polling twice a second
# still sees a step move.
PROGRESS_INTERVAL_SECONDS = 0.5


class StepJournal:
    """The step changes of one lane step over the run's boards. It holds each sync's steps as they stand
    (read once for all boards), and writes the changed ones in one transaction (`StepStore.write`) and
    their log lines as one message per level, when `PROGRESS_INTERVAL_SECONDS` have passed since the
    last flush, and at `flush()`: before a sync is ended (its ending reads its steps) and at the end."""

    def __init__(self, steps: StepStore, log: dg.DagsterLogManager, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.store, self.log, self.interval = steps, log, interval
        self._steps: dict[int, dict[str, SyncStep]] = {}
        self._changed: dict[tuple[int, str], SyncStep] = {}
        self._added: dict[tuple[int, str], SyncStep] = {}
        self._lines: dict[int, list[str]] = {}
        self._flushed = time.monotonic()
        self._held = False

    @contextmanager
    def held(self):
        """No flush while inside: a board's apply holds SQLite's one writer lock, which the flush's
        transaction would wait for."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    def load(self, sync_ids: Iterable[int]) -> None:
        """Read these syncs' steps as the store has them (after an ending wrote them, too)."""
        for sync_id, steps in self.store.for_syncs(list(sync_ids)).items():
            self._steps[sync_id] = {step.name: step for step in steps}

    def steps(self, sync_id: int) -> list[SyncStep]:
        return sorted(self._steps.get(sync_id, {}).values(), key=lambda step: step.position)

    def change(self, sync_id: int, name: str, *, status: str | None = None, done: int | None = None,
               total: int | None = None, counts: Mapping[str, int] | None = None, error: str | None = None,
               started: bool = False, finished: bool = False) -> None:
        """Move one step on (as `StepStore.update` would); `counts` are merged into what it counted so far."""
        steps = self._steps.setdefault(sync_id, {})
        step = steps.get(name)
        if step is None:  # a step the plan lacks (a connector's own) is added at the end
            step = steps[name] = SyncStep(sync_id=sync_id, position=max((s.position for s in steps.values()),
                                                                       default=-1) + 1, name=name)
            self._added[(sync_id, name)] = step
        step.change(at=utcnow(), status=status, done=done, total=total, counts=counts, error=error, started=started,
                    finished=finished)
        if (sync_id, name) not in self._added:
            self._changed[(sync_id, name)] = step

    def say(self, level: int, line: str) -> None:
        self._lines.setdefault(level, []).append(line)
        if not self._held and time.monotonic() - self._flushed >= self.interval:
            self.flush()

    def flush(self) -> None:
        self.store.write(list(self._changed.values()), list(self._added.values()))
        self._changed.clear()
        self._added.clear()
        for level, lines in sorted(self._lines.items()):
            self.log.log(level, "\n".join(lines))
        self._lines.clear()
        self._flushed = time.monotonic()


class StepLog:
    """The `StepReporter` of one board's sync in a lane step (see `core.steps`), through the step's journal."""

    def __init__(self, journal: StepJournal, sync_id: int, where: str, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.journal, self.sync_id, self.where = journal, sync_id, where
        self.interval = interval
        self._last_written: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def start(self, step: str, total: int | None = None) -> None:
        self._started[step] = time.monotonic()
        self.journal.change(self.sync_id, step, status=StepStatus.RUNNING, done=0 if total is not None else None,
                            total=total, started=True)
        self._say(step, StepStatus.RUNNING, progress=f"0/{total}" if total is not None else None)

    def advance(self, step: str, done: int, total: int | None = None,
                counts: Mapping[str, int] | None = None) -> None:
        now = time.monotonic()
        if now - self._last_written.get(step, 0.0) < self.interval and (total is None or done < total):
            return
        self._last_written[step] = now
        self.journal.change(self.sync_id, step, done=done, total=total, counts=counts)
        self._say(step, StepStatus.RUNNING, progress=f"{done}/{total}" if total is not None else str(done),
                  counts=counts)

    def finish(self, step: str, counts: Mapping[str, int] | None = None) -> None:
        self.journal.change(self.sync_id, step, status=StepStatus.COMPLETED, counts=counts, finished=True)
        self._say(step, StepStatus.COMPLETED, counts=counts, seconds=self._seconds(step))

    def fail(self, step: str, error: str, counts: Mapping[str, int] | None = None) -> None:
        # failed before it began: it still has a start, for its duration
        self.journal.change(self.sync_id, step, status=StepStatus.FAILED, error=error, counts=counts,
                            started=step not in self._started, finished=True)
        self._say(step, StepStatus.FAILED, counts=counts, seconds=self._seconds(step), error=error)

    def skip(self, step: str, reason: str) -> None:
        self.journal.change(self.sync_id, step, status=StepStatus.SKIPPED, error=reason, finished=True)
        self._say(step, StepStatus.SKIPPED, reason=reason)

    def run(self, step: str, total: int | None = None):
        """A step as a context (`core.steps.run_step`): its counts go in the Counter it yields."""
        return run_step(self, step, total, describe=error_text)

    def _seconds(self, step: str) -> float | None:
        started = self._started.get(step)
        return round(time.monotonic() - started, 3) if started is not None else None

    def _say(self, step: str, status: str, **fields) -> None:
        shown = {k: v for k, v in fields.items() if v not in (None, {}, "")}
        line = f"{self.where} sync {self.sync_id} step {step}: {status}" + (
            f" {json.dumps(shown, default=str)}" if shown else "")
        if status == StepStatus.FAILED:
            level = logging.WARNING
        elif status == StepStatus.RUNNING and "progress" in shown and not shown["progress"].startswith("0"):
            level = logging.DEBUG  # progress lines are many; the UI's default level shows starts and ends
        else:
            level = logging.INFO
        self.journal.say(level, line)


def steps_metadata(steps: list[SyncStep], names: tuple[str, ...]) -> dict[str, dg.MetadataValue]:
    """A stage's steps of one board, as metadata on its partition: a table to read, numbers to plot."""
    shown = [s for s in steps if s.name in names]
    rows = [f"| {s.name} | {s.status} | {s.progress_text()} | "
            f"{', '.join(f'{k} {v}' for k, v in s.counts.items())} | "
            f"{'' if s.seconds is None else s.seconds} | {(s.error or '').replace('|', '/')[:200]} |" for s in shown]
    table = "| step | status | progress | counts | seconds | error |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    metadata: dict[str, dg.MetadataValue] = {"steps": dg.MetadataValue.md(table)}
    for s in shown:
        if s.seconds is not None:
            metadata[f"step_{s.name}_seconds"] = dg.MetadataValue.float(s.seconds)
    return metadata
