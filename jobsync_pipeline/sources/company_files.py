"""Company job files that an outside scraper drops into a bucket as `{company}.json`."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from json.encoder import encode_basestring
from operator import attrgetter, is_
from typing import Annotated, Any, Union

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from typing_extensions import NotRequired, TypedDict

from jobsync_pipeline.core.models import KnownRecords, ParsedSnapshot, PostingColumns
from jobsync_pipeline.core.normalize import clean_text, clean_texts, digest_seed, fallback_external_id
from jobsync_pipeline.sources.base import BoardError, decode_json
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.bucket import Bucket
from jobsync_pipeline.sources.collect import MAX_ID_LENGTH, PostingCollector, normalizer_fingerprint, validation_reason

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
    Jobs given as JSON texts (`frame_texts`) are decoded and validated in one step by msgspec
    (`FastJob`); the few it refuses, and those whose values it cannot tell apart from a refusal
    (an over-long id, a blank title), go through the same validation as decoded jobs, so a posting,
    its hash and a refusal's reason are the same either way.
    """

    def __init__(self, company: str):
        super().__init__()
        self.company = company

    def digest_seed(self) -> int:
        # the file's company names the jobs that name none: another company, another posting
        return digest_seed(normalizer_fingerprint(), SOURCE, self.company)

    def build_batch(self, records: list[Any]) -> PostingColumns:
        refused: dict[int, str] = {}
        rows, jobs = [], []
        for index, (raw, job) in enumerate(zip(records, _validate_jobs(records))):
            if job is raw:  # the job schema refused it (a valid job is a new dict): validate it alone for why
                refused[index] = _refusal(raw)
            else:
                rows.append(index)
                jobs.append(job)
        values = {name: [job.get(name) for job in jobs] for name in _JOB_FIELDS}
        values["isActive"] = [job.get("isActive", True) for job in jobs]
        return self._columns(rows, values, clean_texts(values["title"]), refused)

    def build_encoded(self, texts: list[str | bytes]) -> PostingColumns:
        try:
            jobs = list(map(_decode_job, texts))
            rows = list(range(len(texts)))
        except _REFUSED:  # some text is refused: find which, one by one
            jobs, rows = [], []
            for index, text in enumerate(texts):
                try:
                    jobs.append(_decode_job(text))
                    rows.append(index)
                except _REFUSED:
                    pass
        values = {name: list(map(getter, jobs)) for name, getter in _FAST_FIELDS.items()}
        # what pydantic's str_strip_whitespace does (Rust's str::trim) to the values used uncleaned; the
        # cleaned texts are the same with or without it (`clean_text` drops edge whitespace itself)
        values["id"] = [value.strip(WHITE_SPACE) if type(value) is str else _fast_id(value) for value in values["id"]]
        values["url"] = [value.strip(WHITE_SPACE) if value else value for value in values["url"]]
        values["requirements"] = [value.strip(WHITE_SPACE) if type(value) is str else value
                                  for value in values["requirements"]]
        titles = clean_texts(values["title"])
        # an over-long id, or a title blank once stripped, is refused by the schema with its own reason
        # (and a title that only cleaning blanks is refused later): the validation of decoded jobs decides
        ids = values["id"]
        if not all(titles) or max(map(len, filter(None, ids)), default=0) > MAX_ID_LENGTH:
            keep = [row for row, (external_id, title) in enumerate(zip(ids, titles))
                    if title and (external_id is None or len(external_id) <= MAX_ID_LENGTH)]
            values = {name: [column[row] for row in keep] for name, column in values.items()}
            titles = [titles[row] for row in keep]
            rows = [rows[row] for row in keep]
        fast = self._columns(rows, values, titles, {}, strip_dates=True)
        if len(rows) == len(texts):
            return fast
        taken = set(rows)
        return PostingColumns.merge([fast, super().build_encoded(
            [text for index, text in enumerate(texts) if index not in taken]).renumbered(
            [index for index in range(len(texts)) if index not in taken])])

    def _columns(self, rows: list[int], values: dict[str, list], titles: list[str], refused: dict[int, str],
                 *, strip_dates: bool = False) -> PostingColumns:
        """The postings of validated jobs (`values`: a column per field of `CompanyJob`; `titles` cleaned)
        from the chunk's records `rows`, without the ones a date or the requirements refuse."""
        companies = [name or self.company for name in clean_texts(values["company"])]
        locations = clean_texts(values["location"])
        ids = [external_id or fallback_external_id(title, location, company)
               for external_id, title, location, company in zip(values["id"], titles, locations, companies)]
        columns = {"external_id": ids, "title": titles, "company": companies, "location": locations,
                   "url": [url or "" for url in values["url"]],
                   "description": clean_texts(values["description"]),
                   "requirements": requirements_column(values["requirements"]),
                   "posted_date": posted_date_column(values["postedDate"], strip=strip_dates)}
        for name in ("requirements", "posted_date"):  # a value these refuse refuses its record
            if _may_refuse(columns[name]):
                for row, value in enumerate(columns[name]):
                    if isinstance(value, ValueError):
                        refused.setdefault(rows[row], str(value))
        built = PostingColumns(columns, rows, values["isActive"])
        # without the records a date or the requirements refused
        if refused:
            built = built.take([row for row, index in enumerate(rows) if index not in refused])
        built.refused = sorted(refused.items())
        return built


