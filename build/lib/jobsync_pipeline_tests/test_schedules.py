"""The stalest-first sync schedules, evaluated with `build_schedule_context` on a real store."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from jobsync_pipeline.definitions import defs
from jobsync_pipeline.defs.run_tags import RANGE_END, RANGE_START, range_tags
from jobsync_pipeline.defs.resources import StoreResource, SyncPolicyResource
from jobsync_pipeline.store import Store

SCHEDULES = {source: defs.resolve_schedule_def(f"{source}_sync_schedule")
             for source in ("greenhouse", "lever", "remoteok", "himalayas")}
TICK = datetime(2026, 11, 23, 9, 7, tzinfo=ZoneInfo("Europe/London"))
LONG_AGO = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:  # evaluate_tick reopens the instance from its ref
        yield instance


def register(instance: dg.DagsterInstance, url: str, boards: list[str], source: str = "greenhouse",
             partitions: bool = True) -> None:
    """Boards in the registry (as the CLI adds them) and, unless told, as the lane's partitions."""
    Store(url).boards.add(source, boards, origin="cli")
    if partitions:
        instance.add_dynamic_partitions(f"{source}_boards", boards)


def synced(url: str, hours_ago: dict[str, int], source: str = "greenhouse") -> None:
    for board, hours in hours_ago.items():
        Store(url).boards.attempted(source, [board], at=LONG_AGO + timedelta(hours=1000 - hours))


def tick(instance: dg.DagsterInstance, url: str, batch_size: int, source: str = "greenhouse", at: datetime = TICK):
    with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at,
            resources={"store": StoreResource(url=url), "sync_policy": SyncPolicyResource(batch_size=batch_size)},
    ) as context:
        return SCHEDULES[source].evaluate_tick(context)


def ranges(data) -> list[tuple[str, str]]:
    assert data.skip_message is None, data.skip_message
    assert all(r.partition_key is None for r in data.run_requests)
    return [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in data.run_requests]


def minutes(cron: str) -> set[int]:
    """The minutes of the hour a cron string fires at (`*`, `*/n`, `a-b`, `a-b/n` and lists)."""
    field, *rest = cron.split()
    assert rest == ["*", "*", "*", "*"], f"{cron}: fires on some hours or days only; compare those too"
    found: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        low, high = (0, 59) if span == "*" else (
            tuple(map(int, span.split("-"))) if "-" in span else (int(span), 59 if step else int(span)))
        found |= set(range(low, high + 1, int(step or 1)))
    return found


def test_never_synced_boards_come_first_as_one_range(instance, store_url):
    boards = [f"b{n}" for n in range(1, 9)]
    register(instance, store_url, boards)
    synced(store_url, {"b1": 5, "b2": 9, "b3": 1})

    data = tick(instance, store_url, batch_size=4)

    assert ranges(data) == [("b4", "b7")]
    (request,) = data.run_requests
    assert request.tags.items() >= range_tags("b4", "b7").items()


def test_then_the_oldest_synced_and_a_batch_that_wraps_is_two_runs(instance, store_url):
    boards = [f"b{n}" for n in range(1, 7)]
    register(instance, store_url, boards)
    synced(store_url, {"b1": 30, "b2": 4, "b3": 3, "b4": 2, "b5": 50, "b6": 40})

    assert ranges(tick(instance, store_url, batch_size=3)) == [("b1", "b1"), ("b5", "b6")]
    assert ranges(tick(instance, store_url, batch_size=1)) == [("b5", "b5")]
    assert ranges(tick(instance, store_url, batch_size=50)) == [("b1", "b6")]


def test_no_boards_skip(instance, sqlite_url):
    data = tick(instance, sqlite_url, batch_size=5)
    assert data.run_requests == [] and "no greenhouse boards" in data.skip_message
    register(instance, sqlite_url, ["acme"], source="lever")  # another source's boards are not ours
    assert tick(instance, sqlite_url, batch_size=5).skip_message


def test_boards_not_yet_partitions_are_left_to_the_board_sensor(instance, sqlite_url):
    register(instance, sqlite_url, ["fresh-1", "fresh-2"], partitions=False)
    assert "no greenhouse boards" in tick(instance, sqlite_url, batch_size=5).skip_message

    register(instance, sqlite_url, ["a", "b", "c", "d"])
    synced(sqlite_url, {"a": 4, "b": 3, "c": 2, "d": 1})

    # the never-synced boards the sensor has not added yet take no place in the batch
    assert ranges(tick(instance, sqlite_url, batch_size=2)) == [("a", "b")]


