"""The store's repository (jobsync_pipeline/store/repo.py), on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobsync_pipeline.core.models import Posting, RawPayload, postings_frame
from jobsync_pipeline.sources.bucket import Bucket
from jobsync_pipeline.sources.company_files import SOURCE, CompanyFilesConnector, parse_company_file
from jobsync_pipeline.store import engine
from jobsync_pipeline.store.engine import SchemaOutOfDate, engine_for, masked
from jobsync_pipeline.store.repo import Store, as_utc
from jobsync_pipeline.store.tables import boards, job_events, jobs, raw_snapshots, syncs
from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET

T1 = datetime(2026, 11, 18, 7, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 21, 7, 0, tzinfo=timezone.utc)
T3 = datetime(2026, 11, 22, 7, 0, tzinfo=timezone.utc)
BOARDS = ["amberline-freight", "marisol-hoteles", "tessellate-studio"]
VERSION_TABLE = "jobsync_alembic_version"
CADIZ = "~recepcionista-de-noche|cádiz-españa|marisol-hoteles"
SNAPSHOT_1_IDS = {"af-3101", "af-3102", "af-3103", "MH-118", "MH-124", CADIZ, "ts-0042", "ts-0043"}
SNAPSHOT_2_IDS = {"af-3101", "af-3102", "af-3107", "MH-118", CADIZ, "ts-0042", "ts-0049"}


# --- helpers ------------------------------------------------------------------------------------

def sync_folder(store: Store, folder, now: datetime, run_id: str | None = None) -> dict:
    """What a run does for each board of a bucket folder: archive, parse, keep bad records, apply."""
    connector = CompanyFilesConnector(Bucket(str(folder)))
    names = connector.boards()
    store.ensure_boards(SOURCE, names)
    results = {}
    for board in names:
        payload = connector.fetch(board)
        raw_id, _ = store.archive_raw(SOURCE, payload)
        parsed = connector.parse(payload)
        store.keep_bad_records(raw_id, SOURCE, board, parsed.bad_records)
        sync_id = store.start_sync(SOURCE, board, run_id=run_id, raw_snapshot_id=raw_id)
        diff = store.apply_snapshot(
            SOURCE, board, [parsed.postings], sync_id=sync_id, snapshot_at=parsed.snapshot_at, now=now,
            counts={"found": parsed.found, "bad": len(parsed.bad_records), "duplicates": len(parsed.duplicates)})
        results[board] = (sync_id, diff)
    return results


def rows(store: Store, table: sa.Table, *where) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).where(*where).order_by(table.c.id))]


def job_rows(store: Store, board: str | None = None) -> dict[str, dict]:
    where = [jobs.c.board == board] if board else []
    return {r["external_id"]: {k: as_utc(v) if isinstance(v, datetime) else v for k, v in r.items()}
            for r in rows(store, jobs, *where)}


def active_ids(store: Store, board: str | None = None) -> set[str]:
    return {i for i, r in job_rows(store, board).items() if r["expired_at"] is None}


def events(store: Store, sync_id: int | None = None) -> list[tuple[str, str]]:
    """(external_id, kind) of the events, of one sync or all."""
    query = sa.select(jobs.c.external_id, job_events.c.kind).join(jobs, jobs.c.id == job_events.c.job_id)
    if sync_id is not None:
        query = query.where(job_events.c.sync_id == sync_id)
    with store.engine.connect() as conn:
        return sorted((r.external_id, r.kind) for r in conn.execute(query))


def count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def sync_row(store: Store, sync_id: int) -> dict:
    return rows(store, syncs, syncs.c.id == sync_id)[0]


def posting(external_id: str, board: str = "acme", **fields) -> Posting:
    return Posting(source=SOURCE, board=board, external_id=external_id,
                   **{"title": f"Job {external_id}", "company": "Acme", **fields})


def apply(store: Store, board: str, postings: list[Posting], now: datetime, **kwargs):
    store.ensure_boards(SOURCE, [board])
    sync_id = store.start_sync(SOURCE, board, run_id=None)
    return sync_id, store.apply_snapshot(SOURCE, board, [postings_frame(postings)], sync_id=sync_id,
                                         now=now, **kwargs)


def payload(board: str, body: bytes) -> RawPayload:
    return RawPayload(board=board, location=f"bucket/{board}.json", body=body, fetched_at=T1, etag="e1")


# --- migrations ---------------------------------------------------------------------------------

def test_upgrade_is_idempotent(store_url):
    store = Store(store_url)
    Store(store_url)  # a second store on the same URL
    store.upgrade()
    store.upgrade()
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"boards", "jobs", "syncs", "job_events", "raw_snapshots", "bad_records", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # left to a Dagster instance sharing the database
    head = ScriptDirectory(str(engine.MIGRATIONS)).get_current_head()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head]


def _alembic(store: Store, action, revision: str) -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(engine.MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)


def test_migration_0004_drops_the_event_keys_and_keeps_the_events(blank_store_url):
    store = Store(blank_store_url, check=False)
    _alembic(store, command.upgrade, "0003")
    assert len(sa.inspect(store.engine).get_foreign_keys("job_events")) == 2
    with store.engine.begin() as conn:
        job_id = conn.execute(jobs.insert().values(source=SOURCE, board="acme", external_id="a", title="A",
                                                   company="Acme", location="", url="", description="",
                                                   requirements="[]", content_hash=1, first_seen_at=T1,
                                                   last_seen_at=T1, updated_at=T1)).inserted_primary_key[0]
        sync_id = conn.execute(syncs.insert().values(source=SOURCE, board="acme", status="success",
                                                     started_at=T1)).inserted_primary_key[0]
        conn.execute(job_events.insert().values(job_id=job_id, sync_id=sync_id, kind="new", at=T1))
    _alembic(store, command.upgrade, "0004")
    inspector = sa.inspect(store.engine)
    assert inspector.get_foreign_keys("job_events") == []
    assert {tuple(i["column_names"]) for i in inspector.get_indexes("job_events")} == {("sync_id",), ("job_id",)}
    assert rows(store, job_events)[0]["kind"] == "new"
    _alembic(store, command.downgrade, "0003")
    assert len(sa.inspect(store.engine).get_foreign_keys("job_events")) == 2
    assert len(rows(store, job_events)) == 1


def test_every_event_names_a_stored_job_and_its_sync(store_url):
    # job_events has no foreign keys (migration 0004): the apply's one INSERT … SELECT guarantees them
    store = Store(store_url)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2)
    with store.engine.connect() as conn:
        total = conn.scalar(sa.select(sa.func.count()).select_from(job_events))
        orphans = conn.scalar(sa.select(sa.func.count()).select_from(
            job_events.outerjoin(jobs, jobs.c.id == job_events.c.job_id)
            .outerjoin(syncs, sa.and_(syncs.c.id == job_events.c.sync_id,
                                      syncs.c.source == jobs.c.source, syncs.c.board == jobs.c.board)))
            .where(sa.or_(jobs.c.id.is_(None), syncs.c.id.is_(None))))
    assert total > 0 and orphans == 0


def test_a_store_never_changes_the_schema_by_itself(blank_store_url):
    with pytest.raises(SchemaOutOfDate, match="has no jobsync schema yet: run `jobsync db upgrade`"):
        Store(blank_store_url)
    assert sa.inspect(engine_for(blank_store_url)).get_table_names() == []


def test_an_out_of_date_schema_names_the_command_and_hides_the_password(blank_store_url):
    store = Store(blank_store_url, check=False)
    _alembic(store, command.upgrade, "0003")
    with pytest.raises(SchemaOutOfDate, match=r"is at schema 0003, this jobsync needs \w+: run `jobsync db upgrade`"):
        Store(blank_store_url)
    assert masked("postgresql://jobsync:s3cret@db.example/jobs") == "postgresql://jobsync:***@db.example/jobs"


# --- the two sample snapshots -------------------------------------------------------------------

def test_sample_bucket_snapshot_1_then_2(store_url):
    store = Store(store_url)
    first = sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1, run_id="run-1")
    after_first = job_rows(store)
    assert set(after_first) == SNAPSHOT_1_IDS
    assert all(r["expired_at"] is None and r["first_seen_at"] == r["last_seen_at"] == r["updated_at"] == T1
               for r in after_first.values())
    assert events(store) == sorted((i, "new") for i in SNAPSHOT_1_IDS)
    assert {b: d.counts() for b, (_, d) in first.items()} == {
        "amberline-freight": {"new": 3, "changed": 0, "unchanged": 0, "reactivated": 0, "expired": 0, "already_expired": 0},
        "marisol-hoteles": {"new": 3, "changed": 0, "unchanged": 0, "reactivated": 0, "expired": 0, "already_expired": 0},
        "tessellate-studio": {"new": 2, "changed": 0, "unchanged": 0, "reactivated": 0, "expired": 0, "already_expired": 0},
    }

    second = sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2, run_id="run-2")
    after = job_rows(store)
    assert active_ids(store) == SNAPSHOT_2_IDS and len(SNAPSHOT_2_IDS) == 7
    assert set(after) == SNAPSHOT_1_IDS | SNAPSHOT_2_IDS
    for gone in ("af-3103", "MH-124", "ts-0043"):  # absent, or listed with isActive false
        assert after[gone]["expired_at"] == T2
        assert after[gone]["expired_reason"] == "absent"
        assert after[gone]["updated_at"] == T2
        assert after[gone]["last_seen_at"] == T1
    for listed in SNAPSHOT_2_IDS:
        assert after[listed]["expired_at"] is None and after[listed]["expired_reason"] is None
    # the changed job carries the new content; the unchanged ones were not rewritten
    assert "Zeebrugge" in after["af-3102"]["description"]
    assert json.loads(after["af-3102"]["requirements"])[-1] == "French or Dutch (B2)"
    assert after["af-3102"]["updated_at"] == T2 and after["af-3102"]["first_seen_at"] == T1
    assert after["af-3102"]["content_hash"] != after_first["af-3102"]["content_hash"]
    for same in ("af-3101", "MH-118", CADIZ, "ts-0042"):
        # only last_seen_at moved: three days passed, more than the one-day refresh interval
        assert after[same] == {**after_first[same], "last_seen_at": T2}
    assert after["af-3107"]["first_seen_at"] == after["af-3107"]["updated_at"] == T2
    assert after["af-3107"]["company"] == "Amberline Freight" and after["af-3107"]["posted_date"] == "2026-11-19"

    expected_events = {
        "amberline-freight": [("af-3102", "changed"), ("af-3103", "expired"), ("af-3107", "new")],
        "marisol-hoteles": [("MH-124", "expired")],
        "tessellate-studio": [("ts-0043", "expired"), ("ts-0049", "new")],
    }
    assert {b: events(store, sync_id) for b, (sync_id, _) in second.items()} == expected_events
    assert len(events(store)) == 8 + 6

    expected_counts = {
        "amberline-freight": dict(found=3, new=1, changed=1, unchanged=1, expired=1, reactivated=0),
        "marisol-hoteles": dict(found=2, new=0, changed=0, unchanged=2, expired=1, reactivated=0),
        "tessellate-studio": dict(found=2, new=1, changed=0, unchanged=1, expired=1, reactivated=0),
    }
    for board, (sync_id, diff) in second.items():
        row = sync_row(store, sync_id)
        assert row["status"] == "success" and row["error"] is None
        assert row["run_id"] == "run-2" and row["source"] == SOURCE and row["board"] == board
        assert {k: row[k] for k in expected_counts[board]} == expected_counts[board]
        assert row["bad"] == 0 and row["duplicates"] == 0
        assert row["raw_snapshot_id"] is not None
        assert row["finished_at"] is not None and row["duration_seconds"] >= 0
        assert {k: v for k, v in diff.counts().items()} == {
            k: expected_counts[board].get(k, 0) for k in ("new", "changed", "unchanged", "expired", "reactivated",
                                                           "already_expired")}
    assert [s.board for s in store.syncs_for_run("run-2")] == BOARDS
    assert all(s.status == "success" for s in store.syncs_for_run("run-2", SOURCE))
    assert store.latest_syncs(SOURCE, "marisol-hoteles")[0].counts["expired"] == 1

    board_rows = {r["board"]: r for r in rows_by_board(store)}
    assert set(board_rows) == set(BOARDS) and store.board_names(SOURCE) == BOARDS
    assert store.last_snapshot_at(SOURCE, "marisol-hoteles") == datetime(2026, 11, 20, 22, 41, 17, tzinfo=timezone.utc)
    assert as_utc(board_rows["marisol-hoteles"]["last_synced_at"]) == T2


def rows_by_board(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(boards))]


def test_same_snapshot_twice_writes_nothing(store_url):
    store = Store(store_url)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2)
    before, events_before = job_rows(store), events(store)
    again = sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2 + timedelta(hours=3))
    for board, (sync_id, diff) in again.items():
        assert diff.writes == 0, board
        assert sorted(diff.unchanged) == sorted(active_ids(store, board))
        row = sync_row(store, sync_id)
        assert row["status"] == "success"
        assert (row["new"], row["changed"], row["expired"], row["reactivated"]) == (0, 0, 0, 0)
        assert row["unchanged"] == row["found"]
    assert job_rows(store) == before  # not one updated_at (or anything else) moved
    assert events(store) == events_before
    assert count(store, raw_snapshots) == 6  # the identical payloads were archived once


def test_job_that_disappears_and_comes_back_is_reactivated(store_url):
    store = Store(store_url)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2)
    before = job_rows(store)
    back = sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T3)
    after = job_rows(store)
    assert active_ids(store) == SNAPSHOT_1_IDS
    for returned in ("af-3103", "MH-124", "ts-0043"):
        assert after[returned]["expired_at"] is None and after[returned]["expired_reason"] is None
        assert after[returned]["updated_at"] == after[returned]["last_seen_at"] == T3
        assert after[returned]["first_seen_at"] == T1
        assert after[returned]["id"] == before[returned]["id"]  # the same row, not a new one
    for gone in ("af-3107", "ts-0049"):
        assert after[gone]["expired_at"] == T3
    assert events(store, back["amberline-freight"][0]) == [
        ("af-3102", "changed"), ("af-3103", "reactivated"), ("af-3107", "expired")]
    assert events(store, back["marisol-hoteles"][0]) == [("MH-124", "reactivated")]
    assert events(store, back["tessellate-studio"][0]) == [("ts-0043", "reactivated"), ("ts-0049", "expired")]
    row = sync_row(store, back["tessellate-studio"][0])
    assert (row["reactivated"], row["expired"], row["unchanged"]) == (1, 1, 1)


def test_reactivated_with_changed_content_takes_the_new_content(store_url):
    store = Store(store_url)
    apply(store, "acme", [posting("a"), posting("b", description="v1")], T1)
    apply(store, "acme", [posting("a")], T2)
    assert job_rows(store)["b"]["expired_at"] == T2
    sync_id, diff = apply(store, "acme", [posting("a"), posting("b", description="v2", location="Leeds")], T3)
    assert list(diff.reactivated) == ["b"] and diff.writes == 1
    row = job_rows(store)["b"]
    assert row["description"] == "v2" and row["location"] == "Leeds"
    assert row["expired_at"] is None and row["expired_reason"] is None and row["updated_at"] == T3
    assert row["content_hash"] == posting("b", description="v2", location="Leeds").content_hash
    assert events(store, sync_id) == [("b", "reactivated")]
    # and the next identical snapshot is unchanged
    assert apply(store, "acme", [posting("a"), posting("b", description="v2", location="Leeds")],
                 T3 + timedelta(minutes=5))[1].writes == 0


def test_boards_are_independent(store_url):
    store = Store(store_url)
    apply(store, "one", [posting("a", board="one"), posting("b", board="one")], T1)
    apply(store, "two", [posting("a", board="two")], T1)
    _, diff = apply(store, "two", [], T2)  # board two emptied
    assert list(diff.expired) == ["a"]
    assert active_ids(store, "one") == {"a", "b"}
    assert active_ids(store, "two") == set()


def test_none_posted_date_round_trips_and_stays_unchanged(store_url):
    store = Store(store_url)
    apply(store, "acme", [posting("a", posted_date=None), posting("b", posted_date="2026-11-01")], T1)
    assert job_rows(store)["a"]["posted_date"] is None
    assert apply(store, "acme", [posting("a", posted_date=None), posting("b", posted_date="2026-11-01")],
                 T2)[1].writes == 0


def test_extreme_content_hashes_round_trip(store_url):
    store = Store(store_url)
    frame = postings_frame([posting("low"), posting("high")])
    frame["content_hash"] = pd.Series([-(2**63), 2**63 - 1], dtype="int64")
    store.ensure_boards(SOURCE, ["acme"])
    for now in (T1, T2):
        sync_id = store.start_sync(SOURCE, "acme", run_id=None)
        diff = store.apply_snapshot(SOURCE, "acme", [frame], sync_id=sync_id, now=now)
    assert diff.writes == 0
    assert {r["content_hash"] for r in job_rows(store).values()} == {-(2**63), 2**63 - 1}


def test_chunks_apply_like_one_frame(store_url):
    store = Store(store_url)
    apply(store, "acme", [posting(i) for i in "abcd"], T1)
    store.ensure_boards(SOURCE, ["acme"])
    frame = postings_frame([posting("a"), posting("b", title="B2"), posting("e")])
    sync_id = store.start_sync(SOURCE, "acme", run_id=None)
    diff = store.apply_snapshot(SOURCE, "acme", (frame.iloc[i:i + 1] for i in range(3)), sync_id=sync_id, now=T2)
    assert diff.counts() == {"new": 1, "changed": 1, "unchanged": 1, "reactivated": 0, "expired": 2, "already_expired": 0}
    assert active_ids(store) == {"a", "b", "e"}
    assert job_rows(store)["b"]["title"] == "B2"


# --- failure rolls back -------------------------------------------------------------------------

def failing_after(frames):
    yield from frames
    raise RuntimeError("the source broke midway")


def test_failure_inside_apply_rolls_back_everything(store_url):
    store = Store(store_url)
    parsed = parse_company_file(Bucket(str(SAMPLE_BUCKET / "snapshot_1")).read("amberline-freight"))
    store.ensure_boards(SOURCE, ["amberline-freight"])
    sync_id = store.start_sync(SOURCE, "amberline-freight", run_id="run-x")
    with pytest.raises(RuntimeError, match="midway"):
        store.apply_snapshot(SOURCE, "amberline-freight", failing_after([parsed.postings.iloc[:2]]),
                             sync_id=sync_id, snapshot_at=parsed.snapshot_at, now=T1)
    assert count(store, jobs) == 0
    assert count(store, job_events) == 0
    row = sync_row(store, sync_id)
    assert row["status"] != "success" and row["finished_at"] is None
    assert store.last_snapshot_at(SOURCE, "amberline-freight") is None


def test_failure_after_staging_changes_rolls_back_and_the_retry_succeeds(store_url):
    store = Store(store_url)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1)
    before, events_before = job_rows(store), events(store)
    parsed = parse_company_file(Bucket(str(SAMPLE_BUCKET / "snapshot_2")).read("amberline-freight"))
    sync_id = store.start_sync(SOURCE, "amberline-freight", run_id=None)
    with pytest.raises(RuntimeError):  # the first chunk holds a changed (staged) and a new job
        store.apply_snapshot(SOURCE, "amberline-freight", failing_after([parsed.postings]),
                             sync_id=sync_id, snapshot_at=parsed.snapshot_at, now=T2)
    assert job_rows(store) == before and events(store) == events_before
    assert sync_row(store, sync_id)["status"] == "running"
    store.finish_sync(sync_id, "failed", error="the source broke midway")
    assert sync_row(store, sync_id)["status"] == "failed"
    # the retry (same process, pooled connection) sees no leftovers of the failed attempt
    retry = store.start_sync(SOURCE, "amberline-freight", run_id=None)
    diff = store.apply_snapshot(SOURCE, "amberline-freight", [parsed.postings], sync_id=retry,
                                snapshot_at=parsed.snapshot_at, now=T2)
    assert diff.counts() == {"new": 1, "changed": 1, "unchanged": 1, "reactivated": 0, "expired": 1, "already_expired": 0}
    assert active_ids(store, "amberline-freight") == {"af-3101", "af-3102", "af-3107"}


# --- raw snapshots and bad records --------------------------------------------------------------

def test_archive_raws_archives_a_batch_as_archive_raw_would_board_by_board(store_url):
    store = Store(store_url)
    acme_id, _ = store.archive_raw(SOURCE, payload("acme", b'{"v": 1}'))
    beta_id, _ = store.archive_raw(SOURCE, payload("beta", b'{"v": 1}'))
    revalidated = RawPayload(board="beta", location="bucket/beta.json", body=b'{"v": 1}', fetched_at=T2, etag="e9")
    batch = [payload("acme", b'{"v": 1}'), revalidated, payload("gamma", b'{"v": 1}'), payload("delta", b'{"v": 2}')]
    results = store.archive_raws(SOURCE, batch)
    assert results[:2] == [(acme_id, True), (beta_id, True)]
    assert [seen for _, seen in results[2:]] == [False, False]
    assert len({raw_id for raw_id, _ in results}) == 4
    for (raw_id, _), sent in zip(results, batch):  # each id is its own board's payload
        kept = store.latest_raw(SOURCE, sent.board)
        assert (kept.id, kept.body) == (raw_id, sent.body)
    assert store.latest_raw(SOURCE, "beta").etag == "e9"  # the same bytes under new validators
    assert store.latest_raw(SOURCE, "acme").etag == "e1"
    assert count(store, raw_snapshots) == 4
    # two payloads of one board are archived one after the other, as two fetches of it would be
    twice = store.archive_raws(SOURCE, [payload("acme", b'{"v": 2}'), payload("acme", b'{"v": 2}')])
    assert twice[0][1] is False and twice[1] == (twice[0][0], True)
    assert store.archive_raws(SOURCE, []) == []


def test_archive_raw_dedups_an_identical_payload(store_url):
    store = Store(store_url)
    first_id, seen = store.archive_raw(SOURCE, payload("acme", b'{"v": 1}'))
    assert not seen
    assert store.archive_raw(SOURCE, payload("acme", b'{"v": 1}')) == (first_id, True)
    other_board_id, seen = store.archive_raw(SOURCE, payload("other", b'{"v": 1}'))
    assert not seen and other_board_id != first_id
    second_id, seen = store.archive_raw(SOURCE, payload("acme", b'{"v": 2}'))
    assert not seen and second_id != first_id
    third_id, seen = store.archive_raw(SOURCE, payload("acme", b'{"v": 1}'))  # back to the first body
    assert not seen and third_id not in (first_id, second_id)
    assert count(store, raw_snapshots) == 4
    latest = store.latest_raw(SOURCE, "acme")
    assert latest.id == third_id and latest.body == b'{"v": 1}' and latest.etag == "e1"
    assert latest.fetched_at == T1 and latest.payload().body == b'{"v": 1}'
    row = rows(store, raw_snapshots, raw_snapshots.c.id == third_id)[0]
    assert row["size_bytes"] == 8 and len(row["sha256"]) == 64
    assert store.latest_raw(SOURCE, "nobody") is None


def test_keep_bad_records_replaces_on_re_parse(store_url):
    store = Store(store_url)
    body = (FIXTURES / "company_files" / "bad" / "missing-title.json").read_bytes()
    raw_id, _ = store.archive_raw(SOURCE, payload("wickham", body))
    parsed = parse_company_file(store.latest_raw(SOURCE, "wickham").payload())
    assert len(parsed.bad_records) == 1
    store.keep_bad_records(raw_id, SOURCE, "wickham", parsed.bad_records)
    store.keep_bad_records(raw_id, SOURCE, "wickham", parsed.bad_records)  # parsed again
    kept = store.bad_records(SOURCE, "wickham")
    assert len(kept) == 1
    assert kept[0]["position"] == 1 and kept[0]["external_id"] == "wc-8" and "title" in kept[0]["reason"]
    assert json.loads(kept[0]["record"])["id"] == "wc-8"
    # a re-parse by a fixed parser finds none: the old ones go
    store.keep_bad_records(raw_id, SOURCE, "wickham", [])
    assert store.bad_records(SOURCE, "wickham") == []
    # other snapshots' records are left alone
    other_id, _ = store.archive_raw(SOURCE, payload("wickham", body + b" "))
    store.keep_bad_records(other_id, SOURCE, "wickham", parsed.bad_records)
    store.keep_bad_records(raw_id, SOURCE, "wickham", parsed.bad_records)
    store.keep_bad_records(raw_id, SOURCE, "wickham", [])
    assert [r["raw_snapshot_id"] for r in store.bad_records(SOURCE, "wickham")] == [other_id]


def test_awkward_records_are_set_aside_and_stored(store_url):
    # too long for the columns, or text that is not valid Unicode: refused by the parser, and the
    # refusal itself must still be storable (or the whole run's step would fail on it)
    store = Store(store_url)
    document = ('{"company": "Acme", "scrapedAt": "2026-11-20T06:00:00Z", "jobs": ['
                '{"id": "%s", "title": "Long id"},'
                '{"id": "long-date", "title": "Long date", "postedDate": "%s"},'
                '{"id": "cut-\\ud83d", "title": "Cut \\ud83d emoji"},'
                '{"id": "ok", "title": "Fine \\ud83d\\ude00"}]}' % ("x" * 300, "posted " * 10))
    raw_id, _ = store.archive_raw(SOURCE, payload("acme", document.encode()))
    parsed = parse_company_file(store.latest_raw(SOURCE, "acme").payload())
    assert [b.position for b in parsed.bad_records] == [0, 1, 2]
    store.keep_bad_records(raw_id, SOURCE, "acme", parsed.bad_records)
    assert len(store.bad_records(SOURCE, "acme")) == 3
    store.ensure_boards(SOURCE, ["acme"])
    sync_id = store.start_sync(SOURCE, "acme", run_id=None)
    store.apply_snapshot(SOURCE, "acme", [parsed.postings], sync_id=sync_id, now=T1)
    assert job_rows(store)["ok"]["title"] == "Fine 😀"


# --- last_seen_at -------------------------------------------------------------------------------

def test_last_seen_at_is_refreshed_only_after_the_refresh_interval(store_url):
    store = Store(store_url)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_1", T1)
    sync_folder(store, SAMPLE_BUCKET / "snapshot_2", T2)
    expired_ids = {"af-3103", "MH-124", "ts-0043"}
    assert {r["last_seen_at"] for i, r in job_rows(store).items() if i not in expired_ids} == {T2}
    later = T2 + timedelta(hours=23)
    results = sync_folder(store, SAMPLE_BUCKET / "snapshot_2", later)
    assert all(diff.writes == 0 for _, diff in results.values())
    assert {r["last_seen_at"] for i, r in job_rows(store).items() if i not in expired_ids} == {T2}
    much_later = T2 + timedelta(days=1, minutes=1)
    results = sync_folder(store, SAMPLE_BUCKET / "snapshot_2", much_later)
    assert all(diff.writes == 0 for _, diff in results.values())  # a refresh is not a change
    after = job_rows(store)
    for i, r in after.items():
        if i in expired_ids:
            assert r["last_seen_at"] == T1 and r["updated_at"] == T2  # expired jobs are not "seen"
        else:
            assert r["last_seen_at"] == much_later
            assert r["updated_at"] in (T1, T2)


def test_seen_refresh_is_a_parameter(store_url):
    store = Store(store_url)
    apply(store, "acme", [posting("a")], T1)
    apply(store, "acme", [posting("a")], T1 + timedelta(minutes=30), seen_refresh=timedelta(hours=1))
    assert job_rows(store)["a"]["last_seen_at"] == T1
    apply(store, "acme", [posting("a")], T1 + timedelta(minutes=61), seen_refresh=timedelta(hours=1))
    assert job_rows(store)["a"]["last_seen_at"] == T1 + timedelta(minutes=61)
    assert job_rows(store)["a"]["updated_at"] == T1


# --- snapshot time and sync rows ----------------------------------------------------------------

def test_last_snapshot_at_only_moves_forward(store_url):
    store = Store(store_url)
    apply(store, "acme", [posting("a")], T1, snapshot_at=T2)
    apply(store, "acme", [posting("a")], T2, snapshot_at=T1)  # an older snapshot applied late
    assert store.last_snapshot_at(SOURCE, "acme") == T2
    apply(store, "acme", [posting("a")], T3, snapshot_at=T3)
    assert store.last_snapshot_at(SOURCE, "acme") == T3
    apply(store, "acme", [posting("a")], T3)  # no snapshot time: left as it was
    assert store.last_snapshot_at(SOURCE, "acme") == T3


def test_record_sync_writes_one_finished_row(store_url):
    store = Store(store_url)
    sync_id = store.record_sync(SOURCE, "acme", "failed", run_id="run-9", error="acme.json: not valid JSON",
                                counts={"found": 0, "bad": 2, "bogus": 5})
    row = sync_row(store, sync_id)
    assert row["status"] == "failed" and row["error"] == "acme.json: not valid JSON"
    assert row["bad"] == 2 and row["new"] == 0 and row["finished_at"] is not None
    assert [s.id for s in store.syncs_for_run("run-9")] == [sync_id]
    assert store.syncs_for_run("run-9")[0].counts["bad"] == 2


def test_a_syncs_duration_is_from_its_start_to_its_end(store_url):
    """Computed by the database in the UPDATE that ends the sync, from the row's own started_at."""
    store = Store(store_url)
    started = datetime.now(timezone.utc) - timedelta(seconds=90, milliseconds=250)
    sync_id = store.start_sync(SOURCE, "acme", run_id=None, started_at=started)
    store.finish_sync(sync_id, "success", counts={"found": 1})
    row = sync_row(store, sync_id)
    assert row["duration_seconds"] == pytest.approx((as_utc(row["finished_at"]) - started).total_seconds(), abs=0.01)
    assert 90.2 <= row["duration_seconds"] < 100


