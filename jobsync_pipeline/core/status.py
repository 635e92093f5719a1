"""The names operators, the store and the UI share: a sync's outcome, a board's lifecycle, a sync's counts."""
from __future__ import annotations

from enum import StrEnum


class SyncStatus(StrEnum):
    """The `syncs.status` of one board's sync."""

    RUNNING = "running"
    SUCCESS = "success"  # applied
    FAILED = "failed"  # fetch, file or apply failed: nothing applied
    STALE = "stale"  # a late snapshot (older than the applied one): skipped, the catalog unchanged
    GUARDED = "guarded"  # the expiry guard held the diff back: nothing applied
    RETIRED = "retired"  # the board was retired: its jobs expired once
    # the run ended before the apply (only some of the lane's assets were selected): nothing applied
    PARTIAL = "partial"


class BoardStatus(StrEnum):
    """The `boards.status` lifecycle: active → failing (404s) → retired (N 404s, or an operator); an
    operator may also set a board inactive (not synced, its jobs kept: a crawled site switched off)."""

    ACTIVE = "active"
    FAILING = "failing"
    RETIRED = "retired"
    INACTIVE = "inactive"


SYNCABLE = (BoardStatus.ACTIVE, BoardStatus.FAILING)

# What a sync counts, as the `syncs` columns, the job_diff metadata and `jobsync sync --json` name them.
# Every found posting is exactly one of new, changed, unchanged, reactivated or already_expired (a feed
# listed it past its own expiry date); bad records and duplicate ids are counted apart from found.
DIFF_COUNTS = ("found", "new", "changed", "unchanged", "expired", "reactivated", "already_expired", "bad")
SYNC_COUNTS = (*DIFF_COUNTS, "duplicates", "cross_source_duplicates", "possible_duplicates")
