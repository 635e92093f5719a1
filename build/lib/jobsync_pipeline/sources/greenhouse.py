"""Greenhouse job boards: `GET {base}/v1/boards/{token}/jobs?content=true`, one board per token."""
from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.text import html_to_text
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector
from jobsync_pipeline.sources.http import PoliteClient, fetched_payload

SOURCE = "greenhouse"
DEFAULT_BASE_URL = "https://boards-api.greenhouse.io"


class GreenhouseLocation(BaseModel):
    name: str | None = None


class GreenhouseNamed(BaseModel):
    name: str | None = None


class GreenhouseMetadata(BaseModel):
    name: str | None = None
    value: Any = None


class GreenhousePayRange(BaseModel):
    """A pay range as the board API sends it with `pay_transparency=true` (amounts in cents)."""

    min_cents: float | None = None
    max_cents: float | None = None
    currency_type: str | None = None
    title: str | None = None


class GreenhouseJob(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1)
    absolute_url: str | None = None
    location: GreenhouseLocation | None = None
    content: str | None = None
    company_name: str | None = None
    updated_at: datetime | None = None
    first_published: datetime | None = None
    departments: list[GreenhouseNamed] | None = None
    metadata: list[GreenhouseMetadata] | None = None
    pay_input_ranges: list[GreenhousePayRange] | None = None

    def metadata_value(self, name: str) -> str | None:
        """A custom field by name (boards name theirs: "Workplace Type" is common)."""
        for field in self.metadata or []:
            if (field.name or "").strip().casefold() == name.casefold() and isinstance(field.value, str):
                return field.value
        return None


def greenhouse_posting(board: str, raw: Any) -> tuple[Posting, bool]:
    job = GreenhouseJob.model_validate(raw)
    published = job.first_published or job.updated_at
    pay = (job.pay_input_ranges or [None])[0]
    departments = [d.name for d in job.departments or [] if d.name]
    return Posting(
        source=SOURCE, board=board, external_id=job.id, title=clean_text(job.title),
        company=clean_text(job.company_name) or board,
        location=clean_text(job.location.name if job.location else None), url=job.absolute_url or "",
        # Greenhouse entity-escapes its HTML content: unescape once, then read the text
        description=html_to_text(job.content, escaped=True), requirements="[]",
        posted_date=published.date().isoformat() if published else None,
        details=PostingDetails(
            salary_min=pay.min_cents / 100 if pay and pay.min_cents else None,
            salary_max=pay.max_cents / 100 if pay and pay.max_cents else None,
            salary_currency=pay.currency_type if pay else None, salary_interval="year" if pay else None,
            salary_text=pay.title if pay else None,
            workplace_type=job.metadata_value("Workplace Type"),
            department=clean_text(departments[0]) if departments else None,
            tags=json.dumps(departments, ensure_ascii=False) if departments else None,
            description_raw=job.content, description_format="escaped_html")), True


def parse_greenhouse(payload: RawPayload) -> ParsedSnapshot:
    """A board's jobs; raises `BoardError` for anything that is not a Greenhouse jobs document."""
    document = decode_json(payload.body, payload.location)
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list):
        raise BoardError(f"{payload.location}: not a Greenhouse jobs document (expected {{\"jobs\": [...]}})")
    return PostingCollector(partial(greenhouse_posting, payload.board)).snapshot(payload.board, document["jobs"])


class GreenhouseConnector:
    """Greenhouse boards through the polite client; a board's token is its partition key."""

    name = SOURCE

    def __init__(self, client: PoliteClient, base_url: str = DEFAULT_BASE_URL):
        self.client = client
        self.base_url = base_url.rstrip("/")

    def jobs_url(self, board: str) -> str:
        return f"{self.base_url}/v1/boards/{board}/jobs"

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        fetched = self.client.get(self.jobs_url(board), params={"content": "true"},
                                  etag=previous.etag if previous else None,
                                  last_modified=previous.last_modified if previous else None)
        return fetched_payload(board, fetched)

    def parse(self, payload: RawPayload) -> ParsedSnapshot:
        return parse_greenhouse(payload)

    def close(self) -> None:
        self.client.close()
