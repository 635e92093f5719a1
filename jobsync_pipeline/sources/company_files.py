"""Company job files that an outside scraper drops into a bucket as `{company}.json`."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from json.encoder import encode_basestring
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from typing_extensions import NotRequired, TypedDict

from jobsync_pipeline.core.models import ParsedSnapshot, PostingColumns
from jobsync_pipeline.core.normalize import clean_text, clean_texts, fallback_external_id
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
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
    # the other texts are checked on the postings (`PostingColumns.storage_problems`); here JSON
    # would escape a NUL and hide it until a reader decodes it
    if "\x00" in "".join(cleaned):
        raise ValueError("requirements: contains a NUL character")
    # what json.dumps(cleaned, ensure_ascii=False) writes, without building an encoder per call
    return f"[{', '.join(map(encode_basestring, cleaned))}]"


class JobNormalizer(PostingCollector):
    """A company file's jobs as postings, chunk by chunk (a large file can stream through).

    Built a column at a time: one validation call for the chunk, texts checked in groups, each
    distinct date parsed once. `company` is the file's display name, for the jobs that name none.
    """

    def __init__(self, company: str):
        super().__init__()
        self.company = company

    def build_batch(self, records: list[Any]) -> PostingColumns:
        refused: dict[int, str] = {}
        rows, jobs = [], []
        for index, (raw, job) in enumerate(zip(records, _validate_jobs(records))):
            if job is raw:  # the job schema refused it (a valid job is a new dict): validate it alone for why
                refused[index] = _refusal(raw)
            else:
                rows.append(index)
                jobs.append(job)
        titles = clean_texts([job["title"] for job in jobs])
        companies = [name or self.company for name in clean_texts([job.get("company") for job in jobs])]
        locations = clean_texts([job.get("location") for job in jobs])
        ids = [job.get("id") or fallback_external_id(title, location, company)
               for job, title, location, company in zip(jobs, titles, locations, companies)]
        columns = {"external_id": ids, "title": titles, "company": companies, "location": locations,
                   "url": [job.get("url") or "" for job in jobs],
                   "description": clean_texts([job.get("description") for job in jobs]),
                   "requirements": requirements_column([job.get("requirements") for job in jobs]),
                   "posted_date": posted_date_column([job.get("postedDate") for job in jobs])}
        for name in ("requirements", "posted_date"):  # a value these refuse refuses its record
            for row, value in enumerate(columns[name]):
                if isinstance(value, ValueError):
                    refused.setdefault(rows[row], str(value))
        built = PostingColumns(columns, rows, [job.get("isActive", True) for job in jobs])
        # without the records a date or the requirements refused
        built = built.take([row for row, index in enumerate(rows) if index not in refused])
        built.refused = sorted(refused.items())
        return built


_validate_jobs = TypeAdapter(list[Annotated[Union[CompanyJob, Any], Field(union_mode="left_to_right")]]).validate_python


def _refusal(raw: Any) -> str:
    try:
        _validate_job(raw)
    except ValidationError as exc:
        return validation_reason(exc)
    raise AssertionError(f"a job the chunk's validation refused passed alone: {raw!r:.200}")


def requirements_column(values: list) -> list[str | ValueError]:
    """`requirements_json` of each value (or the ValueError it raises), with all the requirements of
    the column cleaned in one `clean_texts` pass."""
    lists = [[] if not value else [value] if isinstance(value, str) else value for value in values]
    cleaned = clean_texts([item for items in lists for item in items])
    if "\x00" in "".join(cleaned):  # rare: the records that have one are found one by one
        return [_attempt(requirements_json, value) for value in values]
    encoded, at = [], 0
    for items in lists:
        encoded.append(f"[{', '.join(map(encode_basestring, cleaned[at:at + len(items)]))}]")
        at += len(items)
    return encoded


def posted_date_column(values: list[str | None]) -> list[str | None | ValueError]:
    """`posted_date` of each value (or the ValueError it raises); a file's jobs share few dates, so
    each distinct one is parsed once."""
    known = {value: _attempt(posted_date, value) for value in set(values)}
    return [known[value] for value in values]


def _attempt(convert: Callable[[Any], Any], value: Any) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        return exc


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
    return JobNormalizer(company).snapshot(payload.board, header.jobs, snapshot_at=header.scrapedAt,
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

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_company_file(payload)  # the file names its company

    def close(self) -> None:
        """Nothing to release: the bucket opens a file per read."""
