"""Board tokens worth probing for a company name: how ATS boards are usually named."""
from __future__ import annotations

import re
import unicodedata

_LEGAL_SUFFIXES = {"inc", "llc", "ltd", "gmbh", "ag", "sa", "bv", "plc", "co", "corp", "corporation", "limited",
                   "company", "group", "holdings", "se", "srl", "sas", "oy", "ab", "as", "kk"}


def token_candidates(company: str) -> list[str]:
    """Tokens for `company`, likeliest first: "Northwind Labs, Inc." → northwindlabs, northwind-labs."""
    ascii_name = unicodedata.normalize("NFKD", company).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", ascii_name) if w]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    if not words:
        return []
    candidates = ["".join(words), "-".join(words)]
    return [c for c in dict.fromkeys(candidates) if 2 <= len(c) <= 64]
