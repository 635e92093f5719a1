"""Collecting a board's postings from raw records: bad ones set aside with reasons, duplicates once."""
from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xxhash
from pydantic import ValidationError

from jobsync_pipeline.sources.base import collection_paused
from jobsync_pipeline.core.models import (MAX_ID_LENGTH, BadRecord, KnownRecords, ParsedSnapshot, Posting,
                                          PostingColumns)
from jobsync_pipeline.core.normalize import digest_seed, record_digests

MAX_RECORD_CHARS = 10_000
# Records built at a time; a larger chunk is built in slices of this many.
BATCH_RECORDS = 10_000

# A source's record → (posting, still listed?); raises ValidationError or ValueError for a bad record.
PostingBuilder = Callable[[Any], tuple[Posting, bool]]


# The packages whose code turns a record into a posting: any change to them is a new normalizer, whose
# digests differ, so every record is normalized again once (the content hash then decides what is written).
_NORMALIZING_PACKAGES = ("core", "sources")


@cache
def normalizer_fingerprint() -> str:
    """What normalized a record: this code, and the libraries and Unicode data it relies on."""
    package = Path(__file__).resolve().parent.parent
    code = xxhash.xxh3_128()
    for path in sorted(p for name in _NORMALIZING_PACKAGES for p in (package / name).rglob("*.py")):
        code.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    libraries = [f"{name}={metadata.version(name)}" for name in ("msgspec", "pydantic", "pydantic-core", "ftfy", "nh3")]
    return "\x1f".join([code.hexdigest(), *libraries, sys.version.split()[0], unicodedata.unidata_version])


