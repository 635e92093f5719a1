"""Company job files that an outside scraper drops into a bucket as `{company}.json`."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobsync_pipeline.core.models import ParsedSnapshot, Posting
from jobsync_pipeline.core.normalize import clean_text, fallback_external_id
from jobsync_pipeline.sources.base import BoardError, RawPayload, decode_json
from jobsync_pipeline.sources.bucket import Bucket
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector, validation_reason

SOURCE = "company_files"
MAX_DATE_LENGTH = 32  # jobs.posted_date: a longer value would fail the board's apply on PostgreSQL


class CompanyJob(BaseModel):
    """One job as the scraper writes it; lax where scrapers are sloppy, strict where it matters."""

    # Numeric ids are common; a bool written as "false" is coerced by pydantic's lax bool rules
    # (only true/false/yes/no/on/off/1/0 are accepted), so "false" can never count as active.
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore", str_strip_whitespace=True)

    id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1)
    company: str | None = None
    location: str | None = None
    url: str | None = None
    description: str | None = None
    requirements: list[str] = Field(default_factory=list)
    postedDate: str | None = None
    isActive: bool = True

    @field_validator("requirements", mode="before")
    @classmethod
    def _single_requirement(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("id", "title", "company", "location", "url", "description", "requirements", "postedDate",
                     mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: one such posting would fail the board's whole apply
        if any("\x00" in v for v in ([value] if isinstance(value, str) else value or [])):
            raise ValueError("contains a NUL character")
        return value

    @field_validator("postedDate", mode="after")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            if len(value) > MAX_DATE_LENGTH:
                raise ValueError(f"not an ISO date and longer than {MAX_DATE_LENGTH} characters") from None
            return value


class CompanyFileHeader(BaseModel):
    company: str = Field(min_length=1)
    scrapedAt: datetime
    jobs: list[Any]

    @field_validator("company", mode="after")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:  # it becomes the company of the jobs that name none
            raise ValueError("contains a NUL character")
        return value

    @field_validator("scrapedAt", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def company_posting(board: str, company: str, raw: Any) -> tuple[Posting, bool]:
    """A scraped job as a posting; `company` is the file's display name, for jobs that name none."""
    job = CompanyJob.model_validate(raw)
    company = clean_text(job.company) or company
    title, location = clean_text(job.title), clean_text(job.location)
    return Posting.model_construct(
        source=SOURCE, board=board, external_id=job.id or fallback_external_id(title, location, company),
        title=title, company=company, location=location, url=job.url or "",
        description=clean_text(job.description),
        requirements=json.dumps([clean_text(r) for r in job.requirements], ensure_ascii=False),
        posted_date=job.postedDate), job.isActive


class JobNormalizer(PostingCollector):
    """A company file's jobs as postings, chunk by chunk (a large file can stream through)."""

    def __init__(self, board: str, company: str):
        super().__init__(lambda raw: company_posting(board, company, raw))


def parse_company_file(payload: RawPayload) -> ParsedSnapshot:
    """A company file's postings; raises `BoardError` when the file as a whole is unusable."""
    document = decode_json(payload.body, payload.location)
    if not isinstance(document, dict):
        raise BoardError(f"{payload.location}: expected an object {{company, scrapedAt, jobs}}, "
                         f"got a JSON {type(document).__name__}")
    try:
        header = CompanyFileHeader.model_validate(document)
    except ValidationError as exc:
        raise BoardError(f"{payload.location}: not a company job file ({validation_reason(exc)})") from exc
    normalizer = JobNormalizer(payload.board, clean_text(header.company))
    postings = normalizer.frame(header.jobs)
    return ParsedSnapshot(
        board=payload.board, snapshot_at=header.scrapedAt, postings=postings,
        bad_records=normalizer.bad_records, duplicates=normalizer.duplicates,
        inactive=normalizer.inactive, display_name=clean_text(header.company))


class CompanyFilesConnector:
    """The company-files source over a bucket: one board per `{company}.json`."""

    name = SOURCE
    complete_snapshots = True

    def __init__(self, bucket: Bucket):
        self.bucket = bucket

    def boards(self) -> list[str]:
        return [f.board for f in self.bucket.list_files()]

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        return self.bucket.read(board, unless_etag=previous.etag if previous else None)

    def parse(self, payload: RawPayload) -> ParsedSnapshot:
        return parse_company_file(payload)

    def close(self) -> None:
        """Nothing to release: the bucket opens a file per read."""
