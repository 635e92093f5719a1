"""JobSpy: live searches of job sites (Indeed, LinkedIn, Glassdoor, …) through the `python-jobspy` library.

No HTTP of ours: JobSpy scrapes each site itself and answers with a pandas DataFrame, one row per job,
its columns JobSpy's `JobPost` fields (id, site, job_url, job_url_direct, title, company, location,
date_posted, job_type, salary_source, interval, min_amount, max_amount, currency, is_remote, …).
`search_site` asks one site (one call per location the search names) and keeps the answer as a
`RawPayload`: JSON holding the query, each call's error and the rows as JobSpy gave them, archived like
every source's payload, so a sync can be replayed and debugged. `parse_jobspy` reads that payload into
postings of the `jobspy` source, one board per site. A live search lists a few of a site's jobs, never
all of them: a job missing from the next search is not gone (a feed's expiry: by age).

The library is an optional extra (`jobsync-pipeline[jobspy]`); only `installed_scrape` imports it, so the
parser and everything else work without it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from pydantic import BaseModel, ConfigDict

from jobsync_pipeline.core.models import MAX_ID_LENGTH, ParsedSnapshot, Posting, PostingDetails, RawPayload
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.salary import stated_bounds
from jobsync_pipeline.core.text import html_to_text
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.sources.collect import PostingCollector

SOURCE = "jobspy"
EXTRA_MISSING = "live sites need the jobspy extra: pip install 'jobsync-pipeline[jobspy]'"
MAX_SITES_AT_ONCE = 4  # sites asked in parallel (each is its own host; JobSpy paces nothing across calls)

# JobSpy's `scrape_jobs(site_name=..., search_term=..., ...) -> DataFrame`, or a stand-in for tests.
Scrape = Callable[..., Any]


class JobSpyMissing(RuntimeError):
    """The `jobspy` extra is not installed: a search naming live sites cannot run."""


def installed_scrape() -> Scrape:
    """`jobspy.scrape_jobs`, imported now (not at module import); `JobSpyMissing` when the extra is absent."""
    try:
        from jobspy import scrape_jobs
    except ImportError as exc:
        raise JobSpyMissing(EXTRA_MISSING) from exc
    return scrape_jobs


@dataclass(frozen=True)
class LiveQuery:
    """What a saved search asks of every live site."""

    keywords: str | None = None
    locations: tuple[str, ...] = ()
    remote: bool = False
    results_wanted: int = 20  # per site, shared out over the locations
    hours_old: int | None = None
    country_indeed: str = "usa"  # the country whose Indeed and Glassdoor JobSpy asks

    def calls(self, site: str) -> list[dict[str, Any]]:
        """The keyword arguments of `scrape` for `site`: one call per location (one without a location
        when the search names none), each wanting its share of `results_wanted`."""
        locations: list[str | None] = list(self.locations) or [None]
        wanted = max(1, math.ceil(self.results_wanted / len(locations)))
        calls = []
        for location in locations:
            arguments: dict[str, Any] = {
                "site_name": site, "search_term": self.keywords, "location": location, "is_remote": self.remote,
                "results_wanted": wanted, "country_indeed": self.country_indeed,
                # HTML, so the description is sanitized like every source's (and kept as fetched)
                "description_format": "html", "verbose": 0}
            if self.hours_old:
                arguments["hours_old"] = self.hours_old
            if site == "google":  # Google Jobs reads one free-text query, not the separate fields
                arguments["google_search_term"] = " ".join(part for part in (
                    self.keywords, "remote" if self.remote else None, "jobs",
                    f"near {location}" if location else None) if part)
            calls.append(arguments)
        return calls

    def described(self) -> dict[str, Any]:
        return {"keywords": self.keywords, "locations": list(self.locations), "remote": self.remote,
                "results_wanted": self.results_wanted, "hours_old": self.hours_old,
                "country_indeed": self.country_indeed}


@dataclass
class SiteAnswer:
    """One site's answer to a live search: the payload to archive (always, failures included) and what
    went wrong, if anything. `failed`: an error and not one row, so nothing can be applied."""

    site: str
    payload: RawPayload
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None

    @property
    def failed(self) -> bool:
        return bool(self.errors) and not self.rows


def search_sites(sites: Iterable[str], query: LiveQuery, scrape: Scrape | None = None, *,
                 now: datetime | None = None) -> list[SiteAnswer]:
    """Every site's answer, in the order given; one site's failure is its own answer's error, never the
    others' loss. `scrape` defaults to JobSpy's (`JobSpyMissing` when the extra is absent)."""
    sites = list(dict.fromkeys(sites))
    scrape = scrape or installed_scrape()
    if len(sites) <= 1:
        return [search_site(site, query, scrape, now=now) for site in sites]
    with ThreadPoolExecutor(max_workers=min(MAX_SITES_AT_ONCE, len(sites)), thread_name_prefix="jobspy") as pool:
        return list(pool.map(lambda site: search_site(site, query, scrape, now=now), sites))


def search_site(site: str, query: LiveQuery, scrape: Scrape, *, now: datetime | None = None) -> SiteAnswer:
    """One site asked once per location; never raises for the site's own trouble (a call that raises, or
    JobSpy's own per-site error in the frame's `attrs`), which becomes the answer's error."""
    fetched_at = now or datetime.now(timezone.utc)
    calls, errors, rows = [], [], 0
    for arguments in query.calls(site):
        error, jobs = None, []
        try:
            frame = scrape(**arguments)
            jobs = frame_records(frame)
            # JobSpy 1.4 keeps a site's failure in the frame (with the rows found before it) instead of raising
            error = _frame_error(frame, site)
        except Exception as exc:  # noqa: BLE001 - a site's trouble, whatever it is, stays that site's
            error = f"{type(exc).__name__}: {exc}"
        if error:
            where = f" ({arguments['location']})" if arguments["location"] else ""
            errors.append(f"{site}{where}: {error}")
        rows += len(jobs)
        calls.append({"location": arguments["location"], "error": error, "jobs": jobs})
    body = json.dumps({"site": site, "query": query.described(), "calls": calls}, ensure_ascii=False,
                      default=str).encode()
    return SiteAnswer(site=site, payload=RawPayload(board=site, location=query_location(site, query), body=body,
                                                    fetched_at=fetched_at), rows=rows, errors=errors)


