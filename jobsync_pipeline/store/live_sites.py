"""A saved search's live sites: each site searched through JobSpy (`sources/jobspy.py`), its answer
archived, parsed and applied as one board of the `jobspy` source through the same snapshot apply as
every source, so the postings join the catalog before the search runs over it.

A live search lists a few of a site's jobs, never all of them, so it is applied as a feed: nothing
expires because a search did not list it, only past its own date or when no live search has shown it
for `max_age`. Each site is its own `syncs` row; a site that failed is a failed sync with its error,
and the other sites still apply.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.jobspy import SOURCE, LiveQuery, Scrape, SiteAnswer, parse_jobspy, search_sites
from jobsync_pipeline.store.apply import Expiry

if TYPE_CHECKING:
    from jobsync_pipeline.store.repo import Store

DEFAULT_RESULTS_WANTED = 20
DEFAULT_MAX_AGE = timedelta(days=30)


@dataclass
class LiveSiteResult:
    """One site's part of a live search, as its `syncs` row records it."""

    site: str
    status: str  # SyncStatus: success (applied) or failed
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # on success: the calls that failed while others answered
    sync_id: int | None = None
    raw_snapshot_id: int | None = None

    @property
    def applied(self) -> bool:
        return self.status == SyncStatus.SUCCESS


def live_query(parameters: SearchParameters, *, results_wanted: int = DEFAULT_RESULTS_WANTED,
               country_indeed: str = "usa") -> LiveQuery:
    """What every live site is asked for a saved search's parameters."""
    return LiveQuery(keywords=parameters.keywords, locations=parameters.locations, remote=parameters.remote,
                     results_wanted=results_wanted, country_indeed=country_indeed,
                     hours_old=parameters.posted_within_days * 24 if parameters.posted_within_days else None)


def search_live_sites(store: "Store", parameters: SearchParameters, *, run_id: str | None,
                      scrape: Scrape | None = None, results_wanted: int = DEFAULT_RESULTS_WANTED,
                      max_age: timedelta = DEFAULT_MAX_AGE, country_indeed: str = "usa",
                      now: datetime | None = None) -> list[LiveSiteResult]:
    """Search the parameters' live sites and apply each one's postings; one result per site, in order.

    `scrape` stands in for `jobspy.scrape_jobs` (tests); without it JobSpy is imported, and a missing
    extra raises `JobSpyMissing` before anything is written. A site's own failure (an error, an apply
    that failed) is its result and its failed `syncs` row, never the other sites' loss.
    """
    if not parameters.live_sites:
        return []
    query = live_query(parameters, results_wanted=results_wanted, country_indeed=country_indeed)
    answers = search_sites(parameters.live_sites, query, scrape, now=now)
    store.ensure_boards(SOURCE, [answer.site for answer in answers])  # registered like a feed's boards
    expiry = Expiry(complete=False, max_age=max_age)
    return [apply_live_answer(store, answer, run_id=run_id, expiry=expiry) for answer in answers]


def apply_live_answer(store: "Store", answer: SiteAnswer, *, run_id: str | None,
                      expiry: Expiry = Expiry(complete=False, max_age=DEFAULT_MAX_AGE)) -> LiveSiteResult:
    """Archive one site's answer, keep its refused rows aside and apply its postings (one transaction)."""
    site = answer.site
    raw_id, _ = store.archive_raw(SOURCE, answer.payload)  # failures too: the payload says what went wrong
    if answer.failed:
        return _failed(store, site, answer.error or "no answer", run_id, raw_id)
    try:
        parsed = parse_jobspy(answer.payload)
    except BoardError as exc:
        return _failed(store, site, str(exc), run_id, raw_id)
    store.keep_bad_records(raw_id, SOURCE, site, parsed.bad_records)
    counts = {"found": parsed.found, "bad": len(parsed.bad_records), "duplicates": len(parsed.duplicates)}
    if parsed.bad_records and not parsed.found:
        return _failed(store, site, f"every one of its {len(parsed.bad_records)} row(s) was refused (the first: "
                                    f"{parsed.bad_records[0].reason}); kept aside in bad_records", run_id, raw_id,
                       counts)
    sync_id = store.start_sync(SOURCE, site, run_id=run_id, raw_snapshot_id=raw_id)
    try:
        diff = store.apply_snapshot(SOURCE, site, [parsed.postings], sync_id=sync_id, counts=counts, expiry=expiry,
                                    listed_ids=[r.external_id for r in parsed.bad_records if r.external_id])
    except Exception as exc:  # noqa: BLE001 - rolled back; the syncs row must say why, the other sites go on
        error = f"applying the diff failed: {exc}"
        store.finish_sync(sync_id, SyncStatus.FAILED, counts=counts, error=error)
        return LiveSiteResult(site, SyncStatus.FAILED, counts, error, sync_id, raw_id)
    if answer.error:  # applied what answered; the row still says which calls did not
        store.finish_sync(sync_id, SyncStatus.SUCCESS, error=f"partial: {answer.error}")
    return LiveSiteResult(site, SyncStatus.SUCCESS, {**counts, **diff.counts()}, answer.error, sync_id, raw_id)


def _failed(store: "Store", site: str, error: str, run_id: str | None, raw_id: int,
            counts: dict[str, int] | None = None) -> LiveSiteResult:
    sync_id = store.record_sync(SOURCE, site, SyncStatus.FAILED, run_id=run_id, error=error, counts=counts,
                                raw_snapshot_id=raw_id)
    return LiveSiteResult(site, SyncStatus.FAILED, counts or {}, error, sync_id, raw_id)