def test_non_utc_now_is_stored_as_the_same_instant(store_url):
    """SQLite's DateTime drops the offset: the store converts to UTC on the way in."""
    store = Store(store_url)
    berlin = timezone(timedelta(hours=1))
    apply(store, "acme", [posting("a")], T1.astimezone(berlin))
    assert job_rows(store)["a"]["first_seen_at"] == T1


# --- property: apply twice is a no-op, and the active jobs are the snapshot -----------------------

TITLES = st.sampled_from(["Baker", "Driver", "Chef", "Clerk"])
SNAPSHOTS = st.dictionaries(st.sampled_from([f"id-{i}" for i in range(10)]), TITLES, max_size=10)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(SNAPSHOTS, min_size=1, max_size=4))
def test_apply_twice_is_a_no_op_and_active_jobs_are_the_snapshot(sqlite_url, snapshots):
    store = Store(sqlite_url)
    board = f"b-{uuid.uuid4().hex[:10]}"  # one store for all examples: a fresh board for each
    for step, snapshot in enumerate(snapshots):
        postings = [posting(i, board=board, title=t) for i, t in snapshot.items()]
        now = T1 + timedelta(hours=step)
        apply(store, board, postings, now)
        active = active_ids(store, board)
        assert active == set(snapshot)
        _, again = apply(store, board, postings, now + timedelta(minutes=1))
        assert again.writes == 0
        assert sorted(again.unchanged) == sorted(snapshot)
        assert active_ids(store, board) == active
        current = job_rows(store, board)
        assert {i: current[i]["title"] for i in snapshot} == snapshot