class PostingCollector:
    """Turns one board's raw records into postings, chunk by chunk, remembering ids across chunks.

    A source gives either `build`, one record at a time, or overrides `build_batch` to build a whole
    chunk as columns (company files, which can list a million jobs); what every posting must satisfy
    before it is stored, and the duplicates and withdrawn jobs, are handled here for all of them.
    """

    def __init__(self, build: PostingBuilder | None = None):
        self.build = build
        self.seen: set[str] = set()
        self.bad_records: list[BadRecord] = []
        self.duplicates: list[str] = []
        self.inactive = 0
        self.repaired = 0  # postings whose text had mojibake repaired

    def digest_seed(self) -> int:
        """The seed of this collector's record digests: its normalizer, and whatever else decides the
        posting a record gives (a company file's company)."""
        return digest_seed(normalizer_fingerprint(), type(self).__qualname__)

    def frame(self, records: Iterable[Any], start: int = 0, *, encoded: bool = False,
              known: KnownRecords | None = None) -> pd.DataFrame:
        """The postings of `records` (positions counted from `start`); refused ones are kept aside.

        `encoded`: each record is given as its JSON text (str or bytes, a line of JSON Lines), decoded
        here (`build_encoded`); a text that is not JSON is a bad record with that reason.

        `known` (encoded records only): the board's open jobs by record digest. A record whose digest is
        there is that job, unchanged: it is not decoded again, and its row holds only `external_id`,
        `content_hash`, `record_hash` and `known` (true), which is what the diff reads. Every other row
        has `known` false and its own `record_hash`, for the store to keep."""
        records = records if isinstance(records, list) else list(records)
        digested = encoded and known is not None
        with collection_paused():
            # a slice at a time, so what a source builds on the way (validated records) stays small
            parts = [self._collect(records[begin:begin + BATCH_RECORDS], start + begin, encoded,
                                   known if digested else None)
                     for begin in range(0, len(records), BATCH_RECORDS)]
            frame = PostingColumns.concat([batch for batch, *_ in parts]
                                          or [PostingColumns.from_postings([])]).frame()
            if not digested:
                return frame
            frame["record_hash"] = np.concatenate([digests for _, digests, _ in parts] or [_NO_DIGESTS])
            frame["known"] = False
            recognised = [rows for _, _, rows in parts if rows is not None]
            if not recognised:
                return frame
            ids, hashes, digests = (np.concatenate(column) for column in zip(*recognised))
            return pd.concat([frame, pd.DataFrame({"external_id": ids, "content_hash": hashes,
                                                   "record_hash": digests, "known": True})], ignore_index=True)

    def frame_texts(self, texts: Iterable[str | bytes], start: int = 0, *,
                    known: KnownRecords | None = None) -> pd.DataFrame:
        """`frame` of records given as their JSON texts, one record each (the lines of JSON Lines)."""
        return self.frame(texts, start, encoded=True, known=known)

    def _collect(self, records: list[Any], start: int, encoded: bool = False, known: KnownRecords | None = None):
        """The postings of one slice; with `known`, also the digests of their records, and the ids, content
        hashes and digests of the records recognised as known jobs (None when none was)."""
        if known is None:
            return self._collect_built(records, start, encoded), None, None
        digests = record_digests(records, self.digest_seed())
        found = known.find(digests)
        hit = found >= 0
        at = found[hit]
        recognised_ids = known.external_ids[at].tolist()
        batch = None
        # a recognised job listed twice, or also by a record not recognised, is left to the collector's
        # duplicate rules, which keep the first in the file: the slice is collected in full
        if recognised_ids and len(set(recognised_ids)) == len(recognised_ids) and self.seen.isdisjoint(recognised_ids):
            unknown = np.flatnonzero(~hit).tolist()
            batch = self._collect_built([records[row] for row in unknown], start, encoded,
                                        positions=unknown, unless_listing=set(recognised_ids))
        if batch is None:
            batch = self._collect_built(records, start, encoded)
            return batch, digests[batch.records], None
        self.seen.update(recognised_ids)
        recognised = (known.external_ids[at], known.content_hashes[at], digests[hit])
        return batch, digests[batch.records], recognised

    def _collect_built(self, records: list[Any], start: int, encoded: bool = False, *,
                       positions: list[int] | None = None, unless_listing: set[str] = frozenset()) -> PostingColumns | None:
        """The postings of `records`, which are the slice's `positions` (all of it when None), numbered in the
        slice; None, having kept nothing, when they list one of the ids `unless_listing`."""
        batch = self.build_encoded(records) if encoded else self.build_batch(records)
        if positions is not None:
            batch = batch.renumbered(positions)
            records = _Positioned(records, positions)
        repaired = batch.tidy()
        if unless_listing and not unless_listing.isdisjoint(batch.columns["external_id"]):
            return None
        self.repaired += repaired
        refused = dict(batch.refused)
        problems = batch.storage_problems()
        ids = batch.columns["external_id"]
        if not problems and all(batch.listed):  # most batches: every posting listed, each id once
            fresh = set(ids)
            if len(fresh) == len(ids) and self.seen.isdisjoint(fresh):
                self.seen.update(fresh)
                for index in sorted(refused):
                    self.refuse(start + index, decoded(records[index]) if encoded else records[index],
                                refused[index])
                return batch.take(list(range(len(batch))))
        kept = []
        for row, (external_id, listed) in enumerate(zip(ids, batch.listed)):
            if problems and row in problems:
                refused[batch.records[row]] = problems[row]
            elif not listed:
                self.inactive += 1  # a withdrawn job is gone from the board, like an absent one
                self.seen.add(external_id)
            elif external_id in self.seen:
                self.duplicates.append(external_id)
            else:
                self.seen.add(external_id)
                kept.append(row)
        for index in sorted(refused):
            self.refuse(start + index, decoded(records[index]) if encoded else records[index], refused[index])
        return batch.take(kept)

    def build_encoded(self, texts: list[str | bytes]) -> PostingColumns:
        """`build_batch` of records given as their JSON texts; a text that is not JSON is refused. A source
        may decode and validate in one step instead (company files)."""
        records, rows, refused = [], [], []
        for index, text in enumerate(texts):
            try:
                records.append(json.loads(text))
                rows.append(index)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
                refused.append((index, json_reason(exc)))
        return self.build_batch(records).renumbered(rows, refused)

    def build_batch(self, records: list[Any]) -> PostingColumns:
        """The postings of a chunk of records, each record through `build`."""
        postings, rows, listed, refused = [], [], [], []
        for index, raw in enumerate(records):
            try:
                posting, is_listed = self.build(raw)
            except ValidationError as exc:
                refused.append((index, validation_reason(exc)))
                continue
            except ValueError as exc:
                refused.append((index, str(exc)))
                continue
            postings.append(posting)
            rows.append(index)
            listed.append(is_listed)
        return PostingColumns.from_postings(postings, rows, listed, refused)

    def snapshot(self, board: str, records: Iterable[Any], *, snapshot_at: datetime | None = None,
                 display_name: str | None = None, encoded: bool = False,
                 known: KnownRecords | None = None) -> ParsedSnapshot:
        """A board's whole snapshot from all its records (`encoded`: as their JSON texts, then `known` as in
        `frame`), with what was refused or dropped."""
        postings = self.frame(records, encoded=encoded, known=known)
        return ParsedSnapshot(board=board, snapshot_at=snapshot_at, postings=postings,
                              bad_records=self.bad_records, duplicates=self.duplicates, inactive=self.inactive,
                              display_name=display_name, repaired=self.repaired)

    def refuse(self, position: int, raw: Any, reason: str) -> None:
        external_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            record = json.dumps(raw, ensure_ascii=False, default=str)
        except RecursionError:  # json.loads managed it with a few frames to spare
            record = '"(record nested too deeply to show)"'
        self.bad_records.append(BadRecord(
            position=position, reason=reason, record=storable(record)[:MAX_RECORD_CHARS],
            external_id=None if external_id is None else storable(str(external_id))[:MAX_ID_LENGTH]))


_NO_DIGESTS = np.zeros(0, dtype=np.int64)


class _Positioned:
    """A selection of a slice's records, read by their position in the slice."""

    def __init__(self, records: list[Any], positions: list[int]):
        self._by_position = dict(zip(positions, records))

    def __getitem__(self, position: int) -> Any:
        return self._by_position[position]


def decoded(text: str | bytes) -> Any:
    """A record given as JSON text, decoded; a text that is not JSON stays the text (as str)."""
    try:
        return json.loads(text)
    except ValueError:
        return text if isinstance(text, str) else text.decode("utf-8", "replace")
    except RecursionError:
        return "(record nested too deeply to show)"


def json_reason(exc: Exception) -> str:
    """Why a record's JSON text could not be decoded, as a bad record's reason."""
    if isinstance(exc, json.JSONDecodeError):
        return f"record: not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"record: not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "record: not usable JSON (nested too deeply)"
    return f"record: not valid JSON ({exc})"


def validation_reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())


def storable(text: str) -> str:
    """`text` as the store can hold it: a lone surrogate (an emoji a JS scraper cut in half) becomes
    `\\udXXX` and NUL `\\u0000`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
