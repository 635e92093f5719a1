"""Greenhouse job boards: `GET {base}/v1/boards/{token}/jobs?content=true`, one board per token."""
from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.text import html_to_text
from jobsync_pipeline.sources.base import BoardError, RawPayload, decode_json
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector
from jobsync_pipeline.sources.http import PoliteClient, fetched_payload

SOURCE = "greenhouse"
DEFAULT_BASE_URL = "https://boards-api.greenhouse.io"


class GreenhouseLocation(BaseModel):
    name: str | None = None


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


def greenhouse_posting(board: str, raw: Any) -> tuple[Posting, bool]:
    job = GreenhouseJob.model_validate(raw)
    published = job.first_published or job.updated_at
    return Posting(
        source=SOURCE, board=board, external_id=job.id, title=clean_text(job.title),
        company=clean_text(job.company_name) or board,
        location=clean_text(job.location.name if job.location else None), url=job.absolute_url or "",
        # Greenhouse entity-escapes its HTML content: unescape once, then read the text
        description=html_to_text(job.content, escaped=True), requirements="[]",
        posted_date=published.date().isoformat() if published else None), True


def parse_greenhouse(payload: RawPayload) -> ParsedSnapshot:
    """A board's jobs; raises `BoardError` for anything that is not a Greenhouse jobs document."""
    document = decode_json(payload.body, payload.location)
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list):
        raise BoardError(f"{payload.location}: not a Greenhouse jobs document (expected {{\"jobs\": [...]}})")
    collector = PostingCollector(partial(greenhouse_posting, payload.board))
    postings = collector.frame(document["jobs"])
    return ParsedSnapshot(board=payload.board, snapshot_at=None, postings=postings,
                          bad_records=collector.bad_records, duplicates=collector.duplicates,
                          inactive=collector.inactive)


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