_JOB_FIELDS = ("id", "title", "company", "location", "url", "description", "requirements", "postedDate")
# Pydantic's str_strip_whitespace is Rust's str::trim: Unicode White_Space (not \x1c-\x1f, which
# Python's str.strip() also strips).
WHITE_SPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
               + "\u2028\u2029\u202f\u205f\u3000")


class FastJob(msgspec.Struct, gc=False):
    """`CompanyJob` as msgspec decodes it straight from JSON, strictly: a value of another JSON type
    than these (a number for a text, "false" for a bool) is left to `CompanyJob`'s lax rules."""

    title: str
    id: Union[str, int, None] = None
    company: Union[str, None] = None
    location: Union[str, None] = None
    url: Union[str, None] = None
    description: Union[str, None] = None
    requirements: Union[list[str], str, None] = None
    postedDate: Union[str, None] = None
    isActive: bool = True


_decode_job = msgspec.json.Decoder(FastJob).decode
_REFUSED = (msgspec.DecodeError, RecursionError)  # what msgspec raises for a text it does not take
_FAST_FIELDS = {name: attrgetter(name) for name in (*_JOB_FIELDS, "isActive")}
# An id the fast path leaves to the validation of decoded jobs: longer than an id may be, so it is set
# aside with the over-long ones.
_SLOW = "\x00" * (MAX_ID_LENGTH + 1)


def _fast_id(value: int | None) -> str | None:
    if value is None:
        return None
    # pydantic's coerce_numbers_to_str; an integer too long for str() is left to it
    return str(value) if -10**18 < value < 10**18 else _SLOW


_validate_jobs = TypeAdapter(list[Annotated[Union[CompanyJob, Any], Field(union_mode="left_to_right")]]).validate_python


def _may_refuse(values: list) -> bool:
    """Whether a column of texts (and None) may hold a ValueError: one look at its distinct values, when
    they hash (a column of texts and None), rather than one per row."""
    try:
        return any(isinstance(value, ValueError) for value in set(values))
    except TypeError:
        return True


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
    items = [item for requirements in lists for item in requirements]
    cleaned = clean_texts(items)
    joined = "".join(cleaned)
    if "\x00" in joined:  # rare: the records that have one are found one by one
        return [_attempt(requirements_json, value) for value in values]
    if _JSON_ESCAPED.search(joined) is None and all(map(is_, cleaned, items)):
        # most columns: every requirement clean already and nothing in them JSON escapes, so each list's
        # JSON is its items quoted and joined, with no call per requirement
        return [f'["{_quoted_join(requirements)}"]' if requirements else "[]" for requirements in lists]
    encoded, at = [], 0
    for requirements in lists:
        encoded.append(f"[{', '.join(map(encode_basestring, cleaned[at:at + len(requirements)]))}]")
        at += len(requirements)
    return encoded


