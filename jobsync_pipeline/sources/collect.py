"""Collecting a board's postings from raw records: bad ones set aside with reasons, duplicates once."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import ValidationError

from jobsync_pipeline.sources.base import collection_paused
from jobsync_pipeline.core.models import MAX_ID_LENGTH, BadRecord, ParsedSnapshot, Posting, PostingColumns

MAX_RECORD_CHARS = 10_000
# Records built at a time; a larger chunk is built in slices of this many.
BATCH_RECORDS = 10_000

# A source's record → (posting, still listed?); raises ValidationError or ValueError for a bad record.
PostingBuilder = Callable[[Any], tuple[Posting, bool]]


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

    def frame(self, records: Iterable[Any], start: int = 0) -> pd.DataFrame:
        """The postings of `records` (positions counted from `start`); refused ones are kept aside."""
        records = records if isinstance(records, list) else list(records)
        with collection_paused():
            # a slice at a time, so what a source builds on the way (validated records) stays small
            parts = [self._collect(records[begin:begin + BATCH_RECORDS], start + begin)
                     for begin in range(0, len(records), BATCH_RECORDS)]
            return PostingColumns.concat(parts or [PostingColumns.from_postings([])]).frame()

    def _collect(self, records: list[Any], start: int) -> PostingColumns:
        batch = self.build_batch(records)
        self.repaired += batch.tidy()
        refused = dict(batch.refused)
        problems = batch.storage_problems()
        kept = []
        for row, (external_id, listed) in enumerate(zip(batch.columns["external_id"], batch.listed)):
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
            self.refuse(start + index, records[index], refused[index])
        return batch.take(kept)

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
                 display_name: str | None = None) -> ParsedSnapshot:
        """A board's whole snapshot from all its records, with what was refused or dropped."""
        postings = self.frame(records)
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


def validation_reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())


def storable(text: str) -> str:
    """`text` as the store can hold it: a lone surrogate (an emoji a JS scraper cut in half) becomes
    `\\udXXX` and NUL `\\u0000`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
