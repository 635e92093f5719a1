"""The normalized posting every source produces, and the records a parse sets aside."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter

import pandas as pd
from jobsync_pipeline.core.normalize import content_hash

# The fields whose change makes a posting "changed"; the order is part of the hash and must not move.
MAX_ID_LENGTH = 255  # jobs.external_id: a longer id would fail the board's apply on PostgreSQL
CONTENT_FIELDS = ("title", "company", "location", "url", "description", "requirements", "posted_date")
POSTING_COLUMNS = ("external_id", *CONTENT_FIELDS, "content_hash")


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

    @property
    def key(self) -> str:
        return f"{self.source}:{self.board}:{self.external_id}"

    @property
    def content_hash(self) -> int:
        return content_hash([getattr(self, name) for name in CONTENT_FIELDS])

    def row(self) -> dict:
        return {"external_id": self.external_id,
                **{name: getattr(self, name) for name in CONTENT_FIELDS},
                "content_hash": self.content_hash}


def storage_problem(posting: Posting) -> str | None:
    """Why `posting` cannot be stored (a reason for its bad record), or None when it can."""
    if not posting.external_id:
        return "external_id: empty"
    if len(posting.external_id) > MAX_ID_LENGTH:
        return f"external_id: longer than {MAX_ID_LENGTH} characters"
    if not posting.title:
        return "title: empty"
    # PostgreSQL text cannot hold NUL: one such posting would fail the board's whole apply
    for name in ("external_id", *CONTENT_FIELDS):
        value = getattr(posting, name)
        if value and "\x00" in value:
            return f"{name}: contains a NUL character"
    return None


_STORED_FIELDS = attrgetter("external_id", *CONTENT_FIELDS)


def postings_frame(postings: Iterable[Posting]) -> pd.DataFrame:
    """Postings as the frame the diff engine and the store take: one row each, `POSTING_COLUMNS`."""
    rows = [_STORED_FIELDS(posting) for posting in postings]
    # object columns keep None as None (pandas' str dtype would turn it into NaN on the way to SQL)
    columns = zip(*rows) if rows else ([] for _ in POSTING_COLUMNS[:-1])
    frame = {name: pd.Series(values, dtype=object) for name, values in zip(POSTING_COLUMNS, columns)}
    frame["content_hash"] = pd.Series([content_hash(row[1:]) for row in rows], dtype="int64")
    return pd.DataFrame(frame)


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