@pytest.mark.parametrize("small_read", [2_000, 0], ids=["driver-rows", "copy"])
def test_the_stored_state_reads_back_every_id_exactly(store_url, small_read, monkeypatch):
    # PostgreSQL reads a large board's state through COPY as CSV (a small one as the driver's rows): ids
    # that CSV quotes or a reader would take for numbers or missing values must come back as the same text
    from jobsync_pipeline.store import bulk
    monkeypatch.setattr(bulk, "SMALL_READ", small_read)
    odd = ["007", "7", "NA", "null", "N/A", "1e5", "a,b", 'say "hi"', "line\nbreak", "tab\there", " padded ",
           "back\\slash", "\\N", "東京-1", "emoji-\U0001f600", "-9223372036854775808"]
    store = Store(store_url)
    _, first = apply(store, "acme", [posting(i) for i in odd], T1)
    assert sorted(first.new) == sorted(odd)
    _, again = apply(store, "acme", [posting(i) for i in odd[1:]], T2)
    assert again.counts() == {"new": 0, "changed": 0, "unchanged": len(odd) - 1, "reactivated": 0, "expired": 1, "already_expired": 0}
    assert list(again.expired) == ["007"]


def test_an_id_holding_the_sqlite_read_separator_reads_back_exactly(store_url):
    """SQLite reads a board's state as one text per column, split on \\x1f: an id holding it makes the
    read fall back to rows, and every id still comes back as stored."""
    ids = ["a\x1fb", "c", "d,e", "f\x1f"]
    store = Store(store_url)
    apply(store, "acme", [posting(i) for i in ids], T1)
    _, again = apply(store, "acme", [posting(i) for i in ids[1:]], T2)
    assert sorted(again.unchanged) == sorted(ids[1:]) and list(again.expired) == ["a\x1fb"]


