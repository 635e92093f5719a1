"""One job across sources: the cross-source dedupe key, and the comparison that tells a sure match
from a possible duplicate.

The key is `company|title|place`, each part normalized so that the spellings sources use for the
same thing meet ("Acme, Inc.", "ACME" and Lever's site slug "acme"; "Sr." and "Senior"). The place is
what the job is, not how its location is spelled: a remote job is "remote" and the regions it is open
to, from the derived workplace (`core.workplace`), so Greenhouse's "Remote - US", RemoteOK's
"Remote (US)" and a Himalayas job restricted to "United States" are all `remote us`; an office job
(on-site, hybrid, or not said) is its city, so the same title in two cities stays two jobs.
Postings that share a key are one canonical job. Weaker evidence (the same title at the same company
in another place, nearly-equal titles) is never merged: `compare` scores the pair so the store can
record it as a possible duplicate, and the rule can be tuned from what it records. How well the key
does on a labelled corpus: `benchmarks/dedupe_quality.py`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from jobsync_pipeline.core.normalize import match_text
from jobsync_pipeline.core.workplace import REMOTE, Workplace, infer_workplace, named_places

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
# Words in a title that say where the job is, not what it is (the place part of the key has it), and
# filler some sources write and others leave out ("Vice President of Marketing").
_TITLE_NOISE = {"remote", "hybrid", "onsite", "m", "f", "d", "w", "x", "all", "genders", "anywhere", "worldwide",
                "of", "and"}
# An aside in brackets: "(Remote - US)" says where the job is, "(SRE)" or "(React)" what it is.
_ASIDE = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
# Levels: the same title at another level is another job, never a duplicate.
_LEVELS = {"intern", "junior", "associate", "mid", "senior", "staff", "principal", "lead", "head", "chief",
           "director", "vice", "1", "2", "3", "4", "5", "entry", "graduate"}

def company_key(company: str | None) -> str:
    """The company as the key keeps it: `Acme Labs, Inc.`, `ACME LABS`, `The Acme Labs Co` and Lever's
    site slugs `acme-labs` and `acmelabs` are all `acmelabs`."""
    words = match_text(company).split()
    if words[:1] == ["the"] and len(words) > 1:
        words = words[1:]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    # without spaces: a Lever posting's company is its site slug, which often runs the words together
    return "".join(words)


def title_key(title: str | None) -> str:
    """The title as the key keeps it: `Sr. Backend Engineer (Remote - US)` is `senior back end engineer`."""
    words: list[str] = []
    for word in match_text(_ASIDE.sub(_what_not_where, title or "")).split():
        if word in _TITLE_NOISE:
            continue
        words.extend(_TITLE_WORDS.get(word, word).split())
    return " ".join(words)


def _what_not_where(aside: re.Match) -> str:
    text = aside.group(1) if aside.group(1) is not None else aside.group(2)
    _, places = named_places(text)
    return f" {text} " if places else " "  # an aside of only regions and workplace words goes


def place_key(workplace: Workplace, location: str | None) -> str:
    """Where the job is, as the key keeps it. A remote job is `remote` and its regions (`remote us`,
    `remote canada us`, `remote worldwide`), or the place it names when it names no region (`remote
    berlin`), else just `remote`. An office job is its city (`Berlin, Germany` and `USA, Berlin` are
    `berlin`). "" when the location says nothing."""
    regions, places = named_places(location)
    if workplace.kind == REMOTE:
        if workplace.regions:
            return _remote(workplace.regions)
        return f"remote {places[0]}" if places else "remote"
    if places:
        return places[0]  # the first named place is the city: the ones after it are its state or country
    if regions and workplace.kind is None:
        # only countries or continents and nothing on how the work is done: how feeds list remote
        # jobs (RemoteOK's "United States"); an office is named by its city
        return _remote(regions)
    return " ".join(sorted(match_text(region) for region in regions))


def _remote(regions: tuple[str, ...]) -> str:
    return " ".join(["remote", *sorted(match_text(region) for region in regions)])


def dedupe_key(company: str, title: str, place: str) -> str | None:
    """The key from a posting's `company_key`, `title_key` and `place_key`; None without a company or
    a title (nothing to merge on). No part holds a "|": each is made of match_text."""
    return f"{company}|{title}|{place}" if company and title else None


SAME, POSSIBLE, DIFFERENT = "same", "possible", "different"
# Titles at least this alike (difflib's ratio over the title keys) are possible duplicates.
NEAR_TITLE = 0.85


@dataclass(frozen=True, slots=True)
class Comparison:
    verdict: str  # same | possible | different
    score: float  # 0..1: how alike the two postings are
    reason: str


def compare(a: Mapping, b: Mapping) -> Comparison:
    """How likely postings `a` and `b` are one job: mappings with company, title and location, and
    the stored `dedupe_key` when there is one. The key's parts then decide, as they were derived from
    all the posting stated (Himalayas' restrictions included); without a key they are derived from
    the company, title, location and `workplace_type`.

    `same` when their keys are equal (they are one canonical job already); `possible` for the same
    title and company in another place, or nearly-equal titles at one company; otherwise `different`.
    A title at another level (Senior vs Staff) is always a different job."""
    company_a, title_a, place_a = _parts(a)
    company_b, title_b, place_b = _parts(b)
    if not company_a or company_a != company_b:
        return Comparison(DIFFERENT, 0.0, "different companies")
    if not title_a or not title_b:
        return Comparison(DIFFERENT, 0.0, "no title")
    same_place = place_a == place_b
    if title_a == title_b:
        if same_place:
            return Comparison(SAME, 1.0, "same company, title and location")
        # one side not saying where (no location, or remote with no region) is weaker evidence of two
        # jobs than two places that differ
        score = 0.75 if place_a in _UNSAID or place_b in _UNSAID else 0.6
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


_UNSAID = ("", "remote")


def _parts(posting: Mapping) -> tuple[str, str, str]:
    key = posting.get("dedupe_key")
    if key:
        company, title, place = key.split("|", 2)
        return company, title, place
    title, location = posting.get("title"), posting.get("location")
    workplace = infer_workplace(workplace_type=posting.get("workplace_type"), location=location, title=title)
    return company_key(posting.get("company")), title_key(title), place_key(workplace, location)


def _levels(title: str) -> frozenset[str]:
    return frozenset(word for word in title.split() if word in _LEVELS)
