"""RemoteOK: `GET {base}/api?tag={tag}`, one partition per tag, a feed of recent remote jobs.

The answer is a JSON array whose first element is the API's legal notice, not a job. A feed lists
recent postings only: a job missing from today's answer is not gone (see `Expiry`).
"""
from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.models import ParsedSnapshot, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text, epoch_datetime
from jobsync_pipeline.core.salary import stated_bounds
from jobsync_pipeline.core.text import html_to_text
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector
from jobsync_pipeline.sources.http import PoliteClient, fetched_payload

SOURCE = "remoteok"
DEFAULT_BASE_URL = "https://remoteok.com"
DEFAULT_TAGS = ("dev", "engineer", "backend", "frontend", "full-stack", "devops", "data", "design", "marketing",
                "sales", "support", "product", "management")
FEED_BOARD = "all"  # every tag lists into one catalog: a job under three tags is one job


class RemoteOkJob(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    position: str = Field(min_length=1)
    company: str | None = None
    location: str | None = None
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    url: str | None = None
    apply_url: str | None = None
    epoch: float | str | None = None
    date: str | None = None
    salary_min: float | str | None = None
    salary_max: float | str | None = None


def is_legal_notice(record: Any) -> bool:
    return isinstance(record, dict) and "legal" in record and "id" not in record


def remoteok_posting(raw: Any) -> tuple[Posting, bool]:
    job = RemoteOkJob.model_validate(raw)
    posted = epoch_datetime(job.epoch)
    low, high, text = stated_bounds(job.salary_min, job.salary_max)
    return Posting(
        source=SOURCE, board=FEED_BOARD, external_id=job.id,
        # RemoteOK entity-escapes some titles and names ("R&amp;D")
        title=clean_text(html.unescape(job.position)), company=clean_text(html.unescape(job.company or "")),
        location=clean_text(job.location), url=job.url or job.apply_url or "",
        description=html_to_text(job.description), requirements="[]",
        posted_date=posted.date().isoformat() if posted else (job.date or "")[:10] or None,
        details=PostingDetails(
            # RemoteOK states no interval: "21"–"24" is an hourly rate, "120000" a yearly salary; the
            # interval is inferred from the size when the job is written, and recorded as inferred
            salary_min=low, salary_max=high, salary_currency="USD" if low or high else None, salary_text=text,
            salary_source="salary_min/salary_max" if low or high or text else None,
            # a remote-only feed: every job on it is remote, whatever its location says
            workplace_type="remote",
            tags=json.dumps(job.tags, ensure_ascii=False) if job.tags else None,
            description_raw=job.description, description_format="html")), True


def parse_remoteok(payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
    """One tag's jobs; raises `BoardError` for anything that is not a RemoteOK feed."""
    document = decode_json(payload.body, payload.location, replace_bad_utf8=True)
    if not isinstance(document, list):
        raise BoardError(f"{payload.location}: not a RemoteOK feed (expected a JSON array)")
    records = [record for record in document if not is_legal_notice(record)]
    return PostingCollector(remoteok_posting).snapshot(payload.board, records)


class RemoteOkConnector:
    """RemoteOK's feed through the polite client; a tag is a partition, all tags one catalog."""

    name = SOURCE

    def __init__(self, client: PoliteClient, base_url: str = DEFAULT_BASE_URL):
        self.client = client
        self.base_url = base_url.rstrip("/")

    def feed_url(self) -> str:
        return f"{self.base_url}/api"

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        fetched = self.client.get(self.feed_url(), params={"tag": board},
                                  etag=previous.etag if previous else None,
                                  last_modified=previous.last_modified if previous else None)
        return fetched_payload(board, fetched)

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_remoteok(payload)

    def close(self) -> None:
        self.client.close()