# What json.dumps(..., ensure_ascii=False) escapes in a string (json.encoder.ESCAPE)
_JSON_ESCAPED = re.compile(r'[\x00-\x1f\\"]')
_quoted_join = '", "'.join


def posted_date_column(values: list[str | None], *, strip: bool = False) -> list[str | None | ValueError]:
    """`posted_date` of each value (or the ValueError it raises); a file's jobs share few dates, so
    each distinct one is parsed once. `strip`: the values are not stripped yet (as pydantic would)."""
    if strip:
        known = {value: _attempt(posted_date, value.strip(WHITE_SPACE) if value else value) for value in set(values)}
    else:
        known = {value: _attempt(posted_date, value) for value in set(values)}
    return [known[value] for value in values]


def _attempt(convert: Callable[[Any], Any], value: Any) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        return exc


class CompanyFile(msgspec.Struct):
    """A company file as msgspec reads it in one pass: the header's values as JSON decodes them (validated
    by `CompanyFileHeader`), each job left as its JSON text for `JobNormalizer.frame_texts`."""

    jobs: list[msgspec.Raw]
    company: Any = msgspec.UNSET
    scrapedAt: Any = msgspec.UNSET


_decode_file = msgspec.json.Decoder(CompanyFile).decode
_UTF8_BOM = b"\xef\xbb\xbf"


def parse_company_file(payload: RawPayload, known: KnownRecords | None = None) -> ParsedSnapshot:
    """A company file's postings; raises `BoardError` when the file as a whole is unusable. `known`: the
    board's open jobs by record digest, whose records are recognised instead of decoded again
    (`PostingCollector.frame`).

    Read by msgspec, its jobs decoded and validated as they are parsed; a file msgspec does not take
    (not UTF-8, JSON that only Python's decoder accepts, no list of jobs) is read by `decode_json` and
    validated as a whole, for the same postings or the reason it is unusable."""
    body = payload.body[len(_UTF8_BOM):] if payload.body.startswith(_UTF8_BOM) else payload.body
    try:
        if not body.isascii():
            body.decode("utf-8")  # msgspec does not check the text of what it skips or leaves raw
        document = _decode_file(body)
    except (*_REFUSED, UnicodeDecodeError):
        document = decode_json(payload.body, payload.location)
        if not isinstance(document, dict):
            raise BoardError(f"{payload.location}: expected an object {{company, scrapedAt, jobs}}, "
                             f"got a JSON {type(document).__name__}") from None
        header = _header(payload, document)
        jobs, encoded = header.jobs, False
    else:
        header = _header(payload, {name: value for name in ("company", "scrapedAt")
                                   if (value := getattr(document, name)) is not msgspec.UNSET} | {"jobs": []})
        jobs, encoded = [bytes(job) for job in document.jobs], True
        del document
    company = clean_text(header.company)
    return JobNormalizer(company).snapshot(payload.board, jobs, snapshot_at=header.scrapedAt, display_name=company,
                                           encoded=encoded, known=known)


def _header(payload: RawPayload, document: dict) -> CompanyFileHeader:
    try:
        return CompanyFileHeader.model_validate(document)
    except ValidationError as exc:
        raise BoardError(f"{payload.location}: not a company job file ({validation_reason(exc)})") from exc


class CompanyFilesConnector:
    """The company-files source over a bucket: one board per `{company}.json`."""

    name = SOURCE
    complete_snapshots = True
    # parse() takes the board's known records: a file of a million jobs is mostly the same jobs again
    recognises_known_records = True

    def __init__(self, bucket: Bucket):
        self.bucket = bucket

    def boards(self) -> list[str]:
        return [f.board for f in self.bucket.list_files()]

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload:
        return self.bucket.read(board, unless_etag=previous.etag if previous else None)

    def parse(self, payload: RawPayload, company: str | None = None, known: KnownRecords | None = None) -> ParsedSnapshot:
        return parse_company_file(payload, known)  # the file names its company

    def close(self) -> None:
        """Nothing to release: the bucket opens a file per read."""