def test_a_dead_runs_running_syncs_end_failed_as_interrupted(store_url):
    store = Store(store_url)
    running = store.start_sync(SOURCE, "acme", run_id="dead-run")
    store.record_sync(SOURCE, "globex", "success", run_id="dead-run")
    store.start_sync(SOURCE, "acme", run_id="live-run")

    assert store.interrupt_syncs("dead-run", "the jobsync process (pid 42) running it is gone") == 1

    result = store.sync_result(running)
    assert (result.status, result.error) == ("failed", "interrupted: the jobsync process (pid 42) running it is gone")
    assert [s.status for s in store.syncs_for_run("dead-run")] == ["failed", "success"]
    assert [s.status for s in store.syncs_for_run("live-run")] == ["running"]


def test_processes_opening_one_new_sqlite_file_at_once_all_get_in(tmp_path):
    """Switching a new file to WAL takes its exclusive lock, and SQLite refuses a second opener at once
    ("database is locked", no busy wait): two `jobsync` processes sharing a fresh pacing file failed so.
    Racy by nature: several rounds of six openers (before the fix, about one round in four lost one)."""
    import multiprocessing

    from jobsync_pipeline_tests.sqlite_openers import open_store

    context = multiprocessing.get_context("spawn")
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        barrier = context.Barrier(6)
        openers = [context.Process(target=open_store, args=(url, barrier)) for _ in range(6)]
        for process in openers:
            process.start()
        for process in openers:
            process.join(60)
        assert [p.exitcode for p in openers] == [0] * 6, f"round {round_}"


