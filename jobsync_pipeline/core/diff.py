"""The diff engine: what a board's snapshot means against what the store knew (pure, no I/O).

`previous` is the stored state of one board: `external_id`, `content_hash`, `active` (not expired).
`current` is the snapshot's `external_id`, `content_hash`, unique by id. A snapshot may arrive in
chunks: `classify` each chunk, then `expired` once with every id seen; `diff_snapshot` does both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KINDS = ("new", "changed", "unchanged", "reactivated", "expired")
# Found postings that change nothing: a feed listed them past their own expiry date.
SKIPS = ("already_expired",)
_EMPTY = np.array([], dtype=object)


@dataclass(frozen=True)
class SnapshotDiff:
    new: np.ndarray = field(default_factory=lambda: _EMPTY)
    changed: np.ndarray = field(default_factory=lambda: _EMPTY)
    unchanged: np.ndarray = field(default_factory=lambda: _EMPTY)
    reactivated: np.ndarray = field(default_factory=lambda: _EMPTY)
    expired: np.ndarray = field(default_factory=lambda: _EMPTY)
    already_expired: np.ndarray = field(default_factory=lambda: _EMPTY)

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in (*KINDS, *SKIPS)}

    @property
    def writes(self) -> int:
        """Job rows this diff writes; zero for an unchanged snapshot."""
        return sum(len(getattr(self, kind)) for kind in KINDS if kind != "unchanged")

    def __add__(self, other: SnapshotDiff) -> SnapshotDiff:
        return SnapshotDiff(**{kind: np.concatenate([getattr(self, kind), getattr(other, kind)])
                               for kind in (*KINDS, *SKIPS)})


def previous_state(rows: list[tuple[str, int, bool]]) -> pd.DataFrame:
    """The stored state as `classify` takes it: indexed by external id."""
    rows = [tuple(row) for row in rows]
    ids, hashes, active = zip(*rows) if rows else ((), (), ())
    return state_frame(ids, hashes, active)


def state_frame(ids, hashes, active, **columns) -> pd.DataFrame:
    """The stored state from its columns (what `previous_state` builds from rows), with any more of them
    (a store's state: digests, job ids, a feed's flags) in the same frame: a column added to a small frame
    afterwards costs as much as reading it."""
    return pd.DataFrame({"content_hash": np.asarray(hashes, dtype="int64"),
                         "active": np.asarray(active, dtype=bool), **columns},
                        index=pd.Index(list(ids), name="external_id"))


def classify(previous: pd.DataFrame, current: pd.DataFrame, *, seen: np.ndarray | None = None,
             positions: np.ndarray | None = None) -> SnapshotDiff:
    """New, changed, unchanged and reactivated ids of `current` (any part of a snapshot).

    `seen`, a boolean array over the rows of `previous`, gets the rows `current` lists set, so a
    streamed snapshot can find its expired ids with `expired_unseen` without keeping every id it saw.
    `positions`: where each id of `current` is in `previous` (-1: not there), when the caller has them.
    """
    ids = current["external_id"].to_numpy(dtype=object)
    position = previous.index.get_indexer(ids) if positions is None else positions
    known = position >= 0
    if seen is not None:
        seen[position[known]] = True
    hashes = current["content_hash"].to_numpy(dtype="int64")
    was_active = np.zeros(len(ids), dtype=bool)
    same_hash = np.zeros(len(ids), dtype=bool)
    was_active[known] = previous["active"].to_numpy()[position[known]]
    same_hash[known] = previous["content_hash"].to_numpy()[position[known]] == hashes[known]
    return SnapshotDiff(
        new=ids[~known],
        changed=ids[known & was_active & ~same_hash],
        unchanged=ids[known & was_active & same_hash],
        reactivated=ids[known & ~was_active],
    )


def expired(previous: pd.DataFrame, seen_ids: pd.Index | np.ndarray) -> np.ndarray:
    """Active ids of `previous` that a complete snapshot did not list."""
    active_ids = previous.index[previous["active"].to_numpy()]
    return active_ids[~active_ids.isin(seen_ids)].to_numpy(dtype=object)


def expired_unseen(previous: pd.DataFrame, seen: np.ndarray) -> np.ndarray:
    """Active ids of `previous` whose rows `seen` (as `classify` marks it) does not have set."""
    return previous.index[previous["active"].to_numpy() & ~seen].to_numpy(dtype=object)


def diff_snapshot(previous: pd.DataFrame, current: pd.DataFrame) -> SnapshotDiff:
    """The whole diff of a complete snapshot against the stored state."""
    return classify(previous, current) + SnapshotDiff(expired=expired(previous, current["external_id"]))