def query_location(site: str, query: LiveQuery) -> str:
    """Where a live search's payload came from, as the raw snapshot records it (not a URL anyone fetched)."""
    asked = {"search_term": query.keywords or "", "location": "|".join(query.locations),
             "is_remote": str(query.remote).lower(), "results_wanted": query.results_wanted}
    return f"jobspy://{site}?{urlencode({k: v for k, v in asked.items() if v not in ('', 'false')})}"


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """JobSpy's DataFrame as JSON-ready records: NaN and NaT become None, dates ISO text, numpy values
    Python ones. Raises `TypeError` for anything that is not a DataFrame."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"JobSpy answered {type(frame).__name__}, not a DataFrame")
    return [{str(name): _plain(value) for name, value in record.items()} for record in frame.to_dict(orient="records")]


def _frame_error(frame: Any, site: str) -> str | None:
    errors = (getattr(frame, "attrs", None) or {}).get("errors") or {}
    error = errors.get(site) if isinstance(errors, dict) else None
    return str(error) if error else None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if pd.api.types.is_scalar(value) and pd.isna(value):  # NaN, NaT, pandas.NA
        return None
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, (datetime, date)):  # pandas' Timestamp is a datetime
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar (numpy.bool_, int64, float64)
        return _plain(value.item())
    return str(value)


class JobSpyRow(BaseModel):
    """A row of JobSpy's DataFrame, as archived; extra columns (company details, emails…) are ignored."""

    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    id: str | None = None
    site: str | None = None
    job_url: str | None = None
    job_url_direct: str | None = None
    title: str | None = None
    company: str | None = None
    location: str | None = None
    date_posted: str | None = None
    job_type: str | None = None
    salary_source: str | None = None  # JobSpy's: direct_data (a field of the site) or description
    interval: str | None = None  # yearly, monthly, weekly, daily, hourly
    min_amount: float | str | None = None
    max_amount: float | str | None = None
    currency: str | None = None
    is_remote: bool | None = None
    work_from_home_type: str | None = None  # some sites' own word (Naukri: "Hybrid", "Work from office")
    job_function: str | None = None
    skills: str | list[str] | None = None
    description: str | None = None


