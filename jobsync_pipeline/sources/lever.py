"""Lever postings: `GET {base}/v0/postings/{site}?mode=json&skip=&limit=`, paged until a short page.

The archived payload is a JSON array of the pages, each exactly as fetched.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.salary import pay_text_in
from jobsync_pipeline.core.text import html_lines, html_to_text
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector
from jobsync_pipeline.sources.http import PoliteClient

SOURCE = "lever"
DEFAULT_BASE_URL = "https://api.lever.co"


class LeverCategories(BaseModel):
    location: str | None = None
    allLocations: list[str] = Field(default_factory=list)
    team: str | None = None
    department: str | None = None
    commitment: str | None = None


class LeverList(BaseModel):
    text: str | None = None
    content: str | None = None


class LeverSalaryRange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    min: float | None = None
    max: float | None = None
    currency: str | None = None
    interval: str | None = None  # per-year-salary, per-month-salary, per-hour-wage


class LeverPosting(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    text: str = Field(min_length=1)
    hostedUrl: str | None = None
    categories: LeverCategories = Field(default_factory=LeverCategories)
    createdAt: int | None = None
    description: str | None = None
    descriptionPlain: str | None = None
    lists: list[LeverList] = Field(default_factory=list)
    additional: str | None = None  # the closing section (benefits, often the pay range), HTML
    additionalPlain: str | None = None
    workplaceType: str | None = None
    salaryRange: LeverSalaryRange | None = None
    salaryDescription: str | None = None
    salaryDescriptionPlain: str | None = None


def epoch_date(value: int | None) -> str | None:
    """An epoch in milliseconds (Lever) or seconds, as an ISO date."""
    if value is None:
        return None
    seconds = value / 1000 if value > 10**11 else value
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date().isoformat()


def lever_posting(board: str, raw: Any, company: str | None = None) -> tuple[Posting, bool]:
    job = LeverPosting.model_validate(raw)
    # a posting open in several places lists them all in allLocations ("London", "Stockholm")
    locations = [clean_text(place) for place in [job.categories.location, *job.categories.allLocations]]
    requirements = [line for item in job.lists for line in html_lines(item.content)]
    opening = (job.descriptionPlain or html_to_text(job.description)).strip()
    closing = (job.additionalPlain or html_to_text(job.additional)).strip()
    teams = [t for t in (job.categories.department, job.categories.team) if t]
    return Posting(
        source=SOURCE, board=board, external_id=job.id, title=clean_text(job.text), company=company or board,
        location="; ".join(dict.fromkeys(place for place in locations if place)), url=job.hostedUrl or "",
        description="\n\n".join(part for part in (opening, closing) if part),
        requirements=json.dumps(requirements, ensure_ascii=False), posted_date=epoch_date(job.createdAt),
        details=PostingDetails(
            **_pay(job, opening, closing), workplace_type=job.workplaceType,
            department=clean_text(job.categories.department) or None,
            tags=json.dumps(teams, ensure_ascii=False) if teams else None,
            description_raw="".join(part for part in (job.description, job.additional) if part) or None,
            description_format="html")), True


def _pay(job: LeverPosting, opening: str, closing: str) -> dict[str, Any]:
    """The salary fields: `salaryRange` when the site fills it in (its interval stated), else the pay
    written in `salaryDescription`, else a sentence of the closing section or the description that
    states pay ("The US base salary range for this role is $95.4K–$190K annually")."""
    pay = job.salaryRange
    stated = clean_text(job.salaryDescriptionPlain or html_to_text(job.salaryDescription)) or None
    if pay is not None and (pay.min or pay.max):
        return {"salary_min": pay.min, "salary_max": pay.max, "salary_currency": pay.currency,
                "salary_interval": pay.interval, "salary_text": stated, "salary_source": "salaryRange"}
    if stated and pay_text_in([stated]):
        return {"salary_text": stated, "salary_currency": pay.currency if pay else None,
                "salary_source": "salaryDescription"}
    for name, text in (("additional", closing), ("description", opening)):
        found = pay_text_in(text.splitlines())
        if found:
            return {"salary_text": found, "salary_source": name}
    return {}


def parse_lever(payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
    """A site's postings over all its pages; raises `BoardError` for anything else. `company`: the
    site's company name from the registry (Lever names none; the site slug stands in without one)."""
    pages = decode_json(payload.body, payload.location)
    if not isinstance(pages, list) or not all(isinstance(page, list) for page in pages):
        raise BoardError(f"{payload.location}: not Lever postings (expected a JSON array of pages)")
    return PostingCollector(partial(lever_posting, payload.board, company=company)).snapshot(
        payload.board, (posting for page in pages for posting in page))


class LeverConnector:
    """Lever sites through the polite client, paged with skip/limit until a short page."""

    name = SOURCE

    def __init__(self, client: PoliteClient, base_url: str = DEFAULT_BASE_URL, *, page_size: int = 100,
                 max_pages: int = 50):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages

    def postings_url(self, board: str) -> str:
        return f"{self.base_url}/v0/postings/{board}"

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        pages: list[bytes] = []
        first = None
        for number in range(self.max_pages):
            fetched = self.client.get(self.postings_url(board),
                                      params={"mode": "json", "skip": number * self.page_size,
                                              "limit": self.page_size})
            first = first or fetched
            pages.append(fetched.body)
            page = decode_json(fetched.body, fetched.url)
            if not isinstance(page, list):
                raise BoardError(f"{fetched.url}: not a Lever postings page (expected a JSON array)")
            if len(page) < self.page_size:
                break
        else:
            raise BoardError(f"{self.postings_url(board)}: more than {self.max_pages} pages of "
                             f"{self.page_size}; raise max_pages if the site is really that large")
        # every page exactly as fetched, in order, as one JSON array
        return RawPayload(board=board, location=self.postings_url(board), body=b"[" + b",".join(pages) + b"]",
                          fetched_at=first.fetched_at)

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_lever(payload, company)

    def close(self) -> None:
        self.client.close()
