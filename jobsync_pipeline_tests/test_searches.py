"""Users, saved searches, the search-run queue and search execution, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jobsync_pipeline.core.models import Posting, PostingDetails, postings_frame
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.apply import Expiry
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.searches import (CANCELLED, CRON, FAILED, PENDING, RUNNING, SUCCESS, InvalidTransition,
                                             NotFound)
from jobsync_pipeline.store.tables import search_runs

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ANN, BOB = "ann@example.com", "bob@example.com"


def posting(i: int, title: str, *, source: str = "greenhouse", board: str = "acme", location: str = "London, UK",
            description: str = "We build things.", posted: str = "2026-11-28", company: str = "Acme",
            **details) -> Posting:
    return Posting(source=source, board=board, external_id=str(i), title=title, company=company, location=location,
                   description=description, posted_date=posted, details=PostingDetails(**details))


CATALOG = [
    posting(1, "Senior Python Engineer", description="Django and Postgres."),
    posting(2, "Data Scientist", description="Python, SQL and statistics."),
    posting(3, "Product Designer", location="Remote - US", workplace_type="remote",
            description="Figma, and prototypes in Node.js."),
    posting(4, "Python Developer", location="Berlin, Germany", salary_min=90000, salary_max=120000,
            salary_currency="EUR", salary_interval="year", posted="2026-10-01"),
    posting(5, "Account Executive", location="Paris, France", description="Selling C++ tooling."),
]


def catalog(store_url: str, postings=CATALOG, source: str = "greenhouse", board: str = "acme") -> Store:
    store = Store(store_url)
    store.ensure_boards(source, [board])
    sync_id = store.start_sync(source, board, run_id=None)
    expiry = Expiry(complete=source != "remoteok", max_age=timedelta(days=30))
    store.apply_snapshot(source, board, [postings_frame(postings)], sync_id=sync_id, now=T0, expiry=expiry,
                         jobs_board="all" if source == "remoteok" else None)
    return store


def users(store: Store):
    searches = store.searches
    searches.add_user(ANN, "Ann", "Europe/London", now=T0)
    searches.add_user(BOB, "Bob", "America/New_York", now=T0)
    return searches


def ids(found) -> list[int]:
    return [r["job_id"] for r in found[0]]


def job_id(store: Store, external_id: str) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT id FROM jobs WHERE external_id = :e"), {"e": external_id})


# --- the queue's state machine ---------------------------------------------------------------------

def test_a_run_goes_pending_running_success_with_its_results(store_url):
    store = catalog(store_url)
    searches = users(store)
    saved = searches.add_search(ANN, SearchParameters(keywords="python"), now=T0)
    run, created = searches.enqueue(ANN, saved.id, client_context='{"device": "phone"}', now=T0)
    assert created and run.status == PENDING and run.attempts == 0 and run.client_context == {"device": "phone"}
    started = searches.start(run.id, dagster_run_id="abc", now=T0 + timedelta(seconds=1))
    assert (started.status, started.attempts, started.started_at) == (RUNNING, 1, T0 + timedelta(seconds=1))
    matches = searches.execute(started_params := SearchParameters.model_validate(started.parameters), now=T0)
    searches.succeed(run.id, *matches, now=T0 + timedelta(seconds=2))
    done = searches.run(ANN, run.id)
    assert (done.status, done.jobs_found, done.completed_at) == (SUCCESS, 3, T0 + timedelta(seconds=2))
    assert started_params.keywords == "python"
    titles = [r["title"] for r in searches.results(ANN, run.id)]
    assert set(titles[:2]) == {"Senior Python Engineer", "Python Developer"} and titles[2] == "Data Scientist"


@pytest.mark.parametrize("path, move, allowed", [
    ((), "start", True), ((), "fail", True), ((), "cancel", True), ((), "succeed", False),
    (("start",), "succeed", True), (("start",), "fail", True), (("start",), "cancel", True), (("start",), "start", False),
    (("start", "succeed"), "start", False), (("start", "succeed"), "cancel", False), (("start", "succeed"), "fail", False),
    (("start", "fail"), "start", False), (("start", "fail"), "succeed", False), (("start", "fail"), "cancel", False),
    (("cancel",), "start", False), (("cancel",), "succeed", False), (("cancel",), "fail", False),
    (("cancel",), "cancel", False),
])
def test_every_transition_is_legal_or_refused(store_url, path, move, allowed):
    store = catalog(store_url)
    searches = users(store)
    saved = searches.add_search(ANN, SearchParameters(remote=True))
    run, _ = searches.enqueue(ANN, saved.id)
    moves = {"start": lambda: searches.start(run.id), "succeed": lambda: searches.succeed(run.id, [], 0),
             "fail": lambda: searches.fail(run.id, "boom"), "cancel": lambda: searches.cancel(ANN, run.id)}
    for step in path:
        moves[step]()
    before = searches.run(ANN, run.id)
    if allowed:
        moves[move]()
        assert searches.run(ANN, run.id).status != before.status
    else:
        with pytest.raises(InvalidTransition, match=f"search run {run.id} is {before.status}"):
            moves[move]()
        assert searches.run(ANN, run.id) == before  # nothing written


def test_a_second_start_of_one_run_is_refused(store_url):
    """Two workers claiming the same run: exactly one gets it."""
    searches = users(catalog(store_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(remote=True)).id)
    searches.start(run.id)
    with pytest.raises(InvalidTransition):
        searches.start(run.id)
    assert searches.run(ANN, run.id).attempts == 1


def test_enqueueing_a_search_with_a_pending_run_returns_that_run(store_url):
    searches = users(catalog(store_url))
    saved = searches.add_search(ANN, SearchParameters(remote=True))
    first, created = searches.enqueue(ANN, saved.id)
    again, created_again = searches.enqueue(ANN, saved.id)
    assert created and not created_again and again.id == first.id
    searches.start(first.id)  # running: a new manual run may queue behind it
    third, created_third = searches.enqueue(ANN, saved.id)
    assert created_third and third.id != first.id


def test_the_database_refuses_a_second_pending_run_of_a_search(store_url):
    searches = users(catalog(store_url))
    saved = searches.add_search(ANN, SearchParameters(remote=True))
    run, _ = searches.enqueue(ANN, saved.id)
    with searches.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(search_runs.insert().values(user_id=1, saved_search_id=saved.id, source="manual",
                                                 status=PENDING, parameters="{}", created_at=T0))


def test_a_run_stuck_in_running_is_retried_then_failed(store_url):
    searches = users(catalog(store_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(remote=True)).id)
    now = T0
    for attempt in (1, 2, 3):
        searches.start(run.id, now=now)
        assert searches.sweep(timedelta(minutes=30), now=now + timedelta(minutes=10)) == {"retried": [], "failed": []}
        swept = searches.sweep(timedelta(minutes=30), now=now + timedelta(minutes=31))
        now += timedelta(hours=1)
        if attempt < 3:
            assert swept == {"retried": [run.id], "failed": []}
            assert (searches.run(ANN, run.id).status, searches.run(ANN, run.id).attempts) == (PENDING, attempt)
    assert swept == {"retried": [], "failed": [run.id]}
    ended = searches.run(ANN, run.id)
    assert (ended.status, ended.attempts) == (FAILED, 3) and "3 attempts" in ended.error


def test_a_cancelled_pending_run_is_never_started(store_url):
    searches = users(catalog(store_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(remote=True)).id)
    assert searches.cancel(ANN, run.id).status == CANCELLED
    assert searches.pending() == []
    with pytest.raises(InvalidTransition):
        searches.start(run.id)


def test_manual_runs_come_before_cron_runs(store_url):
    searches = users(catalog(store_url))
    cron_search = searches.add_search(ANN, SearchParameters(remote=True), now=T0)
    manual_search = searches.add_search(BOB, SearchParameters(keywords="python"), now=T0)
    assert searches.enqueue_cron(active_since=T0 - timedelta(days=30), now=T0) == [1, 2]
    searches.start(2)  # Bob's cron run is running: his manual one queues behind it
    manual, _ = searches.enqueue(BOB, manual_search.id, now=T0)
    assert [(r.id, r.source) for r in searches.pending()] == [(manual.id, "manual"), (1, CRON)]
    assert cron_search.id == 1


def test_cron_enqueues_for_active_users_only_and_never_beside_a_pending_or_running_run(store_url):
    searches = users(catalog(store_url))
    a1 = searches.add_search(ANN, SearchParameters(remote=True), now=T0)
    a2 = searches.add_search(ANN, SearchParameters(keywords="python"), now=T0)
    searches.add_search(BOB, SearchParameters(keywords="python"), now=T0)
    searches.user(BOB, seen=T0 - timedelta(days=45))  # Bob has not been seen for 45 days: inactive
    searches.enqueue(ANN, a1.id, now=T0)  # a manual run pending for a1
    created = searches.enqueue_cron(active_since=T0 - timedelta(days=30), now=T0)
    assert [searches.run_by_id(i).saved_search_id for i in created] == [a2.id]
    assert searches.enqueue_cron(active_since=T0 - timedelta(days=30), now=T0) == []  # a2 pending now


def test_a_removed_search_cancels_its_pending_run_and_takes_no_new_ones(store_url):
    searches = users(catalog(store_url))
    saved = searches.add_search(ANN, SearchParameters(remote=True))
    run, _ = searches.enqueue(ANN, saved.id)
    searches.remove_search(ANN, saved.id)
    assert searches.run(ANN, run.id).status == CANCELLED  # its history stays readable
    assert searches.list_searches(ANN) == []
    with pytest.raises(NotFound):
        searches.enqueue(ANN, saved.id)
    assert searches.enqueue_cron(active_since=T0 - timedelta(days=30)) == []


# --- ownership ---------------------------------------------------------------------------------------

def test_another_users_rows_answer_as_if_they_did_not_exist(store_url):
    searches = users(catalog(store_url))
    saved = searches.add_search(ANN, SearchParameters(remote=True))
    run, _ = searches.enqueue(ANN, saved.id)
    for attempt in (lambda: searches.run(BOB, run.id), lambda: searches.results(BOB, run.id),
                    lambda: searches.cancel(BOB, run.id), lambda: searches.enqueue(BOB, saved.id),
                    lambda: searches.saved_search(BOB, saved.id), lambda: searches.remove_search(BOB, saved.id)):
        with pytest.raises(NotFound) as refused:
            attempt()
        assert "bob@example.com has no" in str(refused.value)
    assert searches.history(BOB) == [] and searches.run(ANN, run.id).status == PENDING


def test_postgres_row_security_hides_other_users_rows_from_hand_written_sql(postgres_url):
    """As the application role with user A named, no statement reaches B's rows: not a SELECT without
    a WHERE, not one naming B's ids, not an UPDATE, DELETE or an INSERT in B's name."""
    store = catalog(postgres_url)
    searches = users(store)
    ann_search = searches.add_search(ANN, SearchParameters(keywords="python"), now=T0)
    bob_search = searches.add_search(BOB, SearchParameters(remote=True), now=T0)
    ann_run, _ = searches.enqueue(ANN, ann_search.id, now=T0)
    bob_run, _ = searches.enqueue(BOB, bob_search.id, now=T0)
    for run in (ann_run, bob_run):
        searches.start(run.id, now=T0)
        searches.succeed(run.id, *searches.execute(SearchParameters.model_validate(run.parameters), now=T0), now=T0)
    ann, bob = searches.user(ANN).id, searches.user(BOB).id

    def as_user(conn, user_id):
        conn.execute(sa.text("SET LOCAL ROLE jobsync_app"))
        if user_id is not None:
            conn.execute(sa.text("SELECT set_config('jobsync.user_id', :u, true)"), {"u": str(user_id)})

    with store.engine.connect() as conn, conn.begin():
        as_user(conn, ann)
        assert conn.execute(sa.text("SELECT DISTINCT user_id FROM saved_searches")).scalars().all() == [ann]
        assert conn.execute(sa.text("SELECT DISTINCT user_id FROM search_runs")).scalars().all() == [ann]
        assert conn.execute(sa.text("SELECT email FROM users")).scalars().all() == [ANN]
        assert conn.scalar(sa.text("SELECT count(*) FROM search_runs WHERE id = :b"), {"b": bob_run.id}) == 0
        assert conn.scalar(sa.text("SELECT count(*) FROM search_run_results WHERE search_run_id = :b"),
                           {"b": bob_run.id}) == 0
        assert conn.scalar(sa.text("SELECT count(*) FROM search_run_results")) > 0  # A's own results
        assert conn.execute(sa.text("UPDATE search_runs SET status = 'cancelled' WHERE id = :b"),
                            {"b": bob_run.id}).rowcount == 0
        assert conn.execute(sa.text("UPDATE saved_searches SET removed_at = now() WHERE user_id = :b"),
                            {"b": bob}).rowcount == 0
        assert conn.execute(sa.text("DELETE FROM search_run_results WHERE search_run_id = :b"),
                            {"b": bob_run.id}).rowcount == 0
        with pytest.raises(sa.exc.ProgrammingError, match="row-level security"), conn.begin_nested():
            conn.execute(sa.text("INSERT INTO saved_searches (user_id, parameters, created_at) "
                                 "VALUES (:b, '{\"remote\": true}', now())"), {"b": bob})
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), conn.begin_nested():
            conn.execute(sa.text("SELECT token_hash FROM api_tokens"))
    with store.engine.connect() as conn, conn.begin():
        as_user(conn, None)  # the role with no user named sees no one's rows
        assert conn.scalar(sa.text("SELECT count(*) FROM search_runs")) == 0
        assert conn.scalar(sa.text("SELECT count(*) FROM saved_searches")) == 0
    with store.engine.connect() as conn:  # the pipeline, as the tables' owner, sees every row
        assert conn.scalar(sa.text("SELECT count(DISTINCT user_id) FROM search_runs")) == 2
    assert searches.run(BOB, bob_run.id).status == SUCCESS and searches.results(BOB, bob_run.id)


def test_users_are_unique_by_email_in_any_case(store_url):
    searches = users(catalog(store_url))
    with pytest.raises(ValueError, match="already exists"):
        searches.add_user("ANN@example.com", None, "Europe/London")
    with pytest.raises(ValueError, match="not an email address"):
        searches.add_user("ann", None, "Europe/London")
    assert searches.user("Ann@Example.COM").name == "Ann"


# --- executing a search: ranking on a small catalog with known answers ----------------------------------

def test_title_matches_rank_before_description_matches(store_url):
    searches = catalog(store_url).searches
    store_ids = ids(searches.execute(SearchParameters(keywords="python"), now=T0))
    by_title = {job_id(Store(store_url), "1"), job_id(Store(store_url), "4")}
    assert set(store_ids[:2]) == by_title and store_ids[2] == job_id(Store(store_url), "2")


@pytest.mark.parametrize("parameters, expected", [
    (SearchParameters(locations=("Germany",)), ["4"]),  # a region, from the resolved workplace or the text
    (SearchParameters(locations=("london", "Paris")), ["1", "2", "5"]),
    (SearchParameters(remote=True), ["3"]),
    (SearchParameters(min_salary=100_000), ["4"]),
    (SearchParameters(min_salary=130_000), []),
    (SearchParameters(categories=("sales",)), ["5"]),
    (SearchParameters(sources=("lever",)), []),
    (SearchParameters(posted_within_days=7), ["1", "2", "3", "5"]),
    (SearchParameters(keywords="python", locations=("Berlin",)), ["4"]),
    (SearchParameters(keywords="statistics"), ["2"]),
    (SearchParameters(keywords="python django"), ["1"]),  # every word
    (SearchParameters(keywords="cobol"), []),
    (SearchParameters(keywords="node.js"), ["3"]),
    (SearchParameters(keywords="c++"), ["5"]),
])
def test_each_filter_on_known_answers(store_url, parameters, expected):
    store = catalog(store_url)
    found, total, capped = store.searches.execute(parameters, now=T0)
    by_id = {job_id(store, e): e for e in "12345"}
    assert sorted(by_id[r["job_id"]] for r in found) == sorted(expected) and total == len(expected) and not capped
    assert all(r["reasons"] for r in found)


def test_only_canonical_open_jobs_are_found(store_url):
    store = catalog(store_url)
    # the same job on a feed: one canonical job (the ATS's row); an expired job: none
    catalog(store_url, [posting(91, "Senior Python Engineer", source="remoteok", board="python",
                                description="Django and Postgres.")], source="remoteok", board="python")
    catalog(store_url, CATALOG[1:])  # the ATS board drops job 1: it expires
    found, total, _ = store.searches.execute(SearchParameters(keywords="senior python"), now=T0)
    with store.engine.connect() as conn:
        sources = conn.execute(sa.text("SELECT source FROM jobs WHERE id = :i"), {"i": found[0]["job_id"]}).scalar()
    assert total == 1 and sources == "remoteok"  # the ATS row expired: the feed's row is the job now


def test_a_job_expired_and_listed_again_is_found_again_by_every_filter(store_url):
    """On PostgreSQL the search indexes hold open jobs only (migration 0019): the reactivated job's row version
    must enter them again, for its words, its facets and its dedupe key."""
    store = catalog(store_url)
    catalog(store_url, CATALOG[:3])  # jobs 4 and 5 expire
    assert store.searches.execute(SearchParameters(keywords="python", locations=("Berlin",)), now=T0)[1] == 0
    catalog(store_url)  # and come back
    for parameters, expected in ((SearchParameters(keywords="python", locations=("Berlin",)), ["4"]),
                                 (SearchParameters(keywords="tooling"), ["5"]),
                                 (SearchParameters(locations=("France",)), ["5"]),
                                 (SearchParameters(min_salary=100_000), ["4"])):
        found, total, _ = store.searches.execute(parameters, now=T0)
        assert [r["job_id"] for r in found] == [job_id(store, e) for e in expected] and total == len(expected)
    # the same job on a feed stays the ATS's one canonical job: its dedupe key was found again
    catalog(store_url, [posting(95, "Account Executive", source="remoteok", board="sales", location="Paris, France",
                                description="Selling C++ tooling.")], source="remoteok", board="sales")
    found, total, _ = store.searches.execute(SearchParameters(keywords="account executive"), now=T0)
    assert total == 1 and found[0]["job_id"] == job_id(store, "5")


def test_results_are_capped_and_matches_counted_up_to_the_count_limit(store_url):
    store = catalog(store_url, [posting(i, f"Python Engineer {i}", posted=f"2026-11-{1 + i % 28:02d}")
                                for i in range(30)] + [posting(99, "Engineer", description="Python.")])
    found, total, capped = store.searches.execute(SearchParameters(keywords="python"), now=T0, limit=10)
    assert len(found) == 10 and (total, capped) == (31, False)
    found, total, capped = store.searches.execute(SearchParameters(keywords="python"), now=T0, limit=5,
                                                  count_limit=20)
    assert len(found) == 5 and (total, capped) == (20, True)  # at least 20
    every, total, capped = store.searches.execute(SearchParameters(keywords="python"), now=T0, limit=40)
    assert len(every) == 31 and (total, capped) == (31, False) and every[-1]["score"] < every[0]["score"]
    assert every[-1]["job_id"] == job_id(store, "99")  # the description match comes after every title match


def test_postgres_finds_filters_through_the_facets_index_and_locations_as_words(postgres_url):
    store = catalog(postgres_url, CATALOG + [posting(6, "Python Engineer", location="Austin, TX", company="Tx"),
                                             posting(7, "Python Engineer", location="Remote (US)", company="Us",
                                                     workplace_type="remote")])
    found = ids(store.searches.execute(SearchParameters(keywords="python", locations=("US",)), now=T0))
    assert found == [job_id(store, "7")]  # the word US, not the letters in Austin
    both = ids(store.searches.execute(SearchParameters(categories=("engineering",), remote=True), now=T0))
    assert both == [job_id(store, "7")]
    with store.engine.connect() as conn:  # the facets a job is found by, kept by the database itself
        facets = conn.scalar(sa.text("SELECT facets::text FROM jobs WHERE external_id = '4'"))
    assert "'berlin':" in facets and "'engineering':" in facets and "'greenhouse':" in facets


def test_each_tier_is_newest_first_and_undated_jobs_come_last(store_url):
    store = catalog(store_url, [posting(1, "Python Engineer", posted="2026-10-01", company="Ann Co"),
                                posting(2, "Python Engineer", posted=None, company="Bob Co"),
                                posting(3, "Python Engineer", posted="2026-11-20", company="Cy Co"),
                                posting(4, "Engineer", description="python", posted="2026-11-30", company="Di Co"),
                                posting(5, "Engineer", description="python", posted=None, company="Ed Co")])
    order = [job_id(store, e) for e in ("3", "1", "2", "4", "5")]
    assert ids(store.searches.execute(SearchParameters(keywords="python"), now=T0)) == order
    no_keywords = ids(store.searches.execute(SearchParameters(sources=("greenhouse",)), now=T0))
    assert no_keywords == [job_id(store, e) for e in ("4", "3", "1", "5", "2")]


# --- API tokens --------------------------------------------------------------------------------------

def test_a_token_is_shown_once_kept_hashed_and_revocable(store_url):
    searches = users(catalog(store_url))
    token = searches.issue_token(ANN, now=T0)
    assert token.startswith("jsk_") and len(token) > 40
    with searches.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    later = T0 + timedelta(days=3)
    assert searches.authenticate(token, now=later).email == ANN
    assert searches.user(ANN).last_seen_at == later  # an API call is activity
    for wrong in (token + "x", token[:-1], "", "Bearer " + token, "jsk_" + "a" * 43):
        assert searches.authenticate(wrong) is None
    other = searches.issue_token(BOB)
    assert searches.revoke_tokens(ANN) == 1 and searches.authenticate(token) is None
    assert searches.authenticate(other).email == BOB  # another user's token is untouched