_MARKUP = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^<>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")


def jobspy_posting(raw: Any, board: str) -> tuple[Posting, bool]:
    """A posting from one JobSpy row; ValueError (the bad record's reason) for a row that cannot be one."""
    row = JobSpyRow.model_validate(raw)
    title = clean_text(row.title)
    url = (row.job_url or "").strip() or (row.job_url_direct or "").strip()
    if not title:
        raise ValueError("title: missing")
    if not url:
        raise ValueError("job_url: missing")
    low, high, text = stated_bounds(row.min_amount, row.max_amount)
    paid = bool(low or high)
    description, description_format = _description(row.description)
    return Posting(
        source=SOURCE, board=board, external_id=_external_id(row.id, url), title=title,
        company=clean_text(row.company), location=clean_text(row.location), url=url,
        description=description, requirements="[]", posted_date=_date(row.date_posted),
        details=PostingDetails(
            salary_min=low, salary_max=high, salary_currency=_currency(row.currency) if paid else None,
            salary_interval=row.interval if paid else None, salary_text=text,
            # JobSpy says where it read the pay: a field of the site, or the description's text
            salary_source=("description" if row.salary_source == "description" else "min_amount/max_amount")
            if paid or text else None,
            # is_remote False only means the site did not say remote: the location and title still may
            workplace_type="remote" if row.is_remote else clean_text(row.work_from_home_type) or None,
            department=clean_text(row.job_function) or None, tags=_tags(row.skills),
            description_raw=row.description,
            description_format=description_format)), True


def _currency(value: str | None) -> str | None:
    return (value or "").strip().upper() or None


def _external_id(job_id: str | None, url: str) -> str:
    """JobSpy's own id ("in-…", "li-…"); a row without one is known by its URL (hashed: URLs run long)."""
    job_id = clean_text(job_id)
    if job_id and len(job_id) <= MAX_ID_LENGTH:
        return job_id
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:32]


def _description(value: str | None) -> tuple[str, str]:
    """The description's text and its format: HTML as asked of JobSpy, or plain text (Google's)."""
    if not value:
        return "", "text"
    if _MARKUP.search(value):
        return html_to_text(value), "html"
    return "\n".join(line for line in (clean_text(line) for line in value.splitlines()) if line), "text"


def _date(value: str | None) -> str | None:
    try:
        return date.fromisoformat(value[:10]).isoformat() if value else None
    except ValueError:
        return None


def _tags(skills: str | list[str] | None) -> str | None:
    items = skills.split(",") if isinstance(skills, str) else skills or []
    tags = [clean_text(item) for item in items if clean_text(item)]
    return json.dumps(tags, ensure_ascii=False) if tags else None


def parse_jobspy(payload: RawPayload) -> ParsedSnapshot:
    """One site's postings from an archived live-search payload; `BoardError` for anything else. A job
    answered for two of the search's locations is one posting."""
    document = decode_json(payload.body, payload.location, replace_bad_utf8=True)
    calls = document.get("calls") if isinstance(document, dict) else None
    if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("jobs"), list) for c in calls):
        raise BoardError(f"{payload.location}: not a JobSpy live search "
                         "(expected {\"calls\": [{\"jobs\": [...]}]})")
    records, seen = [], set()
    for call in calls:
        for record in call["jobs"]:
            key = (record.get("id") or record.get("job_url")) if isinstance(record, dict) else None
            if key and key in seen:
                continue  # the same job answered for another location of the search
            if key:
                seen.add(key)
            records.append(record)
    return PostingCollector(lambda raw: jobspy_posting(raw, payload.board)).snapshot(payload.board, records)

