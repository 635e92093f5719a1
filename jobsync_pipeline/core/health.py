"""How healthy a source is: the kind of each sync error, and a source's verdict from its figures.

Pure rules over figures the store computes (`store/health.py`); `sync_health`, `jobsync status` and the
operator alerts all judge by these, so they never disagree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"


# A sync error's kind, by what its one line says; the order matters (a guard's reason can name a 404).
_KINDS = (
    ("expiry_guard", re.compile(r"expiry guard|held back|would expire", re.I)),
    ("busy", re.compile(r"another sync of .* is running", re.I)),
    ("interrupted", re.compile(r"^interrupted", re.I)),
    ("not_found", re.compile(r"\b404\b|not found|retired", re.I)),
    ("throttled", re.compile(r"\b429\b|retry after|too many requests", re.I)),
    ("server_error", re.compile(r"\b5\d\d\b")),
    ("timeout", re.compile(r"timeout|timed out|no complete answer within", re.I)),
    ("network", re.compile(r"connect|network|not available|name or service|refused", re.I)),
    ("bad_payload", re.compile(r"not valid json|expected an|not a .* feed|every one of its|refused|over the .*limit|"
                               r"no JobPosting|malformed", re.I)),
)
ERROR_KINDS = (*(kind for kind, _ in _KINDS), "other")


def error_kind(error: str | None) -> str:
    for kind, pattern in _KINDS:
        if error and pattern.search(error):
            return kind
    return "other"


@dataclass(frozen=True)
class HealthPolicy:
    """When a source is degraded or failing."""

    degraded_below: float = 0.95  # success rate over the window
    failing_below: float = 0.5
    stale_after_intervals: float = 2.0  # no success within this many sync intervals: stale


@dataclass
class SourceFigures:
    """One source's figures over the health window (7 days), as the store computes them."""

    source: str
    interval: timedelta  # how often its schedule syncs it
    boards: int = 0
    boards_failing: int = 0
    boards_retired: int = 0
    syncs: int = 0  # ended syncs that count toward the success rate (success, failed, guarded, retired)
    successes: int = 0
    last_success: datetime | None = None
    last_sync: datetime | None = None
    duration_median: float | None = None
    duration_p95: float | None = None
    jobs_found: int = 0  # postings its boards' latest successful syncs found
    active_jobs: int = 0
    newest_posting: datetime | None = None  # when its newest open job was first seen
    errors: dict[str, int] = field(default_factory=dict)  # by kind, over the window

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.syncs if self.syncs else None

    def newest_posting_age_hours(self, now: datetime) -> float | None:
        return None if self.newest_posting is None else round((now - self.newest_posting).total_seconds() / 3600, 2)


def judge(figures: SourceFigures, now: datetime, policy: HealthPolicy = HealthPolicy()) -> tuple[Health, list[str]]:
    """A source's verdict and why (nothing for a healthy one). A source with no boards is healthy: there is
    nothing to sync."""
    if not figures.boards:
        return Health.HEALTHY, []
    failing, degraded = [], []
    stale_after = figures.interval * policy.stale_after_intervals
    if figures.last_success is None:
        (failing if figures.syncs else degraded).append("never synced successfully" if figures.syncs
                                                        else "not synced yet")
    elif now - figures.last_success > stale_after:
        failing.append(f"no successful sync for {_span(now - figures.last_success)} (stale after {_span(stale_after)})")
    rate = figures.success_rate
    if rate is not None:
        text = f"success rate {rate:.0%} over 7 days ({figures.syncs - figures.successes} of {figures.syncs} failed)"
        if rate < policy.failing_below:
            failing.append(text)
        elif rate < policy.degraded_below:
            degraded.append(text)
    if figures.boards_failing or figures.boards_retired:
        degraded.append(f"{figures.boards_failing} board(s) failing, {figures.boards_retired} retired")
    if failing:
        return Health.FAILING, failing + degraded
    return (Health.DEGRADED, degraded) if degraded else (Health.HEALTHY, [])


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


@dataclass(frozen=True)
class QueueFigures:
    """A queue's depth and the age of its oldest pending item."""

    name: str
    pending: int
    oldest: datetime | None

    def oldest_age_minutes(self, now: datetime) -> float | None:
        return None if self.oldest is None else round((now - self.oldest).total_seconds() / 60, 1)
