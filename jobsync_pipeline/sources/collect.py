"""Collecting a board's postings from raw records: bad ones set aside with reasons, duplicates once."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import ValidationError

from jobsync_pipeline.sources.base import collection_paused
from jobsync_pipeline.core.models import (MAX_ID_LENGTH, BadRecord, ParsedSnapshot, Posting, postings_frame,
                                          storage_problem)

MAX_RECORD_CHARS = 10_000

# A source's record → (posting, still listed?); raises ValidationError or ValueError for a bad record.
PostingBuilder = Callable[[Any], tuple[Posting, bool]]


class PostingCollector:
    """Turns one board's raw records into postings, chunk by chunk, remembering ids across chunks."""

    def __init__(self, build: PostingBuilder):
        self.build = build
        self.seen: set[str] = set()
        self.bad_records: list[BadRecord] = []
        self.duplicates: list[str] = []
        self.inactive = 0

    def frame(self, records: Iterable[Any], start: int = 0) -> pd.DataFrame:
        """The postings of `records` (positions counted from `start`); refused ones are kept aside."""
        kept = []
        with collection_paused():
            for position, raw in enumerate(records, start):
                posting = self._posting(position, raw)
                if posting is not None:
                    kept.append(posting)
            return postings_frame(kept)

    def snapshot(self, board: str, records: Iterable[Any], *, snapshot_at: datetime | None = None,
                 display_name: str | None = None) -> ParsedSnapshot:
        """A board's whole snapshot from all its records, with what was refused or dropped."""
        postings = self.frame(records)
        return ParsedSnapshot(board=board, snapshot_at=snapshot_at, postings=postings,
                              bad_records=self.bad_records, duplicates=self.duplicates, inactive=self.inactive,
                              display_name=display_name)

    def _posting(self, position: int, raw: Any) -> Posting | None:
        try:
            posting, listed = self.build(raw)
        except ValidationError as exc:
            self.refuse(position, raw, validation_reason(exc))
            return None
        except ValueError as exc:
            self.refuse(position, raw, str(exc))
            return None
        problem = storage_problem(posting)
        if problem is not None:
            self.refuse(position, raw, problem)
            return None
        if not listed:
            self.inactive += 1  # a withdrawn job is gone from the board, like an absent one
            self.seen.add(posting.external_id)
            return None
        if posting.external_id in self.seen:
            self.duplicates.append(posting.external_id)
            return None
        self.seen.add(posting.external_id)
        return posting

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