def test_retired_boards_are_never_requested(instance, sqlite_url):
    register(instance, sqlite_url, ["a", "b", "c"])
    Store(sqlite_url).boards.remove("greenhouse", "b", "closed its board")
    assert ranges(tick(instance, sqlite_url, batch_size=5)) == [("a", "a"), ("c", "c")]


def test_no_two_api_sources_start_in_the_same_minute():
    crons = {source: schedule.cron_schedule for source, schedule in SCHEDULES.items()}
    for source, cron in crons.items():
        for other, other_cron in crons.items():
            if source < other:
                assert minutes(cron).isdisjoint(minutes(other_cron)), crons
    assert {s.execution_timezone for s in SCHEDULES.values()} == {"Europe/London"}


def test_remoteok_steps_to_the_next_tag_each_tick(instance, sqlite_url):
    from jobsync_pipeline.defs.source_specs import REMOTEOK

    seen = []
    for n in range(len(REMOTEOK.static_partitions) + 2):
        (request,) = tick(instance, sqlite_url, batch_size=50, source="remoteok",
                          at=TICK + timedelta(minutes=15 * n)).run_requests
        tag = request.tags[RANGE_START]
        assert request.tags[RANGE_END] == tag  # one tag per tick, whatever the policy's batch size
        seen.append(tag)
        Store(sqlite_url).boards.attempted("remoteok", [tag], at=LONG_AGO + timedelta(hours=n))
    assert set(seen[:13]) == set(REMOTEOK.static_partitions)  # every tag once before any twice
    assert seen[13:] == seen[:2]


def test_himalayas_syncs_its_one_feed_each_tick(instance, sqlite_url):
    assert ranges(tick(instance, sqlite_url, batch_size=5, source="himalayas")) == [("all", "all")]


def test_minutes_reads_the_cron_forms_we_use():
    assert minutes("7,22,37,52 * * * *") == {7, 22, 37, 52}
    assert minutes("*/15 * * * *") == {0, 15, 30, 45}
    assert minutes("5-7,40 * * * *") == {5, 6, 7, 40}
    assert minutes("3/20 * * * *") == {3, 23, 43}


@pytest.mark.parametrize("source", ["greenhouse", "lever"])
def test_the_run_key_is_stable_for_a_tick(instance, sqlite_url, source):
    register(instance, sqlite_url, ["a", "b", "c", "d"], source=source)
    synced(sqlite_url, {"a": 1, "b": 2, "c": 3, "d": 4}, source=source)

    first = tick(instance, sqlite_url, batch_size=3, source=source)
    again = tick(instance, sqlite_url, batch_size=3, source=source)
    later = tick(instance, sqlite_url, batch_size=3, source=source, at=TICK + timedelta(minutes=15))

    assert ranges(first) == [("b", "d")]
    keys = [r.run_key for r in first.run_requests]
    assert keys == [r.run_key for r in again.run_requests] and all(keys)
    assert all(k.startswith(f"{source}:") for k in keys)
    assert not set(keys) & {r.run_key for r in later.run_requests}  # the next tick runs again


def test_a_tick_syncs_exactly_the_boards_it_picked_whatever_the_partition_order(instance, sqlite_url):
    """Partitions added in another order than the registry's, a board retired in the middle, boards synced
    out of turn: the runs a tick requests cover the stalest boards, and no other."""
    boards = [f"b{n}" for n in range(1, 9)]
    register(instance, sqlite_url, boards, partitions=False)
    instance.add_dynamic_partitions("greenhouse_boards", ["b5", "b2", "b8", "b1", "b7", "b3", "b6", "b4"])
    synced(sqlite_url, {b: 100 - n for n, b in enumerate(boards)})  # b1 the stalest, then b2, ...
    synced(sqlite_url, {"b2": 1, "b3": 1})  # synced out of turn (a CLI run), so no longer stale
    Store(sqlite_url).boards.remove("greenhouse", "b4", "closed its board")

    data = tick(instance, sqlite_url, batch_size=3)

    order = instance.get_dynamic_partitions("greenhouse_boards")  # a range covers keys in this order
    covered = [key for start, end in ranges(data) for key in order[order.index(start):order.index(end) + 1]]
    assert sorted(covered) == ["b1", "b5", "b6"]
