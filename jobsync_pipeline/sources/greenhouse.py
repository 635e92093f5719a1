"""Greenhouse job boards: `GET {base}/v1/boards/{token}/jobs?content=true`, one board per token."""
from __future__ import annotations

import html
import json
import re
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.salary import pay_text_in
from jobsync_pipeline.core.text import html_lines
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


# The pay-transparency block Greenhouse renders into `content` when a board sets pay ranges:
# <div class="title">United States Salary Range</div><div class="pay-range"><span>$139,200</span>…</div>
_PAY_BLOCK = re.compile(r'<div class="title">(?P<title>.*?)</div>\s*<div class="pay-range">(?P<range>.*?)</div>',
                        re.DOTALL)


def greenhouse_posting(board: str, raw: Any, company: str | None = None) -> tuple[Posting, bool]:
    job = GreenhouseJob.model_validate(raw)
    published = job.first_published or job.updated_at
    # Greenhouse entity-escapes its HTML content: unescape once, then read the text
    markup = html.unescape(job.content) if job.content else None
    lines = html_lines(markup)
    departments = [d.name for d in job.departments or [] if d.name]
    return Posting(
        source=SOURCE, board=board, external_id=job.id, title=clean_text(job.title),
        company=clean_text(job.company_name) or company or board,
        location=clean_text(job.location.name if job.location else None), url=job.absolute_url or "",
        description="\n".join(lines), requirements="[]",
        posted_date=published.date().isoformat() if published else None,
        details=PostingDetails(
            **_pay(job, markup, lines),
            workplace_type=job.metadata_value("Workplace Type") or job.metadata_value("Location Type"),
            department=clean_text(departments[0]) if departments else None,
            tags=json.dumps(departments, ensure_ascii=False) if departments else None,
            description_raw=job.content, description_format="escaped_html")), True


def _pay(job: GreenhouseJob, markup: str | None, lines: list[str]) -> dict[str, Any]:
    """The salary fields, from the best the board gives: the structured ranges (in cents; sent only by
    the single-job endpoint with pay_transparency=true), else the pay block of the content, else a
    sentence of the content that states pay. Greenhouse states no interval: it is read from the text
    or inferred from the amounts."""
    pay = next((r for r in job.pay_input_ranges or [] if r.min_cents or r.max_cents), None)
    if pay is not None:
        return {"salary_min": pay.min_cents / 100 if pay.min_cents else None,
                "salary_max": pay.max_cents / 100 if pay.max_cents else None,
                "salary_currency": pay.currency_type, "salary_text": clean_text(pay.title) or None,
                "salary_source": "pay_input_ranges"}
    block = _PAY_BLOCK.search(markup or "")
    if block:
        text = clean_text(" ".join(html_lines(f"<p>{block['title']}</p><p>{block['range']}</p>")))
        return {"salary_text": text, "salary_source": "content_pay_range"}
    text = pay_text_in(lines)
    return {"salary_text": text, "salary_source": "content"} if text else {}


def parse_greenhouse(payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
    """A board's jobs; raises `BoardError` for anything that is not a Greenhouse jobs document. `company`:
    the board's name in the registry, for jobs that do not name their company."""
    document = decode_json(payload.body, payload.location)
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list):
        raise BoardError(f"{payload.location}: not a Greenhouse jobs document (expected {{\"jobs\": [...]}})")
    return PostingCollector(partial(greenhouse_posting, payload.board, company=company)).snapshot(
        payload.board, document["jobs"])


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

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_greenhouse(payload, company)

    def close(self) -> None:
        self.client.close()
