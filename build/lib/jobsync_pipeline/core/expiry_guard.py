"""The expiry guard: a board that suddenly shrinks or empties is more likely a broken fetch than a hiring
freeze, so its jobs expire only once the shrink is confirmed or accepted."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import median


@dataclass(frozen=True)
class GuardPolicy:
    max_shrink: float = 0.5  # refuse when the snapshot lists fewer than (1 - max_shrink) × the recent median
    min_board_size: int = 10  # below this recent median a partial shrink is believed: small boards swing
    history: int = 5  # how many recent successful syncs make the median
    # an empty answer from a board that had jobs, of any size, expires them only when a sync at least
    # this long after the first empty one is empty too: one empty answer is too often an API hiccup
    empty_confirm: timedelta = timedelta(hours=6)


class GuardDecision(StrEnum):
    """What the guard decided about a diff that expires jobs, as `syncs.expiry_guard` records it."""

    REFUSED = "refused"  # a large board shrank by more than max_shrink: not applied
    EMPTY_HELD = "empty_held"  # an empty answer not yet confirmed: not applied
    EMPTY_CONFIRMED = "empty_confirmed"  # empty again at least empty_confirm after the first: applied
    ACCEPTED = "accepted"  # an operator accepted the shrink (accept_shrink): applied


@dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    found: int
    median: float | None
    would_expire: int
    reason: str | None = None
    decision: GuardDecision | None = None  # None: nothing for the guard to decide


def evaluate(found: int, would_expire: int, recent_found: list[int], policy: GuardPolicy = GuardPolicy(), *,
             empty_since: datetime | None = None, now: datetime | None = None,
             accepted: bool = False) -> GuardVerdict:
    """Whether a snapshot listing `found` postings may expire `would_expire` of them.

    `recent_found` are the found counts of the board's recent successful syncs, newest first;
    `empty_since` is when the board's current run of held empty answers began (None: this is the
    first); `accepted` is the operator's override.
    """
    recent = recent_found[: policy.history]
    typical = median(recent) if recent else None
    verdict = dict(found=found, median=typical, would_expire=would_expire)
    if would_expire == 0:
        return GuardVerdict(ok=True, **verdict)
    if found == 0:
        if accepted:
            return GuardVerdict(ok=True, decision=GuardDecision.ACCEPTED, **verdict)
        if empty_since is not None and now is not None and now - empty_since >= policy.empty_confirm:
            return GuardVerdict(ok=True, decision=GuardDecision.EMPTY_CONFIRMED, **verdict)
        hours = policy.empty_confirm.total_seconds() / 3600
        first = f"since {empty_since:%Y-%m-%d %H:%M} UTC" if empty_since else "for the first time"
        return GuardVerdict(ok=False, decision=GuardDecision.EMPTY_HELD, **verdict, reason=(
            f"the board answered with no postings {first} and would expire all {would_expire}; held until a "
            f"sync at least {hours:g} h after the first empty answer is empty too. If the board really "
            "closed, rerun job_diff with accept_shrink: true"))
    if typical is None or typical < policy.min_board_size or found >= (1 - policy.max_shrink) * typical:
        return GuardVerdict(ok=True, **verdict)
    if accepted:
        return GuardVerdict(ok=True, decision=GuardDecision.ACCEPTED, **verdict)
    return GuardVerdict(ok=False, decision=GuardDecision.REFUSED, **verdict, reason=(
        f"the snapshot lists {found} postings against a median of {typical:g} over the last {len(recent)} "
        f"successful syncs (more than {policy.max_shrink:.0%} fewer) and would expire {would_expire}; not "
        "applied. If the shrink is real, rerun job_diff with accept_shrink: true"))
