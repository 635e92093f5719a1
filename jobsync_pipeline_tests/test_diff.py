"""The diff engine (jobsync_pipeline/core/diff.py): classify, expired, diff_snapshot."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from jobsync_pipeline.core.diff import (KINDS, SKIPS, SnapshotDiff, classify, diff_snapshot, expired, expired_unseen,
                                        previous_state)


def previous(state: dict[str, tuple[int, bool]]) -> pd.DataFrame:
    return previous_state([(external_id, h, active) for external_id, (h, active) in state.items()])


def current(snapshot: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"external_id": pd.Series(list(snapshot), dtype=object),
                         "content_hash": pd.Series(list(snapshot.values()), dtype="int64")})


def kinds(diff: SnapshotDiff) -> dict[str, list[str]]:
    return {kind: sorted(getattr(diff, kind)) for kind in KINDS}


# --- small frames -------------------------------------------------------------------------------

STATE = {"same": (1, True), "edit": (2, True), "gone": (3, True), "back": (4, False),
         "back-edited": (5, False), "long-gone": (6, False)}
SNAPSHOT = {"same": 1, "edit": 20, "back": 4, "back-edited": 50, "fresh": 7}


def test_diff_snapshot_classifies_every_kind():
    diff = diff_snapshot(previous(STATE), current(SNAPSHOT))
    assert kinds(diff) == {
        "new": ["fresh"],
        "changed": ["edit"],
        "unchanged": ["same"],
        "reactivated": ["back", "back-edited"],  # reactivated whether or not the content moved
        "expired": ["gone"],  # "long-gone" was already expired: not expired twice
    }
    assert diff.counts() == {"new": 1, "changed": 1, "unchanged": 1, "reactivated": 2, "expired": 1,
                             "already_expired": 0}
    assert diff.writes == 5


def test_classify_alone_never_expires():
    diff = classify(previous(STATE), current(SNAPSHOT))
    assert len(diff.expired) == 0
    assert sorted(diff.new) == ["fresh"]


def test_expired_lists_active_ids_not_seen():
    prev = previous(STATE)
    assert sorted(expired(prev, np.array(["same", "edit"], dtype=object))) == ["gone"]
    assert sorted(expired(prev, pd.Index(["gone"]))) == ["edit", "same"]
    assert sorted(expired(prev, np.array([], dtype=object))) == ["edit", "gone", "same"]


def test_first_snapshot_is_all_new():
    diff = diff_snapshot(previous_state([]), current({"a": 1, "b": 2}))
    assert kinds(diff) == {"new": ["a", "b"], "changed": [], "unchanged": [], "reactivated": [],
                           "expired": []}


def test_empty_snapshot_expires_every_active_job():
    diff = diff_snapshot(previous(STATE), current({}))
    assert kinds(diff)["expired"] == ["edit", "gone", "same"]
    assert diff.writes == 3


def test_unchanged_snapshot_writes_nothing():
    state = {"a": (1, True), "b": (2, True)}
    diff = diff_snapshot(previous(state), current({"a": 1, "b": 2}))
    assert diff.writes == 0
    assert kinds(diff)["unchanged"] == ["a", "b"]


def test_extreme_hashes_compare_exactly():
    low, high = -(2**63), 2**63 - 1
    diff = diff_snapshot(previous({"a": (low, True), "b": (high, True)}),
                         current({"a": low, "b": high - 1}))
    assert kinds(diff)["unchanged"] == ["a"]
    assert kinds(diff)["changed"] == ["b"]


def test_snapshot_diffs_add_kind_by_kind():
    one = SnapshotDiff(new=np.array(["a"], dtype=object))
    two = SnapshotDiff(new=np.array(["b"], dtype=object), expired=np.array(["c"], dtype=object))
    total = one + two
    assert list(total.new) == ["a", "b"]
    assert list(total.expired) == ["c"]
    assert SnapshotDiff().writes == 0 and SnapshotDiff().counts() == dict.fromkeys((*KINDS, *SKIPS), 0)
    skipped = SnapshotDiff(already_expired=np.array(["d"], dtype=object))
    assert (one + skipped).counts()["already_expired"] == 1 and skipped.writes == 0


def test_chunked_classification_equals_whole_snapshot():
    prev, cur = previous(STATE), current(SNAPSHOT)
    whole = diff_snapshot(prev, cur)
    parts = [cur.iloc[:2], cur.iloc[2:3], cur.iloc[3:3], cur.iloc[3:]]
    chunked = sum((classify(prev, part) for part in parts), SnapshotDiff())
    chunked = chunked + SnapshotDiff(expired=expired(prev, np.concatenate(
        [p["external_id"].to_numpy(dtype=object) for p in parts])))
    assert kinds(chunked) == kinds(whole)


# --- properties ---------------------------------------------------------------------------------

IDS = st.sampled_from([f"id-{i}" for i in range(12)])
HASHES = st.integers(min_value=-3, max_value=3)  # few values, so equal and different hashes both happen
STATES = st.dictionaries(IDS, st.tuples(HASHES, st.booleans()), max_size=12)
SNAPSHOTS = st.dictionaries(IDS, HASHES, max_size=12)


@given(STATES, SNAPSHOTS)
def test_kinds_partition_the_ids(state, snapshot):
    diff = diff_snapshot(previous(state), current(snapshot))
    seen = [i for kind in ("new", "changed", "unchanged", "reactivated") for i in getattr(diff, kind)]
    assert sorted(seen) == sorted(snapshot)  # every current id in exactly one kind
    assert set(diff.expired) == {i for i, (_, active) in state.items() if active} - set(snapshot)
    assert len(set(diff.expired)) == len(diff.expired)
    for i in diff.new:
        assert i not in state
    for i in diff.changed:
        assert state[i][1] and state[i][0] != snapshot[i]
    for i in diff.unchanged:
        assert state[i][1] and state[i][0] == snapshot[i]
    for i in diff.reactivated:
        assert not state[i][1]


@given(STATES, SNAPSHOTS, st.lists(st.integers(0, 12), max_size=4))
def test_chunked_classification_equals_whole_property(state, snapshot, cuts):
    prev, cur = previous(state), current(snapshot)
    bounds = [0, *sorted(min(c, len(cur)) for c in cuts), len(cur)]
    parts = [cur.iloc[a:b] for a, b in zip(bounds, bounds[1:])]
    chunked = sum((classify(prev, part) for part in parts), SnapshotDiff())
    seen = np.concatenate([p["external_id"].to_numpy(dtype=object) for p in parts])
    chunked = chunked + SnapshotDiff(expired=expired(prev, seen))
    whole = diff_snapshot(prev, cur)
    for kind in KINDS:  # same ids in the same order
        assert list(getattr(chunked, kind)) == list(getattr(whole, kind)), kind


@given(STATES, SNAPSHOTS, st.lists(st.integers(0, 12), max_size=4))
def test_streamed_classification_with_seen_flags_equals_whole(state, snapshot, cuts):
    # the store's streaming path: `classify(..., seen=)` marks the previous rows listed, then
    # `expired_unseen` finds the expired ones without keeping every id seen
    prev, cur = previous(state), current(snapshot)
    bounds = [0, *sorted(min(c, len(cur)) for c in cuts), len(cur)]
    seen = np.zeros(len(prev), dtype=bool)
    streamed = sum((classify(prev, cur.iloc[a:b], seen=seen) for a, b in zip(bounds, bounds[1:])),
                   SnapshotDiff())
    streamed = streamed + SnapshotDiff(expired=expired_unseen(prev, seen))
    whole = diff_snapshot(prev, cur)
    for kind in KINDS:
        assert list(getattr(streamed, kind)) == list(getattr(whole, kind)), kind
    assert list(prev.index[seen]) == [i for i in prev.index if i in snapshot]


def apply(state: dict[str, tuple[int, bool]], snapshot: dict[str, int],
          diff: SnapshotDiff) -> dict[str, tuple[int, bool]]:
    """The pure model of the store: what applying `diff` does to the board's jobs."""
    state = dict(state)
    for i in (*diff.new, *diff.changed, *diff.reactivated):
        state[i] = (snapshot[i], True)
    for i in diff.expired:
        state[i] = (state[i][0], False)
    return state


@given(STATES, st.lists(SNAPSHOTS, min_size=1, max_size=4))
def test_applied_diff_then_same_snapshot_is_all_unchanged(state, snapshots):
    for snapshot in snapshots:
        state = apply(state, snapshot, diff_snapshot(previous(state), current(snapshot)))
        assert {i for i, (_, active) in state.items() if active} == set(snapshot)
        again = diff_snapshot(previous(state), current(snapshot))
        assert again.writes == 0
        assert sorted(again.unchanged) == sorted(snapshot)
