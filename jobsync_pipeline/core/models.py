"""The normalized posting every source produces, and the records a parse sets aside."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter

import numpy as np
import pandas as pd
from jobsync_pipeline.core.mojibake import might_be_mojibake, repair_mojibake
from jobsync_pipeline.core.normalize import content_hash, content_hashes

MAX_ID_LENGTH = 255  # jobs.external_id: a longer id would fail the board's apply on PostgreSQL
# The fields whose change makes a posting "changed"; the order is part of the hash and must not move.
CONTENT_FIELDS = ("title", "company", "location", "url", "description", "requirements", "posted_date")
# What some sources state beyond the core fields. Hashed after the content fields when a posting has
# details, so the hashes of postings without (company files) stay as they were before details existed.
HASHED_DETAIL_FIELDS = ("salary_min", "salary_max", "salary_currency", "salary_interval", "salary_text",
                        "workplace_type", "region_restrictions", "department", "tags", "valid_through")
# Kept with the job as fetched, but not a change by themselves (the text form is in `description`; the
# salary's source goes with the salary figures, which are hashed).
DETAIL_FIELDS = (*HASHED_DETAIL_FIELDS, "salary_source", "description_raw", "description_format")
POSTING_COLUMNS = ("external_id", *CONTENT_FIELDS, *DETAIL_FIELDS, "content_hash")
DESCRIPTION_FORMATS = ("text", "html", "escaped_html")



@dataclass(frozen=True)
class RawPayload:
    """A board's payload exactly as fetched, with the validators that say whether it changed."""

    board: str
    location: str
    body: bytes
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # the server confirmed the previous payload (304): nothing to archive


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
    salary_source: str | None = None  # where the salary was read: a field's name, or a part of the text
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


_CORE_FIELDS = attrgetter("external_id", *CONTENT_FIELDS)
# What sources leave at the ends of a location ("Krishnagiri, ", "Remote - "), and runs of separators
# with nothing between them ("Remote, , US").
_LOCATION_EDGES = " ,;|/-–—·•\t\n"
_REPEATED_SEPARATORS = re.compile(r"([,;|])(?:\s*[,;|])+\s*")
_CORE_COLUMNS = ("external_id", *CONTENT_FIELDS)
# Checked for NUL in `storage_problems`: every text a posting keeps (the others are numbers).
_TEXT_COLUMNS = (*_CORE_COLUMNS, *(name for name in DETAIL_FIELDS if name not in ("salary_min", "salary_max")))


