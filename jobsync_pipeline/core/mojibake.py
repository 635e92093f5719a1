"""Repairing mojibake: UTF-8 text that was decoded as Latin-1 or Windows-1252 somewhere upstream and
encoded again ("KrakÃ³w" for "Kraków", "â\\x80\\x93" for "–"), as RemoteOK sends some of its postings.

Each run of such characters is repaired on its own (a description often mixes broken runs with text
that is fine), and only when the repair round-trips: the repaired run, broken again the same way,
gives back exactly the run we were sent. ftfy's badness heuristic decides whether a run looks broken
at all, so a legitimate "Ã" (a Portuguese name) or text that merely looks odd is never touched.
"""
from __future__ import annotations

import re

import ftfy.bad_codecs  # noqa: F401  registers the sloppy-windows-1252 codec
from ftfy.badness import is_bad

# A UTF-8 lead byte read as a Latin-1/Windows-1252 letter (Â…ô), then its continuation bytes read the
# same way (C1 controls, Windows-1252 punctuation, or ¡…¿).
_CONTINUATION = ("\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
                 "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122")
_SUSPECT = re.compile(f"[\u00c2-\u00f4][{_CONTINUATION}]")
_RUN = re.compile(f"(?:[\u00c2-\u00f4][{_CONTINUATION}]{{1,3}})+")
# How the text was broken: decoded as one of these instead of UTF-8.
_CODECS = ("sloppy-windows-1252", "latin-1")
_PASSES = 3  # text broken twice ("Ã¢â‚¬â€œ") takes two


def might_be_mojibake(text: str) -> bool:
    return _SUSPECT.search(text) is not None


def repair_mojibake(text: str) -> str | None:
    """The repaired text, or None when `text` holds no mojibake whose repair round-trips."""
    repaired = text
    for _ in range(_PASSES):
        fixed = _RUN.sub(_repaired_run, repaired)
        if fixed == repaired:
            break
        repaired = fixed
    return repaired if repaired != text else None


def _repaired_run(match: re.Match) -> str:
    run = match.group(0)
    if not is_bad(run):
        return run
    for codec in _CODECS:
        try:
            fixed = run.encode(codec).decode("utf-8")
            if fixed.encode("utf-8").decode(codec) == run:
                return fixed
        except UnicodeError:
            continue
    return run
