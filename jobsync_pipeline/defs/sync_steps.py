"""A sync's steps as the lane runs them: written to `sync_steps` (what `jobsync sync --progress` and
`jobsync syncs show` read) and told in the run's log as one structured line per change."""
import json
import time
from collections.abc import Mapping

import dagster as dg

from jobsync_pipeline.core.steps import StepStatus, SyncStep, run_step
from jobsync_pipeline.sources.base import error_text
from jobsync_pipeline.store.steps import StepStore

# Progress is written at most this often per step: a crawl of a thousand pages must not write a
# thousand rows, and a reader polling twice a second sees it move.
PROGRESS_INTERVAL_SECONDS = 0.5


class StepLog:
    """The `StepReporter` of one board's sync in a lane step (see `core.steps`)."""

    def __init__(self, steps: StepStore, sync_id: int, where: str, log: dg.DagsterLogManager,
                 interval: float = PROGRESS_INTERVAL_SECONDS):
        self.steps, self.sync_id, self.where, self.log = steps, sync_id, where, log
        self.interval = interval
        self._last_written: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def start(self, step: str, total: int | None = None) -> None:
        self._started[step] = time.monotonic()
        self.steps.update(self.sync_id, step, status=StepStatus.RUNNING, done=0 if total is not None else None,
                          total=total, started=True)
        self._say(step, StepStatus.RUNNING, progress=f"0/{total}" if total is not None else None)

    def advance(self, step: str, done: int, total: int | None = None,
                counts: Mapping[str, int] | None = None) -> None:
        now = time.monotonic()
        if now - self._last_written.get(step, 0.0) < self.interval and (total is None or done < total):
            return
        self._last_written[step] = now
        self.steps.update(self.sync_id, step, done=done, total=total, counts=counts)
        self._say(step, StepStatus.RUNNING, progress=f"{done}/{total}" if total is not None else str(done),
                  counts=counts)

    def finish(self, step: str, counts: Mapping[str, int] | None = None) -> None:
        self.steps.update(self.sync_id, step, status=StepStatus.COMPLETED, counts=counts, finished=True)
        self._say(step, StepStatus.COMPLETED, counts=counts, seconds=self._seconds(step))

    def fail(self, step: str, error: str, counts: Mapping[str, int] | None = None) -> None:
        if step not in self._started:  # failed before it began: it still has a start, for its duration
            self.steps.update(self.sync_id, step, started=True)
        self.steps.update(self.sync_id, step, status=StepStatus.FAILED, error=error, counts=counts, finished=True)
        self._say(step, StepStatus.FAILED, counts=counts, seconds=self._seconds(step), error=error)

    def skip(self, step: str, reason: str) -> None:
        self.steps.update(self.sync_id, step, status=StepStatus.SKIPPED, error=reason, finished=True)
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
            self.log.warning(line)
        elif status == StepStatus.RUNNING and "progress" in shown and not shown["progress"].startswith("0"):
            self.log.debug(line)  # progress lines are many; the UI's default level shows starts and ends
        else:
            self.log.info(line)


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
