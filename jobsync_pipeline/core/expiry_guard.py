"""The mass-expiry guard: a board that suddenly shrinks is more likely a broken fetch than a hiring freeze."""
from __future__ import annotations

from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class GuardPolicy:
    max_shrink: float = 0.5  # refuse when the snapshot lists fewer than (1 - max_shrink) × the recent median
    min_board_size: int = 10  # below this recent median the guard does not apply: small boards swing
    history: int = 5  # how many recent successful syncs make the median


@dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    found: int
    median: float | None
    would_expire: int
    reason: str | None = None


def evaluate(found: int, would_expire: int, recent_found: list[int], policy: GuardPolicy = GuardPolicy()) -> GuardVerdict:
    """Whether a snapshot listing `found` postings may expire `would_expire` of them.

    `recent_found` are the found counts of the board's recent successful syncs, newest first.
    """
    recent = recent_found[: policy.history]
    typical = median(recent) if recent else None
    if typical is None or typical < policy.min_board_size or would_expire == 0:
        return GuardVerdict(ok=True, found=found, median=typical, would_expire=would_expire)
    floor = (1 - policy.max_shrink) * typical
    if found >= floor:
        return GuardVerdict(ok=True, found=found, median=typical, would_expire=would_expire)
    return GuardVerdict(
        ok=False, found=found, median=typical, would_expire=would_expire,
        reason=(f"the snapshot lists {found} postings against a median of {typical:g} over the last "
                f"{len(recent)} successful syncs (more than {policy.max_shrink:.0%} fewer) and would expire "
                f"{would_expire}; not applied. If the shrink is real, rerun with accept_shrink: true"))