def test_the_newest_payloads_of_many_boards_are_read_at_once_within_a_byte_budget(store_url):
    store = Store(store_url)
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for board, body in (("a", b"x" * 100), ("a", b"y" * 100), ("c", b"z" * 300), ("d", b"w" * 10)):
        store.archive_raw("greenhouse", RawPayload(board=board, location=f"{board}.json", body=body, fetched_at=at))
    raws, covered = store.latest_raws("greenhouse", ["a", "b", "c", "d"], budget_bytes=10_000)
    assert covered == ["a", "b", "c", "d"] and {b: r.body[:1] for b, r in raws.items()} == {
        "a": b"y", "c": b"z", "d": b"w"}  # b was never archived
    raws, covered = store.latest_raws("greenhouse", ["a", "b", "c", "d"], budget_bytes=150)
    assert covered == ["a", "b"] and set(raws) == {"a"}  # c would pass the budget: read with the next batch
    raws, covered = store.latest_raws("greenhouse", ["c", "d"], budget_bytes=1)
    assert covered == ["c"] and set(raws) == {"c"}  # the first board's payload, whatever its size


def test_the_guard_histories_of_many_boards_are_what_each_boards_history_says(store_url):
    store = Store(store_url)
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for board, outcomes in (("grown", [("success", 4, None), ("success", 9, None)]),
                            ("emptied", [("success", 12, None), ("guarded", 0, "empty_held"),
                                         ("failed", 0, None), ("guarded", 0, "empty_held")]),
                            ("refilled", [("guarded", 0, "empty_held"), ("success", 7, None)]),
                            ("quiet", [])):
        store.ensure_boards("greenhouse", [board])
        for hour, (status, found, decision) in enumerate(outcomes):
            sync_id = store.start_sync("greenhouse", board, run_id="r", started_at=at + timedelta(hours=hour))
            store.finish_sync(sync_id, status, counts={"found": found}, expiry_guard=decision)
    for extra in range(6):  # only the newest five count
        sync_id = store.start_sync("greenhouse", "grown", run_id="r", started_at=at + timedelta(days=1, hours=extra))
        store.finish_sync(sync_id, "success", counts={"found": 10 + extra})
    histories = store.guard_histories("greenhouse", ["grown", "emptied", "refilled", "quiet"])
    assert histories == {
        "grown": ([15, 14, 13, 12, 11], None),
        # the held-empty run began with the first empty answer after the last applied sync; a failed sync
        # in between neither starts nor ends it
        "emptied": ([12], at + timedelta(hours=1)),
        "refilled": ([7], None),  # applied since its empty answer: no run of held empty answers
        "quiet": ([], None)}


@pytest.mark.parametrize("key_table_from", [0, 10_000], ids=["key table", "ids bound"])
def test_a_diff_writes_the_same_whether_its_keys_go_through_a_table_or_are_bound(store_url, monkeypatch, key_table_from):
    from jobsync_pipeline.store import apply as apply_module
    monkeypatch.setattr(apply_module, "SMALL_DIFF_KEYS", key_table_from - 1)
    store = Store(store_url)
    apply(store, "acme", [posting(str(i)) for i in range(1, 9)], T1)
    sync_id, diff = apply(store, "acme", [posting("1"), posting("2", title="Changed"), *map(posting, "3456"),
                                          posting("new")], T2)
    assert events(store, sync_id) == sorted([("2", "changed"), ("7", "expired"), ("8", "expired"), ("new", "new")])
    rows_now = job_rows(store)
    assert {i for i, r in rows_now.items() if r["expired_reason"] == "absent"} == {"7", "8"}
    assert rows_now["2"]["title"] == "Changed" and rows_now["new"]["first_seen_at"] == T2
    sync_id, _ = apply(store, "acme", [posting(str(i)) for i in range(1, 9)], T3)  # 7 and 8 come back
    assert events(store, sync_id) == sorted([("2", "changed"), ("7", "reactivated"), ("8", "reactivated"),
                                             ("new", "expired")])


