"""Company job files that an outside scraper drops into a bucket as `{company}.json`."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from json.encoder import encode_basestring
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from typing_extensions import NotRequired, TypedDict

from jobsync_pipeline.core.models import ParsedSnapshot, Posting
from jobsync_pipeline.core.normalize import clean_text, fallback_external_id
from jobsync_pipeline.sources.base import BoardError, RawPayload, decode_json
from jobsync_pipeline.sources.bucket import Bucket
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector, validation_reason

SOURCE = "company_files"
MAX_DATE_LENGTH = 32  # jobs.posted_date: a longer value would fail the board's apply on PostgreSQL


class CompanyJob(TypedDict):
    """One job as the scraper writes it; lax where scrapers are sloppy, strict where it matters.

    A TypedDict validated by pydantic rather than a model: it validates in half the time, and a
    large file has a million of them.
    """

    # Numeric ids are common; a bool written as "false" is coerced by pydantic's lax bool rules
    # (only true/false/yes/no/on/off/1/0 are accepted), so "false" can never count as active.
    __pydantic_config__ = ConfigDict(coerce_numbers_to_str=True, extra="ignore", str_strip_whitespace=True)

    id: NotRequired[Annotated[str | None, Field(max_length=MAX_ID_LENGTH)]]
    title: Annotated[str, Field(min_length=1)]
    company: NotRequired[str | None]
    location: NotRequired[str | None]
    url: NotRequired[str | None]
    description: NotRequired[str | None]
    requirements: NotRequired[list[str] | str | None]  # a list, or one requirement as a string
    postedDate: NotRequired[str | None]
    isActive: NotRequired[bool]


_validate_job = TypeAdapter(CompanyJob).validate_python


def posted_date(value: str | None) -> str | None:
    """An ISO timestamp as its date; another short text as it is (scrapers write "3 days ago")."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        if len(value) > MAX_DATE_LENGTH:
            raise ValueError(f"postedDate: not an ISO date and longer than {MAX_DATE_LENGTH} characters") from None
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


def requirements_json(requirements: list[str] | str | None) -> str:
    """The requirements as the JSON list a posting keeps, each cleaned like the other texts."""
    if not requirements:
        return "[]"
    if isinstance(requirements, str):
        requirements = [requirements]
    # most lists are clean already: one check over them all (a blank, a doubled or an edge space in
    # any of them shows as two spaces in the joined text) instead of one call per requirement
    joined = " ".join(requirements)
    if clean_text(joined) is joined and joined[:1] != " " and "" not in requirements:
        cleaned = requirements
    else:
        cleaned = [clean_text(requirement) for requirement in requirements]
    # the other texts are checked on the posting (`storage_problem`); here JSON would escape a NUL
    # and hide it until a reader decodes it
    if "\x00" in "".join(cleaned):
        raise ValueError("requirements: contains a NUL character")
    # what json.dumps(cleaned, ensure_ascii=False) writes, without building an encoder per call
    return f"[{', '.join(map(encode_basestring, cleaned))}]"


def company_posting(board: str, company: str, raw: Any) -> tuple[Posting, bool]:
    """A scraped job as a posting; `company` is the file's display name, for jobs that name none."""
    job = _validate_job(raw)
    company = clean_text(job.get("company")) or company
    title, location = clean_text(job["title"]), clean_text(job.get("location"))
    return Posting(
        source=SOURCE, board=board, external_id=job.get("id") or fallback_external_id(title, location, company),
        title=title, company=company, location=location, url=job.get("url") or "",
        description=clean_text(job.get("description")),
        requirements=requirements_json(job.get("requirements")),
        posted_date=posted_date(job.get("postedDate"))), job.get("isActive", True)


class JobNormalizer(PostingCollector):
    """A company file's jobs as postings, chunk by chunk (a large file can stream through)."""

    def __init__(self, board: str, company: str):
        super().__init__(partial(company_posting, board, company))


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
    company = clean_text(header.company)
    return JobNormalizer(payload.board, company).snapshot(payload.board, header.jobs, snapshot_at=header.scrapedAt,
                                                          display_name=company)


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
