"""Live job-site searches through JobSpy: the parser over frames in JobSpy's own shape, the per-site
search (one site's failure stays its own), and the apply as `jobspy` boards on SQLite and PostgreSQL.

JobSpy is never called: every test hands in a stand-in for `jobspy.scrape_jobs`, so nothing reaches the
network and the tests pass with or without the `jobspy` extra (only `test_the_site_list_is_jobspys` needs it).
"""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from jobsync_pipeline.core.enrich import derive
from jobsync_pipeline.core.search import LIVE_SITES, SearchParameters
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.sources.jobspy import (EXTRA_MISSING, SOURCE, JobSpyMissing, JobSpyRow, LiveQuery,
                                             installed_scrape, parse_jobspy, search_site, search_sites)
from jobsync_pipeline.store.live_sites import live_query, search_live_sites
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import jobs
from jobsync_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

RECORDED = FIXTURES / "recorded" / "jobspy"
INDEED_IDS = ["in-8f2c1a9e0b7d4c11", "in-3d90e2f4c6a81b72", "in-b71e55d0a2c94f08", "in-e5a7c3b19d0f4a66"]
MALFORMED = "in-0c4de7a1f9b26e35"


def recorded_frame(site: str) -> pd.DataFrame:
    """A recorded frame as JobSpy's `scrape_jobs` builds it: `pd.DataFrame(rows, columns=...)`, so a
    missing text is NaN in a str column, and `date_posted` holds `datetime.date`s."""
    document = json.loads((RECORDED / f"{site}.frame.json").read_text())
    rows = [dict(zip(document["columns"], row)) for row in document["data"]]
    for row in rows:
        row["date_posted"] = date.fromisoformat(row["date_posted"]) if row["date_posted"] else None
    return pd.DataFrame(rows, columns=document["columns"])