# --- known records: jobs recognised by the digest of their record -----------------------------------

def _texts(*jobs: dict) -> list[bytes]:
    return [json.dumps({"title": f"Job {job['id']}", **job}).encode() for job in jobs]


def _apply_texts(store: Store, texts: list[bytes], now: datetime, *, known: bool = True, board: str = "acme"):
    """A company file's jobs (as their JSON texts) parsed as a sync parses them: with the board's known
    records (`known`), or without digests (as before they were kept), then applied."""
    from jobsync_pipeline.sources.company_files import JobNormalizer

    store.ensure_boards(SOURCE, [board])
    normalizer = JobNormalizer("Acme")
    frame = normalizer.frame_texts(texts, known=store.known_records(SOURCE, board)) if known else normalizer.frame_texts(texts)
    sync_id = store.start_sync(SOURCE, board, run_id=None)
    return frame, store.apply_snapshot(SOURCE, board, [frame], sync_id=sync_id, now=now)


def test_known_records_are_the_open_jobs_with_the_digests_of_their_records(store_url):
    store = Store(store_url)
    frame, diff = _apply_texts(store, _texts({"id": "a"}, {"id": "b"}, {"id": "c"}), T1)
    assert diff.counts()["new"] == 3 and not frame["known"].any()
    rows, known = job_rows(store), store.known_records(SOURCE, "acme")
    assert sorted(zip(known.digests.tolist(), known.external_ids, known.content_hashes.tolist())) == \
        sorted((rows[i]["record_hash"], i, rows[i]["content_hash"]) for i in "abc")
    frame, diff = _apply_texts(store, _texts({"id": "a"}, {"id": "b", "location": "Leeds"}), T2)
    assert frame.set_index("external_id")["known"].to_dict() == {"a": True, "b": False}
    assert diff.counts() == {"new": 0, "changed": 1, "unchanged": 1, "reactivated": 0, "expired": 1, "already_expired": 0}
    rows = job_rows(store)
    assert rows["b"]["location"] == "Leeds" and rows["b"]["record_hash"] == frame.set_index("external_id")["record_hash"]["b"]
    # the expired job is not known: listed again, it is parsed, and reactivated
    assert set(store.known_records(SOURCE, "acme").external_ids) == {"a", "b"}
    frame, diff = _apply_texts(store, _texts({"id": "a"}, {"id": "b", "location": "Leeds"}, {"id": "c"}), T2 + timedelta(hours=1))
    assert frame.set_index("external_id")["known"].to_dict() == {"a": True, "b": True, "c": False}
    assert diff.counts()["reactivated"] == 1 and active_ids(store) == {"a", "b", "c"}
    assert set(store.known_records(SOURCE, "acme").external_ids) == {"a", "b", "c"}  # c written with its digest


def test_a_snapshot_recognised_twice_writes_nothing_the_second_time(store_url):
    store = Store(store_url)
    texts = _texts(*({"id": str(n)} for n in range(20)))
    _apply_texts(store, texts, T1)
    before, events_before = job_rows(store), events(store)
    frame, diff = _apply_texts(store, texts, T1 + timedelta(hours=1))
    assert frame["known"].all() and diff.writes == 0 and diff.counts()["unchanged"] == 20
    assert job_rows(store) == before and events(store) == events_before


def test_known_records_that_no_longer_match_the_board_write_nothing(store_url):
    """A snapshot recognised from known records read before another sync changed the board: its apply
    refuses, having written nothing, and the snapshot parsed again applies."""
    from jobsync_pipeline.sources.company_files import JobNormalizer
    from jobsync_pipeline.store.apply import KnownRecordsMoved

    store = Store(store_url)
    texts = _texts({"id": "a"}, {"id": "b"})
    _apply_texts(store, texts, T1)
    known = store.known_records(SOURCE, "acme")
    _apply_texts(store, _texts({"id": "a", "location": "York"}, {"id": "b"}), T2)  # the other sync
    before, events_before = job_rows(store), events(store)
    stale = JobNormalizer("Acme").frame_texts(texts, known=known)
    sync_id = store.start_sync(SOURCE, "acme", run_id=None)
    with pytest.raises(KnownRecordsMoved):
        store.apply_snapshot(SOURCE, "acme", [stale], sync_id=sync_id, now=T2 + timedelta(hours=1))
    assert job_rows(store) == before and events(store) == events_before
    _, diff = _apply_texts(store, texts, T2 + timedelta(hours=2))
    assert diff.counts()["changed"] == 1 and job_rows(store)["a"]["location"] == ""


def test_jobs_written_without_digests_get_their_records_once(store_url):
    store = Store(store_url)
    texts = _texts({"id": "a"}, {"id": "b"})
    _apply_texts(store, texts, T1, known=False)  # written before digests were kept
    before = job_rows(store)
    assert {row["record_hash"] for row in before.values()} == {None} and not len(store.known_records(SOURCE, "acme"))
    frame, diff = _apply_texts(store, texts, T1 + timedelta(hours=1))
    assert not frame["known"].any() and diff.writes == 0
    filled = job_rows(store)
    digests = frame.set_index("external_id")["record_hash"].to_dict()
    assert {i: row["record_hash"] for i, row in filled.items()} == digests
    assert {i: {**row, "record_hash": None} for i, row in filled.items()} == before  # nothing else moved
    frame, diff = _apply_texts(store, texts, T1 + timedelta(hours=2))
    assert frame["known"].all() and job_rows(store) == filled



@pytest.mark.parametrize("inline_rows", [10**9, 0], ids=["inline", "threaded"])
def test_a_snapshot_recognised_by_the_state_its_apply_reads_writes_what_one_recognised_before_does(
        store_url, monkeypatch, inline_rows):
    """`chunks` as a function of the known records: called with those of the state the apply reads under its
    lock, it gets what `Store.known_records` gives, and the apply writes the same rows and events."""
    from jobsync_pipeline.sources.company_files import JobNormalizer
    from jobsync_pipeline.store import apply as apply_module
    from jobsync_pipeline.store.apply import Recognised

    monkeypatch.setattr(apply_module, "INLINE_ROWS", inline_rows)  # 0: PostgreSQL's threaded apply
    store = Store(store_url)
    first = _texts(*({"id": f"j{i}"} for i in range(30)))
    kept = _texts(*({"id": f"j{i}", "location": "Leeds" if i % 3 == 0 else ""} for i in range(5, 15)))
    second = _texts(*({"id": f"j{i}", "location": "Leeds" if i % 3 == 0 else "", **({"title": "Renamed"} if i == 7 else {})}
                      for i in range(5, 40)))
    for board in ("before", "within"):
        _apply_texts(store, first, T1, board=board)
        _apply_texts(store, kept, T1 + timedelta(minutes=5), board=board)  # j5-j14 open, 20 jobs expired
    _, expected = _apply_texts(store, second, T2, board="before")
    given = {}

    def parse(known):
        given["known"] = known
        return Recognised([JobNormalizer("Acme").frame_texts(second, known=known)], T2, listed_ids=["j99"])

    store.ensure_boards(SOURCE, ["within"])
    sync_id = store.start_sync(SOURCE, "within", run_id=None)
    diff = store.apply_snapshot(SOURCE, "within", parse, sync_id=sync_id, now=T2)
    read = store.known_records(SOURCE, "within")
    assert diff.counts() == expected.counts() == {"new": 10, "changed": 1, "unchanged": 9, "reactivated": 15,
                                                  "expired": 0, "already_expired": 0}
    known_then = given["known"]
    assert len(known_then) == 10 and set(known_then.external_ids) == {f"j{i}" for i in range(5, 15)}

    def comparable(board: str) -> dict:
        return {i: {k: v for k, v in row.items() if k not in ("id", "board")} for i, row in job_rows(store, board).items()}

    assert comparable("within") == comparable("before") and len(read) == 35
    assert store.sync_results([sync_id])[sync_id].counts["new"] == 10
    assert store.last_snapshot_at(SOURCE, "within") == T2  # the parse's snapshot_at is the one recorded


