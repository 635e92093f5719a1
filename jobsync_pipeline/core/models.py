"""The normalized posting every source produces, and the records a parse sets aside."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from jobsync_pipeline.core.normalize import content_hash

# The fields whose change makes a posting "changed"; the order is part of the hash and must not move.
CONTENT_FIELDS = ("title", "company", "location", "url", "description", "requirements", "posted_date")
POSTING_COLUMNS = ("external_id", *CONTENT_FIELDS, "content_hash")


class Posting(BaseModel):
    """One job posting on one board, normalized; `key` is stable across snapshots of that board."""

    model_config = ConfigDict(frozen=True)

    source: str
    board: str
    external_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    company: str
    location: str = ""
    url: str = ""
    description: str = ""
    requirements: str = Field(default="[]", description="JSON list of requirement strings.")
    posted_date: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.board}:{self.external_id}"

    @property
    def content_hash(self) -> int:
        return content_hash(getattr(self, name) for name in CONTENT_FIELDS)

    def row(self) -> dict:
        return {"external_id": self.external_id,
                **{name: getattr(self, name) for name in CONTENT_FIELDS},
                "content_hash": self.content_hash}


def postings_frame(postings: Iterable[Posting]) -> pd.DataFrame:
    """Postings as the frame the diff engine and the store take: one row each, `POSTING_COLUMNS`."""
    # object columns keep None as None (pandas' str dtype would turn it into NaN on the way to SQL)
    frame = pd.DataFrame([p.row() for p in postings], columns=list(POSTING_COLUMNS), dtype=object)
    return frame.astype({"content_hash": "int64"})


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
