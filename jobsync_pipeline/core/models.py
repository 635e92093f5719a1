"""The normalized posting every source produces, and the records a parse sets aside."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter

import pandas as pd
from jobsync_pipeline.core.normalize import content_hash

MAX_ID_LENGTH = 255  # jobs.external_id: a longer id would fail the board's apply on PostgreSQL
# The fields whose change makes a posting "changed"; the order is part of the hash and must not move.
CONTENT_FIELDS = ("title", "company", "location", "url", "description", "requirements", "posted_date")
# What some sources state beyond the core fields. Hashed after the content fields when a posting has
# details, so the hashes of postings without (company files) stay as they were before details existed.
HASHED_DETAIL_FIELDS = ("salary_min", "salary_max", "salary_currency", "salary_interval", "salary_text",
                        "workplace_type", "region_restrictions", "department", "tags", "valid_through")
# Kept with the job as fetched, but not a change by themselves (the text form is in `description`).
DETAIL_FIELDS = (*HASHED_DETAIL_FIELDS, "description_raw", "description_format")
POSTING_COLUMNS = ("external_id", *CONTENT_FIELDS, *DETAIL_FIELDS, "content_hash")
DESCRIPTION_FORMATS = ("text", "html", "escaped_html")


@dataclass(slots=True)
class PostingDetails:
    """What a source states beyond the core fields, as it stated it; derived values (annual salary,
    workplace, category, sanitized HTML) are computed from these when a job row is written."""

    salary_min: float | None = None
    salary_max: float | None = None
    salary_currency: str | None = None
    salary_interval: str | None = None  # the source's own word: "per-year-salary", "year", …
    salary_text: str | None = None
    workplace_type: str | None = None  # a structured field (Lever workplaceType)
    region_restrictions: str | None = None  # JSON list from a structured field; "[]" means anywhere
    department: str | None = None
    tags: str | None = None  # JSON list: feed tags, categories, teams
    valid_through: str | None = None  # ISO 8601 UTC: the source's own expiry of the posting
    description_raw: str | None = None  # exactly as fetched (HTML, entity-escaped HTML or text)
    description_format: str = "text"  # one of DESCRIPTION_FORMATS

    def hashed(self) -> list[str | None]:
        return [None if value is None else str(value) for value in _HASHED_DETAILS(self)]


_HASHED_DETAILS = attrgetter(*HASHED_DETAIL_FIELDS)
_DETAILS = attrgetter(*DETAIL_FIELDS)
_NO_DETAILS = (None,) * (len(DETAIL_FIELDS) - 1) + ("text",)


@dataclass(slots=True)
class Posting:
    """One job posting on one board, normalized; `key` is stable across snapshots of that board.

    A plain dataclass, not a pydantic model: sources validate their own records at the boundary and
    build postings from validated values, so construction must be cheap (millions per snapshot; a
    frozen dataclass costs twice as much to build). What every posting must satisfy before it is
    stored is checked once for all sources: `storage_problem`.
    """

    source: str
    board: str
    external_id: str
    title: str
    company: str
    location: str = ""
    url: str = ""
    description: str = ""
    requirements: str = "[]"  # JSON list of requirement strings
    posted_date: str | None = None
    details: PostingDetails | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.board}:{self.external_id}"

    @property
    def content_hash(self) -> int:
        values = [getattr(self, name) for name in CONTENT_FIELDS]
        return content_hash(values if self.details is None else values + self.details.hashed())

    def row(self) -> dict:
        details = _NO_DETAILS if self.details is None else _DETAILS(self.details)
        return {"external_id": self.external_id,
                **{name: getattr(self, name) for name in CONTENT_FIELDS},
                **dict(zip(DETAIL_FIELDS, details)),
                "content_hash": self.content_hash}


_CORE_FIELDS = attrgetter("external_id", *CONTENT_FIELDS)


def storage_problem(posting: Posting) -> str | None:
    """Why `posting` cannot be stored (a reason for its bad record), or None when it can."""
    if not posting.external_id:
        return "external_id: empty"
    if len(posting.external_id) > MAX_ID_LENGTH:
        return f"external_id: longer than {MAX_ID_LENGTH} characters"
    if not posting.title:
        return "title: empty"
    # PostgreSQL text cannot hold NUL: one such posting would fail the board's whole apply. One
    # search over all the texts at once; the field is named only when there is one to name.
    if "\x00" in "".join(filter(None, _CORE_FIELDS(posting))):
        for name in ("external_id", *CONTENT_FIELDS):
            value = getattr(posting, name)
            if value and "\x00" in value:
                return f"{name}: contains a NUL character"
    if posting.details is not None:
        for name, value in zip(DETAIL_FIELDS, _DETAILS(posting.details)):
            if isinstance(value, str) and "\x00" in value:
                return f"{name}: contains a NUL character"
    return None


def postings_frame(postings: Iterable[Posting]) -> pd.DataFrame:
    """Postings as the frame the diff engine and the store take: one row each, `POSTING_COLUMNS`."""
    postings = list(postings)
    rows = [_CORE_FIELDS(posting) for posting in postings]
    # object columns keep None as None (pandas' str dtype would turn it into NaN on the way to SQL)
    columns = zip(*rows) if rows else ([] for _ in CONTENT_FIELDS + ("external_id",))
    frame = {name: pd.Series(values, dtype=object) for name, values in zip(POSTING_COLUMNS, columns)}
    details = [posting.details for posting in postings]
    if any(d is not None for d in details):
        detail_rows = [_NO_DETAILS if d is None else _DETAILS(d) for d in details]
        for name, values in zip(DETAIL_FIELDS, zip(*detail_rows)):
            frame[name] = pd.Series(values, dtype=object)
        hashes = [content_hash(row[1:] if d is None else [*row[1:], *d.hashed()]) for row, d in zip(rows, details)]
    else:  # most boards state no details: no per-posting work for them
        for name, value in zip(DETAIL_FIELDS, _NO_DETAILS):
            frame[name] = pd.Series([value] * len(rows), dtype=object)
        hashes = [content_hash(row[1:]) for row in rows]
    frame["content_hash"] = pd.Series(hashes, dtype="int64")
    return pd.DataFrame(frame)[list(POSTING_COLUMNS)]


@dataclass(frozen=True)
class BadRecord:
    """A record the parser refused, kept aside with its reason so an operator can inspect it."""

    position: int
    reason: str
    record: str
    external_id: str | None = None


@dataclass
class ParsedSnapshot:
    """One board's snapshot after parsing: the postings, and what was refused or dropped on the way."""

    board: str
    snapshot_at: datetime | None
    postings: pd.DataFrame
    bad_records: list[BadRecord] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    inactive: int = 0
    display_name: str | None = None

    @property
    def found(self) -> int:
        return len(self.postings)