@dataclass
class PostingColumns:
    """A batch of postings as columns: how sources hand postings to the collector and on to a frame.

    Columnar because a company file can list a million jobs: building, checking and framing them a
    column at a time costs about half of an object per posting. `columns` holds "external_id" and
    `CONTENT_FIELDS`, and `DETAIL_FIELDS` when the source states details (then every posting's hash
    covers them, as every posting of such a source has them); row i came from record `records[i]`
    of the batch and is still listed on the board when `listed[i]`. `refused` are the records that
    gave no posting, as (record, reason).
    """

    columns: dict[str, list]
    records: list[int]
    listed: list[bool]
    refused: list[tuple[int, str]] = field(default_factory=list)
    # the text columns holding a NUL, found by `tidy` on its pass over the columns (None: not looked)
    _nul_columns: set[str] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_postings(cls, postings: list[Posting], records: list[int] | None = None,
                      listed: list[bool] | None = None, refused: list[tuple[int, str]] | None = None) -> PostingColumns:
        rows = [_CORE_FIELDS(posting) for posting in postings]
        columns = dict(zip(_CORE_COLUMNS, map(list, zip(*rows)))) if rows else {name: [] for name in _CORE_COLUMNS}
        details = [posting.details for posting in postings]
        if any(d is not None for d in details):
            detail_rows = [_NO_DETAILS if d is None else _DETAILS(d) for d in details]
            columns.update(zip(DETAIL_FIELDS, map(list, zip(*detail_rows))))
        return cls(columns, list(range(len(postings))) if records is None else records,
                   [True] * len(postings) if listed is None else listed, refused or [])

    def __len__(self) -> int:
        return len(self.records)

    def storage_problems(self) -> dict[int, str]:
        """Why rows cannot be stored (reasons for their bad records), by row; empty when all can."""
        ids, titles = self.columns["external_id"], self.columns["title"]
        suspects: set[int] = set()
        if not all(ids) or max(map(len, ids), default=0) > MAX_ID_LENGTH or not all(titles):
            suspects.update(row for row, (i, t) in enumerate(zip(ids, titles))
                            if not i or len(i) > MAX_ID_LENGTH or not t)
        # PostgreSQL text cannot hold NUL: one such posting would fail the board's whole apply. One
        # search over each column; the rows are looked for only in a column that has one.
        nul_columns = self._nul_columns
        if nul_columns is None:
            nul_columns = {name for name in _TEXT_COLUMNS
                           if self.columns.get(name) and "\x00" in _joined_texts(self.columns[name])}
        for name in nul_columns:
            suspects.update(row for row, v in enumerate(self.columns[name]) if type(v) is str and "\x00" in v)
        return {row: self._problem(row) for row in sorted(suspects)}

    def tidy(self) -> int:
        """Repairs double-encoded UTF-8 in every text column and trims the separators sources leave at
        the ends of locations ("Krishnagiri, "), in place; returns the rows whose text was repaired.

        One pass over each column's joined text finds the columns with a mojibake suspect (only their
        values are looked at) and those with a NUL (for `storage_problems`, which need not join again)."""
        repaired: set[int] = set()
        self._nul_columns = set()
        for name in _TEXT_COLUMNS:
            values = self.columns.get(name)
            if not values:
                continue
            joined = _joined_texts(values)
            if "\x00" in joined:
                self._nul_columns.add(name)  # a repair or a trim never adds or removes one
            if joined.isascii() or not might_be_mojibake(joined):  # ASCII (most columns) is answered at once
                continue
            for row, value in enumerate(values):
                if type(value) is str and (fixed := repair_mojibake(value)) is not None:
                    values[row] = fixed
                    repaired.add(row)
        locations = self.columns["location"]
        trimmed = [v.strip(_LOCATION_EDGES) if v else v for v in locations]
        if _REPEATED_SEPARATORS.search(_joined_texts(locations)):
            trimmed = [_REPEATED_SEPARATORS.sub(r"\1 ", v).strip(_LOCATION_EDGES) if v else v for v in trimmed]
        self.columns["location"] = trimmed
        return len(repaired)

    def _problem(self, row: int) -> str:
        external_id = self.columns["external_id"][row]
        if not external_id:
            return "external_id: empty"
        if len(external_id) > MAX_ID_LENGTH:
            return f"external_id: longer than {MAX_ID_LENGTH} characters"
        if not self.columns["title"][row]:
            return "title: empty"
        name = next(name for name in _TEXT_COLUMNS if name in self.columns
                    and type(v := self.columns[name][row]) is str and "\x00" in v)
        return f"{name}: contains a NUL character"

    def take(self, rows: list[int]) -> PostingColumns:
        """Only `rows` of the postings (the refusals are not carried over)."""
        if len(rows) == len(self):
            return PostingColumns(self.columns, self.records, self.listed)
        return PostingColumns({name: [values[row] for row in rows] for name, values in self.columns.items()},
                              [self.records[row] for row in rows], [self.listed[row] for row in rows])

    def renumbered(self, rows: list[int], refused: Iterable[tuple[int, str]] = ()) -> PostingColumns:
        """This batch built from a selection of a chunk's records, numbered in the chunk: its record i is
        the chunk's `rows[i]`; `refused` (numbered in the chunk) are added to its refusals."""
        return PostingColumns(self.columns, [rows[record] for record in self.records], self.listed,
                              sorted([*((rows[record], why) for record, why in self.refused), *refused]))

    @classmethod
    def merge(cls, parts: list[PostingColumns]) -> PostingColumns:
        """The postings of `parts`, built from disjoint records of one chunk, in record order, with all
        their refusals."""
        merged = cls.concat(parts)
        order = sorted(range(len(merged)), key=merged.records.__getitem__)
        return cls({name: [values[row] for row in order] for name, values in merged.columns.items()},
                   [merged.records[row] for row in order], [merged.listed[row] for row in order],
                   sorted(refusal for part in parts for refusal in part.refused))

    @classmethod
    def concat(cls, parts: list[PostingColumns]) -> PostingColumns:
        """The postings of all `parts`, in order (record numbers as they are in each part)."""
        if len(parts) == 1:
            return parts[0]
        with_details = any(DETAIL_FIELDS[0] in part.columns for part in parts)
        names = [*_CORE_COLUMNS, *(DETAIL_FIELDS if with_details else ())]
        columns: dict[str, list] = {name: [] for name in names}
        for part in parts:
            for name, default in zip(names, (None,) * len(_CORE_COLUMNS) + _NO_DETAILS):
                values = part.columns.get(name)
                columns[name].extend(values if values is not None else [default] * len(part))
        return cls(columns, [row for part in parts for row in part.records],
                   [flag for part in parts for flag in part.listed])

    def frame(self) -> pd.DataFrame:
        """The postings as the frame the diff engine and the store take: one row each, `POSTING_COLUMNS`."""
        columns = self.columns
        size = len(columns["external_id"])
        values = {name: columns[name] for name in _CORE_COLUMNS}
        content = [columns[name] for name in CONTENT_FIELDS]
        if DETAIL_FIELDS[0] in columns:
            values.update((name, columns[name]) for name in DETAIL_FIELDS)
            # a source that states details hashes them after the content fields, as text
            content += [[None if v is None else str(v) for v in columns[name]] for name in HASHED_DETAIL_FIELDS]
        else:  # most boards state no details: no per-posting work for them
            values.update((name, [value] * size) for name, value in zip(DETAIL_FIELDS, _NO_DETAILS))
        # one object block built at once (a Series per column costs more than the rows of a small board);
        # object columns keep None as None (pandas' str dtype would turn it into NaN on the way to SQL)
        frame = pd.DataFrame({name: values[name] for name in POSTING_COLUMNS if name != "content_hash"},
                             dtype=object)
        frame.insert(POSTING_COLUMNS.index("content_hash"), "content_hash",
                     np.asarray(content_hashes(content), dtype=np.int64))
        return frame


