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

from jobsync_pipeline.core.regions import (CONJUNCTIONS as _CONJUNCTIONS, WORLDWIDE, canonical_regions, fold, fold_keep,
                                           region_named, regions_in)

REMOTE, HYBRID, ONSITE = "remote", "hybrid", "onsite"

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
# cities written in more than one way (folded), as one
_PLACE_ALIASES = {
    "nyc": "new york", "new york city": "new york", "sf": "san francisco", "munchen": "munich",
    "koln": "cologne", "wien": "vienna", "praha": "prague", "warszawa": "warsaw", "lisboa": "lisbon",
    "milano": "milan", "roma": "rome", "bengaluru": "bangalore", "gurugram": "gurgaon",
}
_HYPHENATED = re.compile(r"\s*[^\W\d_]+-[^\W\d_]")  # "US-Chicago", "Canada-Remote"
_SEPARATORS = re.compile(r"\s*(?:[,;/|()\[\]]|\s-\s|\s–\s|\s—\s|:)\s*")
_WORKPLACE_WORDS = re.compile("|".join(p.pattern for p in (_REMOTE_WORDS, _HYBRID_WORDS, _ONSITE_WORDS)))
# words that say nothing of where ("and"/"or" stay: they join regions, "North & South America")
_NOISE = {"remote", "remotely", "fully", "only", "based", "hybrid", "onsite", "friendly", "first",
          "position", "role", "from", "within", "in", "the", "time", "zone", "zones", "timezone", "timezones", "tz",
          "hours", "ok", "anywhere"}


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
    field = _field_kind(workplace_type)
    if field is not None:
        if field != REMOTE:
            return Workplace(field, (), "field")  # regions restrict remote work; an office has its location
        regions = tuple(canonical_regions(list(restrictions or ()))) or _regions(location)
        return Workplace(field, regions or ((WORLDWIDE,) if location and _anywhere(location) else ()), "field")
    if restrictions is not None:
        return Workplace(REMOTE, tuple(canonical_regions(list(restrictions))) or (WORLDWIDE,), "field")
    kind = _text_kind(location)
    if kind is not None:
        if kind != REMOTE:
            return Workplace(kind, (), "location")
        return Workplace(kind, _regions(location) or ((WORLDWIDE,) if _anywhere(location) else ()), "location")
    kind = _text_kind(title)
    if kind is not None:
        return Workplace(kind, _regions(location) if kind == REMOTE else (), "title")
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


def named_places(location: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The regions a location names (countries, continents, time zones: as `core.regions` names them)
    and its other places (cities, states: folded to lower case without accents), each in order, without
    the words that say how the work is done.

    "Remote - US or Canada" names ("US", "Canada") and no place; "Berlin, Germany" ("Germany",) and
    ("berlin",); "San Francisco, CA (Hybrid)" no region and ("san francisco", "ca")."""
    text = _WORKPLACE_WORDS.sub(" ", (location or "").casefold())
    whole = region_named(text)  # a name with a comma in it: "Congo, The Democratic Republic of the"
    if whole is not None and "," in text:
        return (whole,), ()
    regions: list[str] = []
    places: list[str] = []
    for part in _SEPARATORS.split(text):
        words = " ".join(w for w in re.findall(r"[^\W_]+|[&+]", fold_keep(part)) if w not in _NOISE)
        if not fold(words):
            continue
        hyphenated = _HYPHENATED.match(part) is not None
        found = regions_in(words, after_place=bool(places), hyphenated=hyphenated)
        # "Chicago, IL or San Francisco, CA": places joined by "or" are each a place (or a region)
        pieces = [(found, words)] if found is not None else [
            (regions_in(piece, after_place=bool(places), hyphenated=hyphenated), piece)
            for piece in _CONJUNCTIONS.split(words) if fold(piece)]
        for found, piece in pieces:
            named, rest = found if found is not None else ([], fold(piece))
            if rest:
                place = _PLACE_ALIASES.get(rest, rest)
                if place not in places:
                    places.append(place)
            regions.extend(region for region in named if region not in regions)
    return tuple(regions), tuple(places)


def _regions(text: str | None) -> tuple[str, ...]:
    """Named regions in a location ("Remote - US", "Remote (US or Canada)", "Berlin, Germany"), but
    not "worldwide": that is only said of a remote job, by `_anywhere`."""
    return tuple(region for region in named_places(text)[0] if region != WORLDWIDE)
