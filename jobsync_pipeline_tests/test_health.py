"""core/health.py and store/health.py: error kinds, verdicts, and the figures of a store with known syncs,
on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jobsync_pipeline.core.health import Health, QueueFigures, SourceFigures, error_kind, judge
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.store.health import HealthStore
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import syncs

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize("error, kind", [
    ("GET https://x/v1/boards/a/jobs answered 404 Not Found", "not_found"),
    ("GET … gave up after 5 attempts: 429 Too Many Requests", "throttled"),
    ("GET … gave up after 5 attempts: 503 Service Unavailable", "server_error"),
    ("GET … gave up after 5 attempts: no complete answer within 60 s", "timeout"),
    ("GET … failed: ConnectError: [Errno 111] Connection refused", "network"),
    ("/bucket/a.json: not valid JSON (Expecting value)", "bad_payload"),
    ("a diff that would expire 90 of 100 jobs: held back", "expiry_guard"),
    ("another sync of greenhouse/a is running", "busy"),
    ("interrupted: the run's process died", "interrupted"),
    ("something else entirely", "other"),
    (None, "other"),
])
def test_each_error_has_a_kind(error, kind):
    assert error_kind(error) == kind


def figures(**fields) -> SourceFigures:
    return SourceFigures(**{"source": "greenhouse", "interval": timedelta(minutes=15), "boards": 10, **fields})


def test_verdicts():
    assert judge(figures(boards=0), NOW) == (Health.HEALTHY, [])
    assert judge(figures(syncs=100, successes=99, last_success=NOW - 10 * timedelta(minutes=1)), NOW) == (Health.HEALTHY, [])
    degraded, why = judge(figures(syncs=100, successes=90, last_success=NOW), NOW)
    assert degraded == Health.DEGRADED and why == ["success rate 90% over 7 days (10 of 100 failed)"]
    failing, why = judge(figures(syncs=100, successes=40, last_success=NOW), NOW)
    assert failing == Health.FAILING and "success rate 40%" in why[0]
    stale, why = judge(figures(syncs=10, successes=10, last_success=NOW - 31 * timedelta(minutes=1)), NOW)
    assert stale == Health.FAILING and why == ["no successful sync for 31 min (stale after 30 min)"]
    assert judge(figures(syncs=3, successes=0), NOW)[1][0] == "never synced successfully"
    assert judge(figures(), NOW) == (Health.DEGRADED, ["not synced yet"])
    retired = judge(figures(syncs=10, successes=10, last_success=NOW, boards_failing=1, boards_retired=2), NOW)
    assert retired == (Health.DEGRADED, ["1 board(s) failing, 2 retired"])


def sync_at(store: Store, board: str, status: str, started: datetime, seconds: float, *, error: str | None = None,
            found: int = 0, source: str = "greenhouse") -> int:
    sync_id = store.record_sync(source, board, status, run_id="r", error=error, counts={"found": found},
                                started_at=started)
    with store.engine.begin() as conn:  # as if it ended `seconds` after it started
        conn.execute(syncs.update().where(syncs.c.id == sync_id).values(
            finished_at=started + timedelta(seconds=seconds), duration_seconds=seconds))
    return sync_id


def test_figures_of_a_store_with_known_syncs(store_url):
    store = Store(store_url)
    store.boards.add("greenhouse", ["a", "b", "c"], "cli")
    store.boards.not_found("greenhouse", "c", "404", retire_after=3)  # failing
    for n in range(8):
        sync_at(store, "a", SyncStatus.SUCCESS, NOW - (n + 1) * HOUR, seconds=n + 1, found=5)
    sync_at(store, "b", SyncStatus.SUCCESS, NOW - 30 * HOUR, seconds=100, found=7)
    sync_at(store, "b", SyncStatus.FAILED, NOW - 2 * HOUR, seconds=10, error="GET … answered 500 … gave up: 503")
    sync_at(store, "c", SyncStatus.FAILED, NOW - 3 * HOUR, seconds=1, error="GET … answered 404 Not Found")
    sync_at(store, "b", SyncStatus.STALE, NOW - HOUR, seconds=1)  # neither success nor failure
    sync_at(store, "a", SyncStatus.FAILED, NOW - 9 * 24 * HOUR, seconds=1, error="old")  # outside the window
    health = HealthStore(store.engine)
    (gh, lever) = health.sources({"greenhouse": timedelta(minutes=15), "lever": timedelta(minutes=15)}, NOW)
    assert (gh.boards, gh.boards_failing, gh.syncs, gh.successes) == (3, 1, 11, 9)
    assert gh.last_success == NOW - HOUR + timedelta(seconds=1)
    assert gh.duration_median == 4.5 and gh.duration_p95 == pytest.approx(50.5)  # every ended sync's duration
    assert gh.errors == {"server_error": 1, "not_found": 1}
    assert gh.jobs_found == 5 + 7  # each board's latest successful sync
    assert lever.boards == 0 and lever.syncs == 0
    verdict, why = judge(gh, NOW)
    assert verdict == Health.FAILING and why[0] == "no successful sync for 60 min (stale after 30 min)"

    worst = health.worst_boards(NOW)
    assert list(worst["board"]) == ["c", "b"] and list(worst["success_rate"]) == [0.0, 0.5]
    assert worst.iloc[0]["last_error"] == "GET … answered 404 Not Found"


def test_queues_count_what_is_pending_and_due(store_url):
    store = Store(store_url)
    searches = store.searches
    searches.add_user("ann@example.com", None, "Europe/London")
    saved = searches.add_search("ann@example.com", SearchParameters(keywords="python"))
    searches.enqueue("ann@example.com", saved.id)
    queues = {q.name: q for q in HealthStore(store.engine).queues()}
    assert queues["search_runs"].pending == 1 and queues["search_runs"].oldest is not None
    assert (queues["notifications"].pending, queues["followups"].pending) == (0, 0)
    assert QueueFigures("x", 1, NOW - 90 * timedelta(minutes=1)).oldest_age_minutes(NOW) == 90.0