def _joined_texts(values: list) -> str:
    try:
        return "".join(values)  # most text columns hold nothing but text
    except TypeError:
        return "".join(value for value in values if type(value) is str)


def postings_frame(postings: Iterable[Posting]) -> pd.DataFrame:
    """Postings as the frame the diff engine and the store take: one row each, `POSTING_COLUMNS`."""
    return PostingColumns.from_postings(list(postings)).frame()


@dataclass(frozen=True)
class KnownRecords:
    """A board's open jobs by the digest of the record each was last written from (`record_digests`):
    what a collector needs to recognise an unchanged record without decoding it. Held as arrays sorted
    by digest (a million jobs in about a tenth of the memory of a dict of tuples)."""

    digests: np.ndarray  # int64, ascending
    external_ids: np.ndarray  # object, in the digests' order
    content_hashes: np.ndarray  # int64, in the digests' order

    @classmethod
    def of(cls, digests, external_ids, content_hashes) -> KnownRecords:
        digests = np.asarray(digests, dtype=np.int64)
        order = np.argsort(digests, kind="stable")
        return cls(digests[order], np.asarray(external_ids, dtype=object)[order],
                   np.asarray(content_hashes, dtype=np.int64)[order])

    @classmethod
    def none(cls) -> KnownRecords:
        """Nothing known: every record is decoded, and its digest kept for the next time."""
        return cls.of([], [], [])

    def __len__(self) -> int:
        return len(self.digests)

    def find(self, digests: np.ndarray) -> np.ndarray:
        """Where each digest is (-1: not known)."""
        if not len(self.digests):
            return np.full(len(digests), -1, dtype=np.intp)
        at = np.minimum(np.searchsorted(self.digests, digests), len(self.digests) - 1)
        return np.where(self.digests[at] == digests, at, -1)


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
    repaired: int = 0  # postings whose text had mojibake repaired (`PostingColumns.tidy`)

    @property
    def found(self) -> int:
        return len(self.postings)
