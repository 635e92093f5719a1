"""Where a job is done (remote, hybrid, on-site) and which regions a remote job is open to.

Evidence is taken strongest first and the store keeps which one decided: a structured field the
source fills in (Lever `workplaceType`, Greenhouse "Workplace Type" metadata, Himalayas
`locationRestrictions`), then the location text ("Remote - US", "Remote (EU)", "Anywhere"), then the
title ("Backend Engineer (Remote)"). A job with no evidence stays unknown rather than guessed on-site.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

REMOTE, HYBRID, ONSITE = "remote", "hybrid", "onsite"
WORLDWIDE = "Worldwide"

_FIELD_VALUES = {
    "remote": REMOTE, "fully remote": REMOTE, "remote first": REMOTE, "remote only": REMOTE, "distributed": REMOTE,
    "hybrid": HYBRID, "flexible": HYBRID,
    "onsite": ONSITE, "on site": ONSITE, "in office": ONSITE, "office": ONSITE, "in person": ONSITE,
}
# a bare "Remote" names no region (often it means the company's own country), so it is not here
_ANYWHERE = {"anywhere", "worldwide", "global", "earth", "world", "everywhere", "international"}
_REMOTE_WORDS = re.compile(r"\b(remote|remotely|anywhere|worldwide|work from home|wfh|distributed|telecommute)\b",
                           re.IGNORECASE)
_HYBRID_WORDS = re.compile(r"\bhybrid\b", re.IGNORECASE)
_ONSITE_WORDS = re.compile(r"\b(on[- ]?site|in[- ]office|in[- ]person)\b", re.IGNORECASE)
# region names written in many ways, as the one name the store keeps
_REGION_ALIASES = {
    "us": "US", "usa": "US", "u s": "US", "u s a": "US", "united states": "US", "united states of america": "US",
    "america": "US", "north america": "North America", "na": "North America", "amer": "Americas",
    "americas": "Americas", "latam": "Latin America", "latin america": "Latin America",
    "south america": "South America", "eu": "EU", "europe": "Europe", "european union": "EU", "emea": "EMEA",
    "uk": "UK", "united kingdom": "UK", "gb": "UK", "great britain": "UK", "apac": "APAC", "asia": "Asia",
    "canada": "Canada", "ca": "Canada", "cet": "CET", "est": "EST", "pst": "PST", "worldwide": WORLDWIDE,
    "anywhere": WORLDWIDE, "global": WORLDWIDE,
}
_SEPARATORS = re.compile(r"\s*(?:[,;/|()\[\]]|\s-\s|\s–\s|\s—\s|:)\s*")
_NOISE = {"remote", "remotely", "fully", "only", "based", "hybrid", "onsite", "on site", "in office", "or", "and",
          "friendly", "first", "position", "role", "from", "within", "in", "timezones", "time zones", "tz", "ok"}


@dataclass(frozen=True, slots=True)
class Workplace:
    kind: str | None = None  # remote, hybrid, onsite
    regions: tuple[str, ...] = ()
    evidence: str | None = None  # field, location, title

    @property
    def known(self) -> bool:
        return self.kind is not None


UNKNOWN = Workplace()


def infer_workplace(*, workplace_type: str | None = None, restrictions: Sequence[str] | None = None,
                    location: str | None = None, title: str | None = None) -> Workplace:
    """The workplace of a job from the strongest evidence at hand.

    `restrictions`: a feed's list of allowed regions for a remote job (Himalayas); an empty list means
    open worldwide, None means the source does not say."""
    regions_from_location = _regions(location) if location else ()
    field = _field_kind(workplace_type)
    if field is not None:
        if field != REMOTE:
            return Workplace(field, (), "field")  # regions restrict remote work; an office has its location
        return Workplace(field, tuple(_canonical_regions(restrictions or ())) or regions_from_location, "field")
    if restrictions is not None:
        return Workplace(REMOTE, tuple(_canonical_regions(restrictions)) or (WORLDWIDE,), "field")
    kind = _text_kind(location)
    if kind is not None:
        if kind != REMOTE:
            return Workplace(kind, (), "location")
        return Workplace(kind, regions_from_location or ((WORLDWIDE,) if _anywhere(location) else ()), "location")
    kind = _text_kind(title)
    if kind is not None:
        return Workplace(kind, regions_from_location if kind == REMOTE else (), "title")
    return UNKNOWN  # a bare city does not say whether the office is required


def _field_kind(value: str | None) -> str | None:
    if not value or not isinstance(value, str):
        return None
    words = " ".join(re.split(r"[^a-z]+", value.lower())).strip()
    return _FIELD_VALUES.get(words)


def _text_kind(text: str | None) -> str | None:
    if not text:
        return None
    if _HYBRID_WORDS.search(text):
        return HYBRID
    if _REMOTE_WORDS.search(text):
        return REMOTE
    if _ONSITE_WORDS.search(text):
        return ONSITE
    return None


def _anywhere(text: str) -> bool:
    return any(word in _ANYWHERE for word in re.split(r"[^a-z]+", text.lower()) if word) and not _regions(text)


def _regions(text: str) -> tuple[str, ...]:
    """Named regions in a remote location ("Remote - US", "Remote (US or Canada)"); none for a city."""
    if not _REMOTE_WORDS.search(text):
        return ()
    found: list[str] = []
    for part in _SEPARATORS.split(text):
        words = [w for w in re.split(r"[^a-z]+", part.lower()) if w]
        words = [w for w in words if w not in _NOISE]
        for piece in _split_or(words):
            name = _REGION_ALIASES.get(piece)
            if name and name != WORLDWIDE and name not in found:
                found.append(name)
    return tuple(found)


def _split_or(words: list[str]) -> list[str]:
    # "us canada" (from "US or Canada" after noise removal) is two regions unless the whole is one name
    joined = " ".join(words)
    if not joined:
        return []
    if joined in _REGION_ALIASES:
        return [joined]
    return words


def _canonical_regions(names: Sequence[str]) -> list[str]:
    regions: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            continue
        key = " ".join(w for w in re.split(r"[^a-z]+", name.lower()) if w)
        region = _REGION_ALIASES.get(key, name.strip())
        if region not in regions:
            regions.append(region)
    return regions
