"""Himalayas: `GET {base}/jobs/api?limit=&offset=`, the whole feed paged, one partition.

A feed of remote jobs: a job missing from today's answer is not gone; it expires at its own
`expiryDate` or when not seen for a while (see `Expiry`). The archived payload is a JSON array of
the pages, each exactly as fetched.
"""
from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text, epoch_datetime
from jobsync_pipeline.core.salary import stated_bounds
from jobsync_pipeline.core.text import html_to_text
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector
from jobsync_pipeline.sources.http import PoliteClient

SOURCE = "himalayas"
DEFAULT_BASE_URL = "https://himalayas.app"
FEED_BOARD = "all"
PAGE_SIZE = 20  # the API caps a page at 20


class HimalayasJob(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    guid: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1)
    companyName: str | None = None
    employmentType: str | None = None
    companySlug: str | None = None
    minSalary: float | str | None = None
    maxSalary: float | str | None = None
    currency: str | None = None
    salaryPeriod: str | None = None  # "annual", "monthly", "hourly", …
    locationRestrictions: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    parentCategories: list[str] = Field(default_factory=list)
    description: str | None = None
    excerpt: str | None = None
    pubDate: float | str | None = None
    expiryDate: float | str | None = None
    applicationLink: str | None = None


def himalayas_posting(raw: Any) -> tuple[Posting, bool]:
    job = HimalayasJob.model_validate(raw)
    posted, expires = epoch_datetime(job.pubDate), epoch_datetime(job.expiryDate)
    low, high, text = stated_bounds(job.minSalary, job.maxSalary)
    restrictions = [clean_text(r) for r in job.locationRestrictions if clean_text(r)]
    tags = [*job.categories, *job.parentCategories]
    return Posting(
        source=SOURCE, board=FEED_BOARD, external_id=job.guid, title=clean_text(job.title),
        company=_company(job),
        # an empty restriction list means the job is open worldwide
        location=", ".join(restrictions) or "Worldwide", url=job.applicationLink or job.guid,
        description=html_to_text(job.description) or clean_text(job.excerpt), requirements="[]",
        posted_date=posted.date().isoformat() if posted else None,
        details=PostingDetails(
            salary_min=low, salary_max=high,
            salary_currency=((job.currency or "").upper() or None) if low or high else None, salary_text=text,
            salary_interval=job.salaryPeriod if low or high else None,
            salary_source="minSalary/maxSalary" if low or high or text else None,
            region_restrictions=json.dumps(restrictions, ensure_ascii=False),
            tags=json.dumps(tags, ensure_ascii=False) if tags else None,
            valid_through=expires.isoformat() if expires else None,
            description_raw=job.description, description_format="html")), True


# What Himalayas sometimes sends instead of a company's name (the field's own name, a template's blank).
_PLACEHOLDER_COMPANIES = {"", "name", "company", "companyname", "company name", "null", "none", "undefined",
                          "n/a", "na", "unknown", "tbd"}
_COMPANY_IN_URL = re.compile(r"/companies/([^/?#]+)")


def _company(job: HimalayasJob) -> str:
    """The company's name; for a placeholder, its slug (or the company part of the listing URL) as words."""
    name = clean_text(job.companyName)
    if name.casefold() not in _PLACEHOLDER_COMPANIES:
        return name
    slug = job.companySlug or next((m.group(1) for m in map(_COMPANY_IN_URL.search, (job.guid, job.applicationLink or ""))
                                    if m), "")
    return " ".join(word.capitalize() for word in re.split(r"[-_\s]+", slug) if word)


def parse_himalayas(payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
    """The feed's jobs over all its pages; raises `BoardError` for anything else."""
    pages = decode_json(payload.body, payload.location, replace_bad_utf8=True)
    if not isinstance(pages, list) or not all(isinstance(p, dict) and isinstance(p.get("jobs"), list) for p in pages):
        raise BoardError(f"{payload.location}: not Himalayas job pages (expected pages of {{\"jobs\": [...]}})")
    return PostingCollector(himalayas_posting).snapshot(payload.board, (job for page in pages for job in page["jobs"]))


class HimalayasConnector:
    """The Himalayas feed through the polite client, paged with offset/limit up to `max_pages`."""

    name = SOURCE

    def __init__(self, client: PoliteClient, base_url: str = DEFAULT_BASE_URL, *, page_size: int = PAGE_SIZE,
                 max_pages: int = 50):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages

    def jobs_url(self) -> str:
        return f"{self.base_url}/jobs/api"

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        pages: list[bytes] = []
        first = None
        offset = 0
        # a feed is read up to the cap, not to its end: the newest jobs come first
        for _ in range(self.max_pages):
            fetched = self.client.get(self.jobs_url(), params={"limit": self.page_size, "offset": offset})
            first = first or fetched
            page = decode_json(fetched.body, fetched.url, replace_bad_utf8=True)
            if not isinstance(page, dict) or not isinstance(page.get("jobs"), list):
                raise BoardError(f"{fetched.url}: not a Himalayas jobs page (expected {{\"jobs\": [...]}})")
            pages.append(fetched.body)
            offset += len(page["jobs"])
            total = page.get("totalCount")
            if not page["jobs"] or (isinstance(total, int) and offset >= total):
                break
        return RawPayload(board=board, location=self.jobs_url(), body=b"[" + b",".join(pages) + b"]",
                          fetched_at=first.fetched_at)

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_himalayas(payload)

    def close(self) -> None:
        self.client.close()