def test_a_parse_inside_the_apply_that_fails_writes_nothing(store_url):
    store = Store(store_url)
    _apply_texts(store, _texts({"id": "a"}, {"id": "b"}), T1)
    before, events_before = job_rows(store), events(store)
    sync_id = store.start_sync(SOURCE, "acme", run_id=None)

    def parse(known):
        raise ValueError("the file is not JSON")

    with pytest.raises(ValueError, match="not JSON"):
        store.apply_snapshot(SOURCE, "acme", parse, sync_id=sync_id, now=T2)
    assert job_rows(store) == before and events(store) == events_before
    _, diff = _apply_texts(store, _texts({"id": "a"}), T2)  # the board is not left locked
    assert diff.counts()["expired"] == 1


def test_postgresql_reads_a_boards_state_from_one_covering_index(postgres_url):
    """Migrations 0017 and 0018: every column the apply reads of its board's jobs (the id too) is in
    ix_jobs_board_state, so PostgreSQL can answer the state and known-records reads from the index alone."""
    with engine_for(postgres_url).connect() as conn:
        definition = conn.scalar(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_jobs_board_state'"))
        conn.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(conn.scalars(sa.text(
            "EXPLAIN SELECT external_id, content_hash, coalesce(record_hash, 0), id, expired_at IS NULL, "
            "last_seen_at < now(), valid_through < now() FROM jobs WHERE source = 'a' AND board = 'b'")))
    assert definition.endswith("(source, board) INCLUDE (id, external_id, content_hash, record_hash, expired_at, "
                               "last_seen_at, valid_through)")
    assert "Index Only Scan using ix_jobs_board_state" in plan


@pytest.mark.parametrize("index, query", [
    ("ix_jobs_search_vector", "search_vector @@ to_tsquery('simple', 'python')"),
    ("ix_jobs_title_vector", "title_vector @@ to_tsquery('simple', 'python')"),
    ("ix_jobs_facets", "facets @@ to_tsquery('simple', 'remote:B')"),
    ("ix_jobs_dedupe_key", "dedupe_key = 'acme|python engineer|london'"),
    ("ix_jobs_company_key", "company_key = 'acme'"),
])
def test_postgresql_search_and_dedupe_indexes_hold_open_jobs_and_serve_their_queries(postgres_url, index, query):
    """Migration 0019: an expired job's row version enters none of these indexes, and the searches and dedupe
    checks, which all ask for open jobs, still read through them."""
    with engine_for(postgres_url).connect() as conn, conn.begin() as transaction:
        definition = conn.scalar(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :i"), {"i": index})
        # the table is empty: the planner would pick any index whose predicate holds, so the others go (rolled back)
        for other in conn.scalars(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'jobs' AND indexname "
                                          "LIKE 'ix_jobs_%' AND indexname != :i"), {"i": index}).all():
            conn.execute(sa.text(f"DROP INDEX {other}"))
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(conn.scalars(sa.text(f"EXPLAIN SELECT id FROM jobs WHERE {query} AND expired_at IS NULL")))
        transaction.rollback()
    assert definition.endswith("WHERE (expired_at IS NULL)")
    assert f"Bitmap Index Scan on {index}" in plan or f"Index Scan using {index}" in plan, plan


# --- a large snapshot: prepared on another thread, in slices, while the store writes ----------------

def _snapshot(n: int, version: int) -> list[Posting]:
    """n jobs; the version changes a third of them, drops a tenth and adds a tenth."""
    kept = [i for i in range(n) if version == 1 or i % 10]
    added = range(n, n + n // 10) if version == 2 else ()
    return [posting(f"job-{i}", title=f"Job {i} v{version if i % 3 == 0 else 1}",
                    description=f"Role {i}: build\tthings\\daily\n" * 3) for i in [*kept, *added]]


@pytest.mark.parametrize("small_diff_keys", [500, 10], ids=["bound-keys", "key-table"])
def test_a_snapshot_prepared_on_another_thread_writes_what_one_prepared_inline_does(store_url, monkeypatch,
                                                                                     small_diff_keys):
    """On PostgreSQL the threaded apply also reads the jobs' ids and takes the new ones from the sequence,
    and writes a large diff's events by COPY instead of joining them back to the jobs."""
    from jobsync_pipeline.store import apply as apply_module
    monkeypatch.setattr(apply_module, "SMALL_DIFF_KEYS", small_diff_keys)
    store = Store(store_url)

    def apply_both(version: int, now: datetime) -> dict:
        diffs = {}
        for board, inline_rows, slice_rows in (("inline", 10**9, 10**9), ("threaded", 0, 70)):
            monkeypatch.setattr(apply_module, "INLINE_ROWS", inline_rows)
            monkeypatch.setattr(apply_module, "SLICE_ROWS", slice_rows)
            sync_id, diff = apply(store, board, _snapshot(400, version), now)
            diffs[board] = diff.counts()
            written[board] = events(store, sync_id)
        return diffs

    written = {}
    for version, now in ((1, T1), (2, T2)):
        diffs = apply_both(version, now)
        assert diffs["threaded"] == diffs["inline"]
        assert written["threaded"] == written["inline"]
    assert diffs["inline"] == {"new": 40, "changed": 120, "unchanged": 240, "reactivated": 0, "expired": 40,
                               "already_expired": 0}

    def comparable(board: str) -> dict:
        return {external_id: {k: v for k, v in row.items() if k not in ("id", "board")}
                for external_id, row in job_rows(store, board).items()}

    assert comparable("threaded") == comparable("inline")
    assert len(comparable("inline")) == 440


def test_a_failed_write_stops_the_preparing_thread_and_writes_nothing(store_url, monkeypatch):
    import threading

    from jobsync_pipeline.store import apply as apply_module
    from jobsync_pipeline.store.bulk import EncodedInsert
    monkeypatch.setattr(apply_module, "INLINE_ROWS", 0)
    monkeypatch.setattr(apply_module, "SLICE_ROWS", 50)
    store = Store(store_url)
    apply(store, "acme", _snapshot(400, 1), T1)
    before = job_rows(store)
    sent, send = [], EncodedInsert.send

    def send_then_fail(self, conn):
        sent.append(1)
        if len(sent) == 3:
            raise sa.exc.OperationalError("COPY", {}, Exception("the server went away"))
        return send(self, conn)

    monkeypatch.setattr(EncodedInsert, "send", send_then_fail)
    with pytest.raises(sa.exc.OperationalError, match="went away"):
        apply(store, "acme", _snapshot(400, 2), T2)
    assert job_rows(store) == before
    assert not [t for t in threading.enumerate() if t.name == "jobsync-read-ahead"]


@pytest.mark.parametrize("inline_rows", [10**9, 0], ids=["inline", "threaded"])
def test_a_refused_expiry_takes_back_what_the_chunks_before_it_wrote(store_url, monkeypatch, inline_rows):
    """The guard sees the whole diff after the last chunk, when the new jobs of every chunk are written (on
    PostgreSQL's threaded apply, by COPY as each chunk comes): a refusal still takes all of it back."""
    from jobsync_pipeline.core.expiry_guard import GuardVerdict
    from jobsync_pipeline.store import apply as apply_module
    from jobsync_pipeline.store.apply import ExpiryRefused
    monkeypatch.setattr(apply_module, "INLINE_ROWS", inline_rows)
    monkeypatch.setattr(apply_module, "SLICE_ROWS", 50)
    store = Store(store_url)
    apply(store, "acme", _snapshot(400, 1), T1)
    before, events_before = job_rows(store), events(store)
    seen = {}

    def refuse(diff):
        seen.update(diff.counts())
        return GuardVerdict(ok=False, found=440, median=400.0, would_expire=len(diff.expired), reason="a test")

    with pytest.raises(ExpiryRefused):
        apply(store, "acme", _snapshot(400, 2), T2, guard=refuse)
    assert seen["changed"] == 120 and seen["expired"] == 40
    assert job_rows(store) == before and events(store) == events_before
    _, diff = apply(store, "acme", _snapshot(400, 2), T2)  # the board is not left locked, nor a table behind
    assert diff.counts()["changed"] == 120


# --- SQLite: new jobs staged and inserted by one statement, changed ones written without their indexes -

def _integrity(store: Store) -> None:
    """SQLite: every index matches the jobs table, and the full-text index matches the jobs it indexes."""
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        conn.exec_driver_sql("INSERT INTO jobs_fts(jobs_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("stage_new_from", [10**9, 1], ids=["inserted", "staged"])
def test_new_jobs_staged_on_sqlite_write_what_inserted_ones_do(sqlite_url, monkeypatch, stage_new_from):
    """A chunk's new jobs go to a temporary table and into jobs by one statement (FTS5 writes its index
    once, not a segment per job): the same rows, events and full-text index as inserted row by row."""
    from jobsync_pipeline.store import apply as apply_module
    monkeypatch.setattr(apply_module, "STAGE_NEW_FROM", stage_new_from)
    monkeypatch.setattr(apply_module, "SLICE_ROWS", 70)  # several chunks, each staging its new jobs
    store = Store(sqlite_url)
    sync_1, diff_1 = apply(store, "acme", _snapshot(400, 1), T1)
    sync_2, diff_2 = apply(store, "acme", _snapshot(400, 2), T2)
    assert diff_1.counts()["new"] == 400 and diff_2.counts()["new"] == 40
    assert events(store, sync_1) == sorted((f"job-{i}", "new") for i in range(400))
    assert [e for e in events(store, sync_2) if e[1] == "new"] == sorted((f"job-{i}", "new") for i in range(400, 440))
    written = job_rows(store, "acme")
    assert len(written) == 440 and written["job-439"]["first_seen_at"] == T2
    assert written["job-439"]["description_html"] and written["job-439"]["dedupe_key"]
    # in the snapshot's order: the ids follow the snapshot's
    assert sorted(written, key=lambda i: written[i]["id"])[:3] == ["job-0", "job-1", "job-2"]
    _integrity(store)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs_fts WHERE jobs_fts MATCH 'daily'").scalar() == 440
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs_fts WHERE jobs_fts MATCH 'title:439'").scalar() == 1


def _jobs_in_the_database_file(store: Store, board: str) -> int:
    """The board's jobs the database file holds by itself, without its WAL: what checkpoints copied there."""
    import sqlite3

    file = sqlite3.connect(f"file:{store.engine.url.database}?immutable=1", uri=True)
    try:
        return file.execute("SELECT count(*) FROM jobs WHERE board = ?", (board,)).fetchone()[0]
    finally:
        file.close()


def test_a_large_apply_on_sqlite_commits_without_its_checkpoint_and_a_thread_checkpoints_it(sqlite_url, monkeypatch):
    """A large apply's commit leaves the WAL to a thread of its own (SQLite checkpoints inside the commit
    otherwise); the connection goes back to the pool checkpointing again, after a failed apply too. A small
    apply checkpoints as every transaction does."""
    from contextlib import ExitStack

    from jobsync_pipeline.core.expiry_guard import GuardVerdict
    from jobsync_pipeline.store import apply as apply_module
    from jobsync_pipeline.store import engine as engine_module
    from jobsync_pipeline.store.apply import ExpiryRefused
    from jobsync_pipeline.store.engine import wait_for_checkpoints

    store = Store(sqlite_url)
    started, checkpoint = [], engine_module._checkpoint

    def recorded(engine):
        started.append(_jobs_in_the_database_file(store, "acme"))
        checkpoint(engine)

    monkeypatch.setattr(engine_module, "_checkpoint", recorded)
    monkeypatch.setattr(engine_module, "WAL_AUTOCHECKPOINT_PAGES", 50)  # a small board checkpoints at once
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=50")
    apply(store, "small", _snapshot(400, 1), T1)
    assert not started and _jobs_in_the_database_file(store, "small") == 400  # checkpointed by its commit

    monkeypatch.setattr(apply_module, "INLINE_ROWS", 0)
    apply(store, "acme", _snapshot(400, 1), T1)
    wait_for_checkpoints()
    assert started == [0]  # committed with none of its jobs in the file: they were in the WAL alone
    assert _jobs_in_the_database_file(store, "acme") == 400  # until the thread's checkpoint copied them
    with pytest.raises(ExpiryRefused):
        apply(store, "acme", _snapshot(400, 2), T2,
              guard=lambda diff: GuardVerdict(ok=False, found=440, median=400.0, would_expire=40, reason="a test"))
    wait_for_checkpoints()
    with ExitStack() as stack:  # every pooled connection at once: none left with its checkpoints off
        pooled = [stack.enter_context(store.engine.connect()) for _ in range(store.engine.pool.checkedin())]
        assert {conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() for conn in pooled} <= {50, 1000}
    assert len(job_rows(store, "acme")) == 400


def test_a_changed_or_reactivated_job_is_written_whole_and_stays_in_its_indexes(store_url):
    """On SQLite the changed jobs' indexed columns are written only where they differ: a job whose title,
    place or date changed, and a reactivated one, are in the indexes as a new job with the same posting
    is; one whose description alone changed keeps its entries."""
    store = Store(store_url)
    first = [posting("a"), posting("b"), posting("c", posted_date="2026-01-05"), posting("d"), posting("e")]
    apply(store, "acme", first, T1)
    apply(store, "acme", [p for p in first if p.external_id != "d"], T2)  # d expires

    def last(board: str) -> list[Posting]:
        return [posting("a", board, title="Principal Job a"), posting("b", board, description="A new description"),
                posting("c", board, posted_date="2026-02-01", location="Lisbon, Portugal"), posting("d", board),
                posting("e", board)]

    _, diff = apply(store, "acme", last("acme"), T3)
    assert diff.counts()["changed"] == 3 and diff.counts()["reactivated"] == 1
    apply(store, "fresh", last("fresh"), T3)

    def comparable(board: str) -> dict:
        return {i: {k: v for k, v in row.items() if k not in ("id", "board", "first_seen_at")}
                for i, row in job_rows(store, board).items() if i != "e"}  # e: unchanged, not written

    assert comparable("acme") == comparable("fresh")
    key_a = job_rows(store, "acme")["a"]["dedupe_key"]
    assert key_a != job_rows(store, "acme")["b"]["dedupe_key"]
    with store.engine.connect() as conn:
        # read through the partial index the search's order uses (SQLite: forced; PostgreSQL: its order)
        order = list(conn.exec_driver_sql(
            "SELECT external_id FROM jobs INDEXED BY ix_jobs_open_newest WHERE board = 'acme' AND expired_at IS NULL "
            "ORDER BY posted_date DESC, id DESC" if conn.dialect.name == "sqlite" else
            "SELECT external_id FROM jobs WHERE board = 'acme' AND expired_at IS NULL "
            "ORDER BY posted_date DESC NULLS LAST, id DESC").scalars())
        same_key = conn.scalar(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.dedupe_key == key_a))
    assert order[0] == "c" and set(order) == {"a", "b", "c", "d", "e"}
    assert same_key == 2  # a's new key, found through its index: on acme and on fresh
    if store.engine.dialect.name == "sqlite":
        _integrity(store)
