"""Company job files that an outside scraper drops into a bucket as `{company}.json`."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobsync_pipeline.core.models import BadRecord, ParsedSnapshot, Posting, postings_frame
from jobsync_pipeline.core.normalize import clean_text, fallback_external_id
from jobsync_pipeline.sources.base import BoardError, RawPayload
from jobsync_pipeline.sources.bucket import Bucket

SOURCE = "company_files"
_UTF8_BOM = b"\xef\xbb\xbf"
# The store's column widths (jobs.external_id, jobs.posted_date): a longer value would fail the board's apply.
MAX_ID_LENGTH = 255
MAX_DATE_LENGTH = 32


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


class JobNormalizer:
    """Turns validated jobs into posting rows, chunk by chunk, remembering ids across chunks."""

    def __init__(self, board: str, company: str):
        self.board = board
        self.company = company
        self.seen: set[str] = set()
        self.bad_records: list[BadRecord] = []
        self.duplicates: list[str] = []
        self.inactive = 0

    def frame(self, jobs: Iterable[Any], start: int = 0) -> pd.DataFrame:
        """The postings of `jobs` (positions counted from `start`); refused ones are kept aside."""
        postings = (self._posting(position, raw) for position, raw in enumerate(jobs, start))
        return postings_frame(p for p in postings if p is not None)

    def _posting(self, position: int, raw: Any) -> Posting | None:
        try:
            job = CompanyJob.model_validate(raw)
        except ValidationError as exc:
            self._refuse(position, raw, _reason(exc))
            return None
        company = clean_text(job.company) or self.company
        title, location = clean_text(job.title), clean_text(job.location)
        external_id = job.id or fallback_external_id(title, location, company)
        if not job.isActive:
            self.inactive += 1  # a withdrawn job is gone from the board, like an absent one
            self.seen.add(external_id)
            return None
        if external_id in self.seen:
            self.duplicates.append(external_id)
            return None
        self.seen.add(external_id)
        return Posting.model_construct(
            source=SOURCE, board=self.board, external_id=external_id, title=title, company=company,
            location=location, url=job.url or "", description=clean_text(job.description),
            requirements=json.dumps([clean_text(r) for r in job.requirements], ensure_ascii=False),
            posted_date=job.postedDate)

    def _refuse(self, position: int, raw: Any, reason: str) -> None:
        external_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            record = json.dumps(raw, ensure_ascii=False, default=str)
        except RecursionError:  # json.loads managed it with a few frames to spare
            record = '"(record nested too deeply to show)"'
        self.bad_records.append(BadRecord(
            position=position, reason=reason,
            record=_storable(record)[:10_000],
            external_id=None if external_id is None else _storable(str(external_id))[:MAX_ID_LENGTH]))


def _storable(text: str) -> str:
    """`text` as the store can hold it: a lone surrogate (an emoji a JS scraper cut in half) becomes
    `\\udXXX` and NUL `\\u0000`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())


def decode_json(body: bytes, location: str) -> Any:
    """JSON from bytes as real tools write them (UTF-8 with or without BOM, UTF-16/32 with BOM)."""
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BoardError(f"{location}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise BoardError(f"{location}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise BoardError(f"{location}: not usable JSON (nested too deeply)") from exc


def parse_company_file(payload: RawPayload) -> ParsedSnapshot:
    """A company file's postings; raises `BoardError` when the file as a whole is unusable."""
    document = decode_json(payload.body, payload.location)
    if not isinstance(document, dict):
        raise BoardError(f"{payload.location}: expected an object {{company, scrapedAt, jobs}}, "
                         f"got a JSON {type(document).__name__}")
    try:
        header = CompanyFileHeader.model_validate(document)
    except ValidationError as exc:
        raise BoardError(f"{payload.location}: not a company job file ({_reason(exc)})") from exc
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

    def fetch(self, board: str) -> RawPayload:
        return self.bucket.read(board)

    def parse(self, payload: RawPayload) -> ParsedSnapshot:
        return parse_company_file(payload)


