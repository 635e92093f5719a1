"""A sync's steps: their names per kind of source, their statuses, and how a step reports progress.

Every sync of every board records its steps (`sync_steps`): what ran, how far it got, what it counted
and why it failed. The plan of a sync is all its steps, `pending`, written when it starts, so an
operator watching sees what is still to come; each step then moves `running → completed | failed |
skipped` (a step after a failed one stays `pending` until the sync ends, then is `skipped`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


ENDED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})


@dataclass(frozen=True)
class StepPlan:
    """The steps of a source's sync, by the lane asset that runs them."""

    fetch: tuple[str, ...]  # raw_snapshot's; beyond API fetches', the connector reports them itself
    parse: str  # postings'
    apply: str  # job_diff's: the diff applied in one transaction
    check_duplicates: str | None = None  # job_diff's, before the apply: what the crawl found twice or knew
    cleanup: str = "cleanup"  # job_diff's last: the step history kept within its limit

    @property
    def connector_reports(self) -> bool:
        return self.fetch != API_FETCH

    def all(self) -> tuple[str, ...]:
        return (*self.fetch, self.parse, *([self.check_duplicates] if self.check_duplicates else []), self.apply,
                self.cleanup)

    def by_stage(self, stage: str) -> tuple[str, ...]:
        steps = self.all()
        first = {"raw_snapshot": 0, "postings": len(self.fetch), "job_diff": len(self.fetch) + 1}[stage]
        last = {"raw_snapshot": len(self.fetch), "postings": len(self.fetch) + 1, "job_diff": len(steps)}[stage]
        return steps[first:last]


API_FETCH = ("fetch", "archive")
# What a one-request (or one-listing) source really does: the fetch and its archive, the parse, and the
# diff applied in one transaction.
API_STEPS = StepPlan(fetch=API_FETCH, parse="parse", apply="apply")
# A site crawl: the names, in order. `start_browser` is skipped when the site is crawled
# over plain HTTP.
CRAWL_STEPS = StepPlan(fetch=("initialize", "check_availability", "start_browser", "generate_urls", "crawl"),
                       parse="process", check_duplicates="check_duplicates", apply="save")


@dataclass
class SyncStep:
    """One step of one sync as `sync_steps` records it."""

    sync_id: int
    position: int
    name: str
    status: str = StepStatus.PENDING
    done: int | None = None
    total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def change(self, *, at: datetime, status: str | None = None, done: int | None = None, total: int | None = None,
               counts: Mapping[str, int] | None = None, error: str | None = None, started: bool = False,
               finished: bool = False) -> None:
        """Move the step on at `at`; `counts` are merged into what it counted so far."""
        if status is not None:
            self.status = status
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if counts:
            self.counts = {**self.counts, **{k: int(v) for k, v in counts.items()}}
        if error is not None:
            self.error = error[:4000]
        if started:
            self.started_at = at
        if finished:
            self.finished_at = at

    def progress_text(self) -> str:
        if self.done is None:
            return ""
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)


class StepReporter(Protocol):
    """What a connector that does several steps of its own tells the lane as it goes (`sources` know no
    store and no Dagster; the lane's reporter writes `sync_steps` and the run's log)."""

    def start(self, step: str, total: int | None = None) -> None: ...

    def advance(self, step: str, done: int, total: int | None = None,
                counts: Mapping[str, int] | None = None) -> None: ...

    def finish(self, step: str, counts: Mapping[str, int] | None = None) -> None: ...

    def fail(self, step: str, error: str, counts: Mapping[str, int] | None = None) -> None: ...

    def skip(self, step: str, reason: str) -> None: ...


@contextmanager
def run_step(reporter: StepReporter, name: str, total: int | None = None,
             describe: Callable[[Exception], str] = lambda exc: f"{type(exc).__name__}: {exc}") -> Iterator[Counter]:
    """One step as a context: started on entry, completed with the counts its body put in the yielded
    Counter, or failed with `describe(exception)` (and the counts so far) before the exception goes on."""
    reporter.start(name, total)
    counts: Counter = Counter()
    try:
        yield counts
    except Exception as exc:
        reporter.fail(name, describe(exc), dict(counts))
        raise
    reporter.finish(name, dict(counts))


class NoReporter:
    """A reporter that records nothing (a connector used on its own, the tests of a parser)."""

    def start(self, step: str, total: int | None = None) -> None:
        pass

    def advance(self, step: str, done: int, total: int | None = None,
                counts: Mapping[str, int] | None = None) -> None:
        pass

    def finish(self, step: str, counts: Mapping[str, int] | None = None) -> None:
        pass

    def fail(self, step: str, error: str, counts: Mapping[str, int] | None = None) -> None:
        pass

    def skip(self, step: str, reason: str) -> None:
        pass
