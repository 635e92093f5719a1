"""Text normalization, stable fallback ids and the content hash shared by every source."""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import numpy as np
import xxhash

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def clean_text(value: str | None) -> str:
    """Unicode-normalized (NFC) text with runs of whitespace collapsed; None becomes ''."""
    if value is None:
        return ""
    value = unicodedata.normalize("NFC", value)
    # Most texts are clean already, and this test is ten times cheaper than rebuilding them: every
    # whitespace character but the ASCII space is unprintable (Cc, Zs, Zl or Zp).
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    # str.split() splits on exactly the characters `\s` matches (str.isspace)
    return " ".join(value.split())


# `clean_texts` checks values this many at a time, joined by a separator whose middle character is
# printable, not whitespace and stable under NFC (it composes with nothing) and whose spaces turn a
# value's edge space into a double one: the joined text is clean exactly when every value is, so
# one scan for "  " and one byte translation check a whole group. A dirty value costs its group
# (cleaned one by one), not the whole column.
_GROUP = 64
_SEPARATOR = " \u00a6 "  # BROKEN BAR, Latin-1
# Latin-1 text is NFC already (no combining marks, no pairs that compose), so for the many groups
# that encode as Latin-1 the check is one byte translation: the unprintable bytes are C0, DEL, C1,
# NO-BREAK SPACE and SOFT HYPHEN.
_LATIN1_UNPRINTABLE = bytes([*range(0x20), *range(0x7F, 0xA1), 0xAD])


def clean_texts(values: list[str | None]) -> list[str]:
    """`clean_text` of every value of a column: the clean ones, most of them, are recognized in groups
    instead of one by one."""
    texts = ["" if value is None else value for value in values] if None in values else list(values)
    for begin in range(0, len(texts), _GROUP):
        group = texts[begin:begin + _GROUP]
        joined = _SEPARATOR.join(filter(None, group))  # an empty value is clean
        if "  " not in joined and joined[:1] != " " and joined[-1:] != " " and _printable_nfc(joined):
            continue
        texts[begin:begin + _GROUP] = [clean_text(value) for value in group]
    return texts


def _printable_nfc(text: str) -> bool:
    try:
        latin1 = text.encode("latin-1")
    except UnicodeEncodeError:
        return text.isprintable() and unicodedata.is_normalized("NFC", text)
    return len(latin1.translate(None, _LATIN1_UNPRINTABLE)) == len(latin1)


def _blank_unless_mark(match: re.Match) -> str:
    # combining marks are not \w, but they are part of the letter (Devanagari vowel signs, Thai tones)
    char = match.group()
    return char if unicodedata.category(char).startswith("M") else " "


def match_text(value: str | None) -> str:
    """A form of `value` for matching: compatibility-normalized, case-folded, without punctuation."""
    folded = unicodedata.normalize("NFKC", value or "").casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(_blank_unless_mark, folded)).strip()


def fallback_external_id(title: str, location: str, company: str) -> str:
    """The id of a posting its source gave none: stable under case, spacing and punctuation noise.

    Readable on purpose (operators grep for it); a digest keeps it short when the parts are long.
    """
    readable = "|".join(match_text(part).replace(" ", "-") for part in (title, location, company))
    if len(readable) <= 120:
        return f"~{readable}"
    return f"~{readable[:100]}#{hashlib.blake2b(readable.encode(), digest_size=8).hexdigest()}"


def content_hash(values: Iterable[str | None]) -> int:
    """A signed 64-bit digest of the fields that matter, so stores compare one integer per posting."""
    joined = "\x1f".join("" if v is None else v for v in values)
    digest = hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def content_hashes(columns: Sequence[list[str | None]]) -> list[int]:
    """`content_hash` of each row of `columns` (the hashed fields in order, one list each), with the
    per-value work done a column at a time."""
    texts = [["" if value is None else value for value in column] if None in column else column
             for column in columns]
    blake2b, join = hashlib.blake2b, "\x1f".join
    digests = b"".join([blake2b(join(row).encode("utf-8", "surrogatepass"), digest_size=8).digest()
                        for row in zip(*texts)])
    # the digests read at once as big-endian signed integers, as int.from_bytes(..., "big", signed=True)
    return np.frombuffer(digests, dtype=">i8").astype(np.int64).tolist()


def record_digests(texts: Sequence[bytes | str], seed: int) -> np.ndarray:
    """A signed 64-bit digest of each record's text exactly as the source gave it (xxh3, `seed` naming
    what normalized it): a record whose digest the store already has is the same record, and gives the
    same posting, without being decoded again. Not a content hash: a record changed only in what the
    posting does not keep gets another digest."""
    digest = xxhash.xxh3_64_intdigest
    values = [digest(text if type(text) is bytes else _utf8(text), seed) for text in texts]
    return np.array(values, dtype=np.uint64).view(np.int64)


def _utf8(text: bytes | str) -> bytes:
    return bytes(text) if not isinstance(text, str) else text.encode("utf-8", "surrogatepass")


def digest_seed(*parts: str) -> int:
    """The seed of `record_digests` for what `parts` name (a normalizer, its version, its settings)."""
    return xxhash.xxh3_64_intdigest("\x1f".join(parts).encode("utf-8", "surrogatepass"))


# An epoch above this many seconds (the year 5138) is taken as milliseconds: sources mix the two.
_MAX_EPOCH_SECONDS = 10**11


def epoch_datetime(value: float | int | str | None) -> datetime | None:
    """An epoch in seconds or milliseconds (numbers or numeric strings) as a UTC datetime; None
    when there is none or it is not a usable time."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds > _MAX_EPOCH_SECONDS:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