class FakeJobSpy:
    """Stands in for `jobspy.scrape_jobs`: answers each site with its frame (or raises its exception),
    and remembers every call's arguments."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, **arguments):
        with self._lock:
            self.calls.append(arguments)
        answer = self.answers[arguments["site_name"]]
        if isinstance(answer, Exception):
            raise answer
        return answer.copy() if isinstance(answer, pd.DataFrame) else answer


def fake(**answers) -> FakeJobSpy:
    return FakeJobSpy(**{"indeed": recorded_frame("indeed"), "linkedin": recorded_frame("linkedin"), **answers})


def parsed_indeed():
    return parse_jobspy(search_site("indeed", LiveQuery(keywords="engineer"), fake()).payload)


# --- the parser ------------------------------------------------------------------------------------

def test_a_recorded_frame_parses_into_postings_with_the_malformed_row_kept_aside():
    parsed = parsed_indeed()
    assert parsed.board == "indeed" and parsed.found == 4
    assert list(parsed.postings["external_id"]) == INDEED_IDS
    (bad,) = parsed.bad_records
    assert (bad.reason, bad.external_id, bad.position) == ("title: missing", MALFORMED, 3)
    assert json.loads(bad.record)["company"] == "Umbrella Corp"


def test_salaries_keep_what_jobspy_said_and_where_it_read_it():
    rows = parsed_indeed().postings.set_index("external_id")
    yearly, hourly, remote, from_text = (rows.loc[i] for i in INDEED_IDS)
    assert (yearly.salary_min, yearly.salary_max, yearly.salary_currency, yearly.salary_interval,
            yearly.salary_source) == (120000.0, 150000.0, "USD", "yearly", "min_amount/max_amount")
    assert (hourly.salary_min, hourly.salary_max, hourly.salary_interval) == (18.5, 22.0, "hourly")
    assert from_text.salary_source == "description"
    assert remote.salary_min is None and remote.salary_source is None and remote.salary_currency is None
    derived = derive(parsed_indeed().postings).set_index(parsed_indeed().postings["external_id"])
    assert (derived.loc[INDEED_IDS[0], "salary_annual_min"], derived.loc[INDEED_IDS[0], "salary_period"]) == (
        120000.0, "year")
    # one annualization rule for every source: 2,080 hours a year
    assert derived.loc[INDEED_IDS[1], "salary_annual_min"] == 18.5 * 2080
    assert derived.loc[INDEED_IDS[1], "salary_period_basis"] == "stated"


def test_remote_workplace_sanitized_description_and_the_other_fields():
    postings = parsed_indeed().postings
    rows = postings.set_index("external_id")
    remote = rows.loc[INDEED_IDS[2]]
    assert remote.workplace_type == "remote" and remote.location == "USA"
    assert rows.loc[INDEED_IDS[0]].workplace_type is None  # is_remote false: the site did not say remote
    assert remote.description_format == "html" and "alert" not in remote.description
    assert remote.description == "Work from anywhere in the US.\nDjango, FastAPI."
    assert "<script" in remote.description_raw  # kept as fetched
    derived = derive(postings).set_index(postings["external_id"])
    html = derived.loc[INDEED_IDS[2], "description_html"]
    assert "<script" not in html and "onclick" not in html and "Django, FastAPI." in html
    assert derived.loc[INDEED_IDS[2], "workplace"] == "remote"
    first = rows.loc[INDEED_IDS[0]]
    assert (first.title, first.company, first.location, first.posted_date, first.url) == (
        "Senior Data Engineer", "Acme Analytics", "Austin, TX, USA", "2026-10-12",
        "https://www.indeed.com/viewjob?jk=8f2c1a9e0b7d4c11")


def test_linkedin_rows_without_a_description_and_with_a_job_function():
    answer = search_site("linkedin", LiveQuery(keywords="engineer"), fake())
    rows = parse_jobspy(answer.payload).postings.set_index("external_id")
    backend, staff = rows.loc["li-4100238891"], rows.loc["li-4100571234"]
    assert backend.description == "" and backend.department == "Engineering and Information Technology"
    assert (staff.workplace_type, staff.salary_currency, staff.salary_min) == ("remote", "GBP", 95000.0)


def test_rows_without_a_url_or_an_id_and_text_descriptions():
    bad_url = {"id": "gg-1", "title": "Cook", "job_url": None}
    no_id = {"id": None, "title": "Baker", "job_url": "https://www.google.com/search?q=baker&jobid=7",
             "description": "Early mornings.\n\nBread and pastries.", "is_remote": None}
    frame = pd.DataFrame([bad_url, no_id])
    parsed = parse_jobspy(search_site("google", LiveQuery(keywords="cook"), FakeJobSpy(google=frame)).payload)
    assert [r.reason for r in parsed.bad_records] == ["job_url: missing"]
    (posting,) = parsed.postings.itertuples()
    assert posting.external_id.startswith("url-") and len(posting.external_id) == 36
    # the same URL gives the same id in the next search: the job is known again, not new
    again = parse_jobspy(search_site("google", LiveQuery(), FakeJobSpy(google=frame)).payload)
    assert list(again.postings["external_id"]) == [posting.external_id]
    assert (posting.description, posting.description_format) == ("Early mornings.\nBread and pastries.", "text")


def test_the_payload_is_plain_json_of_the_frame_as_jobspy_gave_it():
    answer = search_site("indeed", LiveQuery(keywords="data", locations=("Austin",), results_wanted=5), fake())
    document = json.loads(answer.payload.body)  # strict JSON: no NaN left
    assert b"NaN" not in answer.payload.body
    (call,) = document["calls"]
    assert call["location"] == "Austin" and call["error"] is None and len(call["jobs"]) == 5
    assert call["jobs"][1]["job_url_direct"] is None and call["jobs"][0]["date_posted"] == "2026-10-12"
    assert document["query"]["keywords"] == "data" and answer.payload.board == "indeed"
    assert answer.payload.location.startswith("jobspy://indeed?")


def test_a_job_listed_for_two_locations_is_one_posting():
    query = LiveQuery(keywords="engineer", locations=("Austin", "Denver"), results_wanted=9)
    scrape = fake()
    parsed = parse_jobspy(search_site("indeed", query, scrape).payload)
    assert parsed.found == 4 and parsed.duplicates == [] and len(parsed.bad_records) == 1
    assert [(c["location"], c["results_wanted"]) for c in scrape.calls] == [("Austin", 5), ("Denver", 5)]


def test_the_calls_ask_what_the_search_asks():
    parameters = SearchParameters(keywords="python", remote=True, posted_within_days=2,
                                  live_sites=("indeed", "google"))
    scrape = fake(google=pd.DataFrame())
    search_sites(parameters.live_sites, live_query(parameters, results_wanted=7, country_indeed="uk"), scrape)
    indeed, google = sorted(scrape.calls, key=lambda c: c["site_name"] != "indeed")
    assert {k: indeed[k] for k in ("search_term", "location", "is_remote", "results_wanted", "hours_old",
                                   "country_indeed", "description_format")} == {
        "search_term": "python", "location": None, "is_remote": True, "results_wanted": 7, "hours_old": 48,
        "country_indeed": "uk", "description_format": "html"}
    assert "google_search_term" not in indeed and google["google_search_term"] == "python remote jobs"


# --- one site's trouble stays its own ----------------------------------------------------------------

def test_a_site_that_raises_is_its_own_error_and_the_others_answer():
    answers = search_sites(["indeed", "linkedin"], LiveQuery(keywords="engineer"),
                           fake(linkedin=RuntimeError("429 Too Many Requests")))
    indeed, linkedin = answers
    assert (indeed.site, indeed.rows, indeed.failed, indeed.error) == ("indeed", 5, False, None)
    assert linkedin.failed and linkedin.error == "linkedin: RuntimeError: 429 Too Many Requests"
    assert json.loads(linkedin.payload.body)["calls"][0]["error"] == "RuntimeError: 429 Too Many Requests"


def test_jobspys_own_per_site_error_in_the_frame_is_read():
    failed = recorded_frame("linkedin").iloc[:0]
    failed.attrs = {"errors": {"linkedin": "blocked (status 999)"}}
    partial = recorded_frame("indeed").iloc[:2]
    partial.attrs = {"errors": {"indeed": "page 2: timed out"}}
    indeed, linkedin = search_sites(["indeed", "linkedin"], LiveQuery(), fake(indeed=partial, linkedin=failed))
    assert linkedin.failed and linkedin.error == "linkedin: blocked (status 999)"
    assert not indeed.failed and indeed.rows == 2 and indeed.error == "indeed: page 2: timed out"


def test_an_answer_that_is_no_frame_is_an_error():
    (answer,) = search_sites(["indeed"], LiveQuery(), FakeJobSpy(indeed=[{"title": "x"}]))
    assert answer.failed and "not a DataFrame" in answer.error


# --- the optional extra ------------------------------------------------------------------------------

def test_without_the_extra_a_live_search_fails_with_one_clear_error(monkeypatch, sqlite_url):
    monkeypatch.setitem(sys.modules, "jobspy", None)  # `import jobspy` raises ImportError
    with pytest.raises(JobSpyMissing) as raised:
        installed_scrape()
    assert str(raised.value) == EXTRA_MISSING == (
        "live sites need the jobspy extra: pip install 'jobsync-pipeline[jobspy]'")
    store = Store(sqlite_url)
    with pytest.raises(JobSpyMissing):
        search_live_sites(store, SearchParameters(keywords="engineer", live_sites=("indeed",)), run_id="r")
    assert store.board_names(SOURCE) == [] and store.syncs_for_run("r") == []  # nothing written


def test_nothing_but_the_scrape_call_imports_jobspy():
    script = ("import sys\n"
              "import jobsync_pipeline.definitions\n"
              "from jobsync_pipeline.sources.jobspy import LiveQuery, parse_jobspy, search_site\n"
              "import pandas as pd\n"
              "answer = search_site('indeed', LiveQuery(), lambda **kw: pd.DataFrame([{'id': 'a', 'title': 't', "
              "'job_url': 'https://x.test/a'}]))\n"
              "assert parse_jobspy(answer.payload).found == 1\n"
              "assert 'jobspy' not in sys.modules, 'imported jobspy'\n")
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, check=True, timeout=300)


def test_live_sites_are_validated_against_jobspys_names():
    named = SearchParameters(keywords="python", live_sites=("Indeed", "ZipRecruiter", "zip-recruiter", " glassdoor "))
    assert named.live_sites == ("indeed", "zip_recruiter", "glassdoor")
    with pytest.raises(ValidationError) as raised:
        SearchParameters(keywords="python", live_sites=("indeed", "monster"))
    (error,) = raised.value.errors()
    assert error["msg"] == f"Value error, unknown live site 'monster'; live sites: {', '.join(LIVE_SITES)}"


def test_the_site_list_is_jobspys():
    jobspy_model = pytest.importorskip("jobspy.model")
    assert set(LIVE_SITES) == {site.value for site in jobspy_model.Site}
    document = json.loads((RECORDED / "indeed.frame.json").read_text())
    # the recorded frames' columns are JobSpy's, and every column the parser reads is one of them
    assert set(document["columns"]) <= set(jobspy_model.JobPost.model_fields)
    assert set(JobSpyRow.model_fields) <= set(jobspy_model.JobPost.model_fields)


def test_the_calls_are_ones_jobspy_accepts():
    jobspy = pytest.importorskip("jobspy")
    from jobspy.model import ScraperInput
    query = LiveQuery(keywords="python", locations=("London",), remote=True, hours_old=24, country_indeed="uk")
    for site in LIVE_SITES:
        for arguments in query.calls(site):
            inspect.signature(jobspy.scrape_jobs).bind(**arguments)  # every argument is one of scrape_jobs'
            # and its values pass JobSpy's own validation (what scrape_jobs checks before any request)
            ScraperInput.model_validate({k: v for k, v in arguments.items() if v is not None})


# --- applied as `jobspy` boards, on both databases ---------------------------------------------------

def open_jobs(store: Store, board: str) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(jobs.c.external_id, jobs.c.expired_reason).where(
            jobs.c.source == SOURCE, jobs.c.board == board)).all())


def test_each_site_is_applied_as_a_jobspy_board_and_a_failed_site_loses_nothing_else(store_url):
    store = Store(store_url)
    parameters = SearchParameters(keywords="engineer", live_sites=("indeed", "linkedin"))
    results = search_live_sites(store, parameters, run_id="run-1",
                                scrape=fake(linkedin=ConnectionError("connection reset by peer")))
    indeed, linkedin = results
    assert (indeed.site, indeed.status, indeed.error) == ("indeed", SyncStatus.SUCCESS, None)
    assert {k: indeed.counts[k] for k in ("found", "new", "bad", "expired")} == {"found": 4, "new": 4, "bad": 1,
                                                                                 "expired": 0}
    assert (linkedin.status, linkedin.error) == (SyncStatus.FAILED,
                                                 "linkedin: ConnectionError: connection reset by peer")
    assert sorted(open_jobs(store, "indeed")) == sorted(INDEED_IDS) and open_jobs(store, "linkedin") == {}
    syncs = {s.board: s for s in store.syncs_for_run("run-1", SOURCE)}
    assert syncs["indeed"].status == "success" and syncs["indeed"].counts["new"] == 4
    assert syncs["indeed"].counts["bad"] == 1
    assert syncs["linkedin"].status == "failed" and "connection reset" in syncs["linkedin"].error
    assert store.board_names(SOURCE) == ["indeed", "linkedin"]  # registered like a feed's boards
    assert [r["external_id"] for r in store.bad_records(SOURCE, "indeed")] == [MALFORMED]
    # both answers are archived, the failed one too: a sync can be replayed and debugged
    assert parse_jobspy(store.latest_raw(SOURCE, "indeed").payload()).found == 4
    assert "connection reset" in store.latest_raw(SOURCE, "linkedin").body.decode()
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.external_id == INDEED_IDS[1])).one()
    assert (row.salary_annual_min, row.salary_period, row.salary_source) == (18.5 * 2080, "hour",
                                                                             "min_amount/max_amount")


def test_a_second_search_that_no_longer_lists_a_job_does_not_expire_it(store_url):
    store = Store(store_url)
    parameters = SearchParameters(keywords="engineer", live_sites=("indeed",))
    search_live_sites(store, parameters, run_id="run-1", scrape=fake())
    (second,) = search_live_sites(store, parameters, run_id="run-2",
                                  scrape=fake(indeed=recorded_frame("indeed").iloc[1:]))
    assert second.applied and (second.counts["found"], second.counts["expired"]) == (3, 0)
    assert set(open_jobs(store, "indeed")) == set(INDEED_IDS) and set(open_jobs(store, "indeed").values()) == {None}
    # it expires by age: a posting no live search has shown for max_age
    (third,) = search_live_sites(store, parameters, run_id="run-3", max_age=timedelta(0),
                                 scrape=fake(indeed=recorded_frame("indeed").iloc[1:]))
    assert third.counts["expired"] == 1 and open_jobs(store, "indeed")[INDEED_IDS[0]] == "too_old"


def test_a_partial_answer_applies_what_came_and_the_sync_says_what_did_not(sqlite_url):
    store = Store(sqlite_url)
    partial = recorded_frame("indeed").iloc[:2]
    partial.attrs = {"errors": {"indeed": "page 2: timed out"}}
    (result,) = search_live_sites(store, SearchParameters(keywords="engineer", live_sites=("indeed",)), run_id="r",
                                  scrape=fake(indeed=partial))
    assert result.applied and result.counts["new"] == 2 and result.error == "indeed: page 2: timed out"
    (sync,) = store.syncs_for_run("r")
    assert (sync.status, sync.error, sync.counts["new"]) == ("success", "partial: indeed: page 2: timed out", 2)


def test_a_site_whose_every_row_is_refused_fails_and_keeps_them_aside(sqlite_url):
    store = Store(sqlite_url)
    malformed = recorded_frame("indeed").iloc[3:4]
    (result,) = search_live_sites(store, SearchParameters(keywords="engineer", live_sites=("indeed",)), run_id="r",
                                  scrape=fake(indeed=malformed))
    assert result.status == SyncStatus.FAILED and "every one of its 1 row(s) was refused" in result.error
    assert [r["reason"] for r in store.bad_records(SOURCE, "indeed")] == ["title: missing"]
