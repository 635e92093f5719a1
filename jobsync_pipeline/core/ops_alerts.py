"""Operator alerts: which conditions hold now, from the health figures, the guard's refusals and the runs.

Each condition has a stable key; the store remembers which are firing, so an alert is sent when a
condition starts, again at most once an hour while it holds, and a recovery message when it clears.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobsync_pipeline.core.health import QueueFigures, SourceFigures


@dataclass(frozen=True)
class AlertPolicy:
    min_success_rate: float = 0.8  # over the last hour, per source
    min_syncs: int = 3  # a rate over fewer syncs than this says too little to alert on
    max_queue_age: timedelta = timedelta(minutes=30)  # the oldest pending (due) item of a queue
    stale_after_intervals: float = 2.0
    repeat_every: timedelta = timedelta(hours=1)  # at most one alert per condition this often


@dataclass(frozen=True)
class Condition:
    key: str  # stable: the same problem keeps its key while it lasts
    message: str


def source_conditions(hour: list[SourceFigures], week: list[SourceFigures], now: datetime,
                      policy: AlertPolicy = AlertPolicy()) -> list[Condition]:
    """A source whose success rate over the last hour is below the threshold; a source with boards and no
    successful sync within twice its interval (stale)."""
    found = []
    for figures in hour:
        rate = figures.success_rate
        if figures.syncs >= policy.min_syncs and rate is not None and rate < policy.min_success_rate:
            found.append(Condition(f"success_rate:{figures.source}", (
                f"{figures.source}: {rate:.0%} of {figures.syncs} syncs succeeded in the last hour "
                f"(below {policy.min_success_rate:.0%})")))
    for figures in week:
        stale_after = figures.interval * policy.stale_after_intervals
        if figures.boards and figures.last_success is not None and now - figures.last_success > stale_after:
            hours = (now - figures.last_success).total_seconds() / 3600
            found.append(Condition(f"stale:{figures.source}", (
                f"{figures.source} is stale: no successful sync for {hours:.1f} h (expected within "
                f"{stale_after.total_seconds() / 3600:g} h)")))
    return found


def queue_conditions(queues: list[QueueFigures], now: datetime, policy: AlertPolicy = AlertPolicy()) -> list[Condition]:
    found = []
    for queue in queues:
        if queue.oldest is not None and now - queue.oldest > policy.max_queue_age:
            found.append(Condition(f"queue:{queue.name}", (
                f"queue {queue.name}: {queue.pending} pending, the oldest for {queue.oldest_age_minutes(now):.0f} min "
                f"(over {policy.max_queue_age.total_seconds() / 60:g} min)")))
    return found


def guard_conditions(held: list[tuple[str, str, str]]) -> list[Condition]:
    """Boards whose latest sync the mass-expiry guard held back: (source, board, reason)."""
    return [Condition(f"expiry_guard:{source}/{board}", f"{source}/{board}: the expiry guard held its diff back: {reason}")
            for source, board, reason in held]


def failed_run_conditions(failed_jobs: dict[str, str]) -> list[Condition]:
    """Jobs whose latest finished run failed: job name → the run's id and first line of its error."""
    return [Condition(f"run_failed:{job}", f"run of {job} failed: {detail}") for job, detail in sorted(failed_jobs.items())]
