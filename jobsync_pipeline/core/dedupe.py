"""One job across sources: the cross-source dedupe key, and the comparison that tells a sure match
from a possible duplicate.

The key is `company|title|location`, each part normalized so that the spellings sources use for the
same thing meet ("Acme, Inc." and "ACME"; "Sr." and "Senior"; "Remote - US" and "Remote (US)").
Postings that share a key are one canonical job. Weaker evidence (the same title at the same company
in another place, nearly-equal titles) is never merged: `compare` scores the pair so the store can
record it as a possible duplicate, and the rule can be tuned from what it records.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from jobsync_pipeline.core.normalize import match_text
from jobsync_pipeline.core.workplace import REMOTE, infer_workplace

# Legal forms and filler that say nothing about which company it is; only dropped at the end of the
# name ("Acme Labs Inc"), or at its start for "the", so a company called "Company" keeps its name.
_LEGAL_SUFFIXES = {
    "inc", "incorporated", "llc", "llp", "ltd", "limited", "corp", "corporation", "co", "company", "plc", "gmbh",
    "ag", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "asa", "oy", "oyj", "aps", "kk", "pty", "pte",
    "pvt", "private", "group", "holdings", "technologies", "technology", "hq",
}
# Abbreviations in titles, spelled out the one way the key keeps.
_TITLE_WORDS = {
    "sr": "senior", "snr": "senior", "jr": "junior", "jnr": "junior", "mgr": "manager", "mngr": "manager",
    "eng": "engineer", "engr": "engineer", "dev": "developer", "swe": "software engineer", "sw": "software",
    "assoc": "associate", "asst": "assistant", "dir": "director", "vp": "vice president", "svp": "senior vice president",
    "ops": "operations", "admin": "administrator", "mktg": "marketing", "acct": "account", "exec": "executive",
    "rep": "representative", "spec": "specialist", "tech": "technical", "intl": "international", "i": "1", "ii": "2",
    "iii": "3", "iv": "4", "v": "5", "l1": "1", "l2": "2", "l3": "3",
    "frontend": "front end", "backend": "back end", "fullstack": "full stack",
}
# Words in a title that say where the job is, not what it is: the location part of the key has it.
_TITLE_NOISE = {"remote", "hybrid", "onsite", "m", "f", "d", "w", "x", "all", "genders", "anywhere", "worldwide"}
# Levels: the same title at another level is another job, never a duplicate.
_LEVELS = {"intern", "junior", "associate", "mid", "senior", "staff", "principal", "lead", "head", "chief",
           "director", "vice", "1", "2", "3", "4", "5", "entry", "graduate"}
_COUNTRY_WORDS = {"usa", "us", "united states", "uk", "united kingdom", "germany", "deutschland", "france", "spain",
                  "canada", "india", "netherlands", "ireland", "australia", "brazil", "portugal", "poland"}


def company_key(company: str | None) -> str:
    """The company as the key keeps it: `Acme, Inc.`, `ACME` and `The Acme Co` are all `acme`."""
    words = match_text(company).split()
    if words[:1] == ["the"] and len(words) > 1:
        words = words[1:]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def title_key(title: str | None) -> str:
    """The title as the key keeps it: `Sr. Backend Engineer (Remote)` is `senior back end engineer`."""
    words: list[str] = []
    for word in match_text(title).split():
        if word in _TITLE_NOISE:
            continue
        words.extend(_TITLE_WORDS.get(word, word).split())
    return " ".join(words)


def location_key(location: str | None) -> str:
    """The location as the key keeps it: a remote job by its regions (`Remote - US` and `Remote (US)`
    are `remote us`), an office by its first named place (`Berlin, Germany` is `berlin`)."""
    if not location or not location.strip():
        return ""
    workplace = infer_workplace(location=location)
    if workplace.kind == REMOTE:
        return " ".join(["remote", *sorted(match_text(region) for region in workplace.regions)])
    places = [match_text(part) for part in re.split(r"[,;/|()]|\s[-–—]\s", location)]
    places = [place for place in places if place]
    if not places:
        return ""
    # "USA, New York" names its city second: skip a leading country when a place follows
    if len(places) > 1 and places[0] in _COUNTRY_WORDS:
        return places[1]
    return places[0]


SAME, POSSIBLE, DIFFERENT = "same", "possible", "different"
# Titles at least this alike (difflib's ratio over the title keys) are possible duplicates.
NEAR_TITLE = 0.85


@dataclass(frozen=True, slots=True)
class Comparison:
    verdict: str  # same | possible | different
    score: float  # 0..1: how alike the two postings are
    reason: str


def compare(a: Mapping, b: Mapping) -> Comparison:
    """How likely postings `a` and `b` (mappings with company, title, location) are one job.

    `same` when their keys are equal (they are one canonical job already); `possible` for the same
    title and company in another place, or nearly-equal titles at one company and place; otherwise
    `different`. A title at another level (Senior vs Staff) is always a different job."""
    company_a, company_b = company_key(a.get("company")), company_key(b.get("company"))
    if not company_a or company_a != company_b:
        return Comparison(DIFFERENT, 0.0, "different companies")
    title_a, title_b = title_key(a.get("title")), title_key(b.get("title"))
    if not title_a or not title_b:
        return Comparison(DIFFERENT, 0.0, "no title")
    place_a, place_b = location_key(a.get("location")), location_key(b.get("location"))
    same_place = place_a == place_b
    if title_a == title_b:
        if same_place:
            return Comparison(SAME, 1.0, "same company, title and location")
        # one side not saying where is weaker evidence of a move than two places that differ
        score = 0.75 if not place_a or not place_b else 0.6
        first, second = sorted((place_a or "-", place_b or "-"))
        return Comparison(POSSIBLE, score, f"same title and company, different location ({first} vs {second})")
    levels_a, levels_b = _levels(title_a), _levels(title_b)
    if levels_a != levels_b:
        return Comparison(DIFFERENT, 0.0, "different levels")
    ratio = SequenceMatcher(None, title_a, title_b, autojunk=False).ratio()
    if ratio >= NEAR_TITLE:
        score = round(ratio * (0.9 if same_place else 0.6), 3)
        where = "same location" if same_place else "different location"
        return Comparison(POSSIBLE, score, f"nearly-equal titles ({ratio:.2f}), same company, {where}")
    return Comparison(DIFFERENT, round(ratio * 0.5, 3), f"different titles ({ratio:.2f})")


def _levels(title: str) -> frozenset[str]:
    return frozenset(word for word in title.split() if word in _LEVELS)
