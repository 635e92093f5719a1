"""The store's feed expiry, derived columns and cross-source duplicates, on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from jobsync_pipeline.core.models import Posting, PostingDetails, postings_frame
from jobsync_pipeline.store.apply import Expiry
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import possible_duplicates
from jobsync_pipeline_tests.test_repo import events, job_rows, rows, sync_row

T0 = datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)
FEED = Expiry(complete=False, max_age=timedelta(days=30))


def feed_posting(external_id: str, *, source: str = "himalayas", valid_through: datetime | None = None,
                 **fields) -> Posting:
    details = PostingDetails(valid_through=valid_through.isoformat() if valid_through else None,
                             description_format="html", description_raw=fields.pop("html", None))
    return Posting(source=source, board="all", external_id=external_id,
                   **{"title": f"Engineer {external_id}", "company": "Acme", **fields}, details=details)


def apply(store: Store, source: str, board: str, postings: list[Posting], now: datetime, *,
          expiry: Expiry = FEED, jobs_board: str | None = "all"):
    store.ensure_boards(source, [board])
    sync_id = store.start_sync(source, board, run_id=None)
    diff = store.apply_snapshot(source, board, [postings_frame(postings)], sync_id=sync_id, now=now,
                                expiry=expiry, jobs_board=jobs_board)
    return sync_id, diff


def test_a_feed_does_not_expire_what_it_stops_listing(store_url):
    store = Store(store_url)
    apply(store, "himalayas", "all", [feed_posting("a"), feed_posting("b")], T0)
    _, diff = apply(store, "himalayas", "all", [feed_posting("a")], T0 + timedelta(days=1))
    assert len(diff.expired) == 0
    assert {i for i, r in job_rows(store).items() if r["expired_at"] is None} == {"a", "b"}


def test_a_feed_job_not_seen_for_max_age_expires_as_too_old_and_comes_back(store_url):
    store = Store(store_url)
    apply(store, "himalayas", "all", [feed_posting("a"), feed_posting("b")], T0)
    # a is seen again every few days; b never again
    for day in (10, 20, 29):
        apply(store, "himalayas", "all", [feed_posting("a")], T0 + timedelta(days=day))
    sync_id, diff = apply(store, "himalayas", "all", [feed_posting("a")], T0 + timedelta(days=31))
    assert list(diff.expired) == ["b"]
    jobs = job_rows(store)
    assert jobs["b"]["expired_reason"] == "too_old" and jobs["a"]["expired_at"] is None
    assert ("b", "expired") in events(store, sync_id)
    assert sync_row(store, sync_id)["expired"] == 1
    _, back = apply(store, "himalayas", "all", [feed_posting("a"), feed_posting("b")], T0 + timedelta(days=32))
    assert list(back.reactivated) == ["b"]
    assert job_rows(store)["b"]["expired_at"] is None and job_rows(store)["b"]["expired_reason"] is None


def test_a_feed_job_expires_at_its_own_expiry_date(store_url):
    store = Store(store_url)
    apply(store, "himalayas", "all", [feed_posting("a", valid_through=T0 + timedelta(days=5)), feed_posting("b")], T0)
    _, early = apply(store, "himalayas", "all", [feed_posting("b")], T0 + timedelta(days=4))
    assert len(early.expired) == 0
    sync_id, diff = apply(store, "himalayas", "all", [feed_posting("b")], T0 + timedelta(days=6))
    assert list(diff.expired) == ["a"]
    assert job_rows(store)["a"]["expired_reason"] == "past_expiry"


def test_a_feed_listing_a_job_past_its_expiry_date_does_not_add_it(store_url):
    store = Store(store_url)
    _, diff = apply(store, "himalayas", "all", [feed_posting("old", valid_through=T0 - timedelta(days=1)),
                                                 feed_posting("b")], T0)
    assert list(diff.new) == ["b"] and "old" not in job_rows(store)
    assert list(diff.already_expired) == ["old"] and diff.counts()["already_expired"] == 1


def test_every_found_posting_lands_in_exactly_one_count(store_url):
    # a feed page whose every posting is past its expiryDate: 30 found, 30 already expired, nothing else
    store = Store(store_url)
    past = [feed_posting(f"p{i}", valid_through=T0 - timedelta(days=1)) for i in range(30)]
    sync_id, diff = apply(store, "himalayas", "all", past, T0)
    row = sync_row(store, sync_id)
    assert (row["new"], row["changed"], row["unchanged"], row["reactivated"], row["already_expired"]) == (0, 0, 0, 0, 30)
    # and on a page that mixes them, found = new + changed + unchanged + reactivated + already_expired
    live = [feed_posting(f"l{i}") for i in range(3)]
    apply(store, "himalayas", "all", live, T0)
    edited = [feed_posting("l0", title="Engineer l0, edited"), feed_posting("l1"), feed_posting("fresh"),
              feed_posting("p0", valid_through=T0 - timedelta(days=1))]
    _, mixed = apply(store, "himalayas", "all", edited, T0 + timedelta(hours=1))
    counts = mixed.counts()
    assert sum(counts[k] for k in ("new", "changed", "unchanged", "reactivated", "already_expired")) == len(edited)
    assert (counts["new"], counts["changed"], counts["unchanged"], counts["already_expired"]) == (1, 1, 1, 1)


def test_a_listed_job_now_past_its_expiry_date_expires(store_url):
    # the store had it open until later; the feed now says its date has passed: it expires, it is not new
    store = Store(store_url)
    apply(store, "himalayas", "all", [feed_posting("a", valid_through=T0 + timedelta(days=30))], T0)
    _, diff = apply(store, "himalayas", "all", [feed_posting("a", valid_through=T0 - timedelta(hours=1))],
                    T0 + timedelta(days=1))
    assert list(diff.expired) == ["a"] and list(diff.already_expired) == ["a"]
    assert job_rows(store)["a"]["expired_reason"] == "past_expiry"


def test_feed_tags_list_into_one_catalog(store_url):
    store = Store(store_url)
    _, dev = apply(store, "remoteok", "dev", [feed_posting("1", source="remoteok"),
                                              feed_posting("2", source="remoteok")], T0)
    _, data = apply(store, "remoteok", "data", [feed_posting("2", source="remoteok"),
                                                feed_posting("3", source="remoteok")], T0 + timedelta(hours=1))
    assert list(dev.new) == ["1", "2"] and list(data.new) == ["3"] and list(data.unchanged) == ["2"]
    assert {r["board"] for r in job_rows(store).values()} == {"all"}
    assert len(job_rows(store)) == 3


def test_a_feed_only_refreshes_last_seen_of_the_jobs_it_lists(store_url):
    store = Store(store_url)
    apply(store, "himalayas", "all", [feed_posting("a"), feed_posting("b")], T0)
    later = T0 + timedelta(days=3)
    apply(store, "himalayas", "all", [feed_posting("a")], later)
    jobs = job_rows(store)
    assert jobs["a"]["last_seen_at"] == later and jobs["b"]["last_seen_at"] == T0


def test_written_rows_carry_derived_columns(store_url):
    store = Store(store_url)
    html = '<p>Build things.</p><script>alert(1)</script><a href="javascript:alert(2)">x</a>'
    posting = Posting(
        source="lever", board="acme", external_id="x1", title="Senior Backend Engineer", company="Acme",
        location="Remote - US", description="Build things.",
        details=PostingDetails(salary_min=60.0, salary_max=80.0, salary_currency="USD",
                               salary_interval="per-hour-wage", workplace_type="remote",
                               description_raw=html, description_format="html"))
    apply(store, "lever", "acme", [posting], T0, expiry=Expiry(), jobs_board=None)
    row = job_rows(store)["x1"]
    assert row["category"] == "engineering"
    assert (row["workplace"], row["workplace_evidence"]) == ("remote", "field")
    assert json.loads(row["workplace_regions"]) == ["US"]
    assert (row["salary_annual_min"], row["salary_annual_max"], row["salary_period"]) == (60 * 2080, 80 * 2080,
                                                                                         "hour")
    assert row["description_raw"] == html
    assert "<script" not in row["description_html"] and "javascript:" not in row["description_html"]
    assert "Build things." in row["description_html"]
    assert row["company_key"] == "acme" and row["dedupe_key"].startswith("acme|")


def test_the_same_job_on_an_ats_and_a_feed_is_one_canonical_job(store_url):
    store = Store(store_url)
    ats = Posting(source="greenhouse", board="acme", external_id="g1", title="Senior Backend Engineer",
                  company="Acme, Inc.", location="Remote - US", url="https://boards.example/acme/g1")
    apply(store, "greenhouse", "acme", [ats], T0, expiry=Expiry(), jobs_board=None)
    feed = feed_posting("r1", source="remoteok", title="Sr. Backend Engineer", company="ACME",
                        location="Remote (US)", url="https://remoteok.example/r1")
    sync_id, _ = apply(store, "remoteok", "dev", [feed], T0 + timedelta(hours=1))
    assert sync_row(store, sync_id)["cross_source_duplicates"] == 1
    with store.engine.connect() as conn:
        canonical = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT source, external_id, listings FROM canonical_jobs"))]
    assert canonical == [{"source": "greenhouse", "external_id": "g1", "listings": 2}]
    links = {r["url"] for r in job_rows(store).values() if r["dedupe_key"] == job_rows(store)["g1"]["dedupe_key"]}
    assert links == {"https://boards.example/acme/g1", "https://remoteok.example/r1"}


def test_an_apply_told_no_other_source_has_boards_looks_for_no_duplicate(store_url):
    store = Store(store_url)
    assert not store.has_other_sources("remoteok")
    ats = Posting(source="greenhouse", board="acme", external_id="g1", title="Senior Backend Engineer",
                  company="Acme, Inc.", location="Remote - US")
    apply(store, "greenhouse", "acme", [ats], T0, expiry=Expiry(), jobs_board=None)
    assert store.has_other_sources("remoteok") and not store.has_other_sources("greenhouse")
    store.ensure_boards("remoteok", ["dev"])
    for told, external_id, found in ((False, "r1", 0), (True, "r2", 1), (None, "r3", 1)):
        feed = feed_posting(external_id, source="remoteok", title="Sr. Backend Engineer", company="ACME",
                            location="Remote (US)")
        sync_id = store.start_sync("remoteok", "dev", run_id=None)
        store.apply_snapshot("remoteok", "dev", [postings_frame([feed])], sync_id=sync_id, now=T0 + timedelta(hours=1),
                             expiry=FEED, jobs_board="all", other_sources=told)
        assert sync_row(store, sync_id)["cross_source_duplicates"] == found, told


def test_weak_evidence_is_recorded_as_a_possible_duplicate_not_merged(store_url):
    store = Store(store_url)
    ats = Posting(source="greenhouse", board="acme", external_id="g1", title="Data Engineer", company="Acme",
                  location="Berlin, Germany")
    apply(store, "greenhouse", "acme", [ats], T0, expiry=Expiry(), jobs_board=None)
    feed = feed_posting("h1", title="Data Engineer", company="Acme", location="Lisbon, Portugal")
    sync_id, _ = apply(store, "himalayas", "all", [feed], T0 + timedelta(hours=1))
    pairs = rows(store, possible_duplicates)
    assert len(pairs) == 1 and 0 < pairs[0]["score"] < 1 and pairs[0]["sync_id"] == sync_id
    assert sync_row(store, sync_id)["possible_duplicates"] == 1
    assert sync_row(store, sync_id)["cross_source_duplicates"] == 0
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM canonical_jobs")) == 2
    # the same pair is recorded once, however often it is seen
    apply(store, "himalayas", "all", [feed_posting("h1", title="Data Engineer", company="Acme",
                                                   location="Lisbon, Portugal", description="new text")],
          T0 + timedelta(hours=2))
    assert len(rows(store, possible_duplicates)) == 1
