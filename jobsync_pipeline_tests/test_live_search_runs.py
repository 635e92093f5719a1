"""A search run naming live sites, end to end through Dagster: `search_results` searches the live sites
(JobSpy replaced by recorded frames: nothing reaches the network), applies their postings as `jobspy`
boards, then runs the catalog search, whose results include them."""
from __future__ import annotations

import sys

import dagster as dg

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.defs.resources import LiveSitesResource, SearchPolicyResource, StoreResource
from jobsync_pipeline.defs.searches import run_config, search_results
from jobsync_pipeline.sources.jobspy import EXTRA_MISSING, SOURCE
from jobsync_pipeline_tests.test_jobspy import fake
from jobsync_pipeline_tests.test_searches import ANN, catalog, users


def live_sites_answering(scrape) -> LiveSitesResource:
    """The live-sites resource with JobSpy's `scrape_jobs` replaced by `scrape`."""

    class Recorded(LiveSitesResource):
        def scraper(self):
            return scrape

    return Recorded(results_wanted_per_site=10, country_indeed="usa")


def materialize(store_url: str, run_id: int, live_sites: LiveSitesResource) -> dg.ExecuteInProcessResult:
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([search_results], instance=instance, run_config=run_config(run_id),
                              raise_on_error=False,
                              resources={"store": StoreResource(url=store_url), "search_policy": SearchPolicyResource(),
                                         "live_sites": live_sites})


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (materialization,) = result.asset_materializations_for_node("searches__search_results")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_a_search_run_naming_live_sites_finds_their_postings(store_url):
    store = catalog(store_url)  # three greenhouse jobs, one of them "Senior Python Engineer"
    searches = users(store)
    saved = searches.add_search(ANN, SearchParameters(keywords="engineer", live_sites=("indeed", "linkedin")))
    run, _ = searches.enqueue(ANN, saved.id)
    scrape = fake()
    result = materialize(store_url, run.id, live_sites_answering(scrape))
    assert result.success
    numbers = metadata(result)
    assert {k: v for k, v in numbers.items() if k.startswith("live_")} == {
        "live_sites_failed": 0, "live_indeed_found": 4, "live_indeed_new": 4, "live_indeed_bad": 1,
        "live_linkedin_found": 2, "live_linkedin_new": 2, "live_linkedin_bad": 0}
    assert {c["site_name"] for c in scrape.calls} == {"indeed", "linkedin"}
    assert all(c["results_wanted"] == 10 and c["search_term"] == "engineer" for c in scrape.calls)
    done = searches.run(ANN, run.id)
    titles = {r["title"] for r in searches.results(ANN, run.id, limit=50)}
    # the live postings joined the catalog before the search ran over it
    assert {"Senior Data Engineer", "Machine Learning Engineer", "Backend Engineer (Python)",
            "Staff Data Engineer", "Senior Python Engineer"} <= titles
    assert done.status == "success" and done.jobs_found == len(titles) == numbers["jobs_found"]
    syncs = store.syncs_for_run(result.run_id, SOURCE)
    assert sorted((s.board, s.status) for s in syncs) == [("indeed", "success"), ("linkedin", "success")]


def test_a_failed_live_site_is_recorded_and_the_search_still_runs(sqlite_url):
    store = catalog(sqlite_url)
    searches = users(store)
    saved = searches.add_search(ANN, SearchParameters(keywords="engineer", live_sites=("indeed", "linkedin")))
    run, _ = searches.enqueue(ANN, saved.id)
    result = materialize(sqlite_url, run.id, live_sites_answering(fake(linkedin=TimeoutError("read timed out"))))
    assert result.success
    numbers = metadata(result)
    assert numbers["live_sites_failed"] == 1 and numbers["live_linkedin_found"] == 0
    assert numbers["live_errors"] == {"linkedin": "linkedin: TimeoutError: read timed out"}
    done = searches.run(ANN, run.id)
    titles = {r["title"] for r in searches.results(ANN, run.id, limit=50)}
    assert titles == {"Senior Data Engineer", "Machine Learning Engineer", "Senior Python Engineer"}
    assert done.status == "success" and done.jobs_found == 3
    (failed,) = [s for s in store.syncs_for_run(result.run_id, SOURCE) if s.board == "linkedin"]
    assert failed.status == "failed" and "read timed out" in failed.error
    assert {s.board for s in store.syncs_for_run(result.run_id, SOURCE) if s.status == "success"} == {"indeed"}


def test_without_the_extra_the_search_run_fails_with_one_clear_error(sqlite_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "jobspy", None)  # as if python-jobspy were not installed
    store = catalog(sqlite_url)
    searches = users(store)
    saved = searches.add_search(ANN, SearchParameters(keywords="engineer", live_sites=("indeed",)))
    run, _ = searches.enqueue(ANN, saved.id)
    result = materialize(sqlite_url, run.id, LiveSitesResource())
    assert not result.success
    done = searches.run(ANN, run.id)
    assert (done.status, done.error) == ("failed", EXTRA_MISSING)
    assert store.board_names(SOURCE) == []


def test_a_search_without_live_sites_never_asks_for_jobspy(sqlite_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "jobspy", None)
    searches = users(catalog(sqlite_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(keywords="python")).id)
    result = materialize(sqlite_url, run.id, LiveSitesResource())
    assert result.success and not any(k.startswith("live_") for k in metadata(result))
    assert searches.run(ANN, run.id).status == "success"
