"""Where a job is done (remote, hybrid, on-site) and which regions a remote job is open to.

Evidence is taken strongest first and the store keeps which one decided: a structured field the
source fills in (Lever `workplaceType`, Greenhouse "Workplace Type" metadata, Himalayas
`locationRestrictions`), then the location text ("Remote - US", "Remote (EU)", "Anywhere"), then the
title ("Backend Engineer (Remote)"). A job with no evidence stays unknown rather than guessed on-site.
"""
from __future__ import annotations

import re
import unicodedata
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
# region names written in many ways (folded: lower case, no accents), as the one name the store keeps
_REGION_ALIASES = {
    "us": "US", "usa": "US", "u s": "US", "u s a": "US", "united states": "US", "united states of america": "US",
    "america": "US", "north america": "North America", "na": "North America", "amer": "Americas",
    "americas": "Americas", "latam": "Latin America", "latin america": "Latin America",
    "south america": "South America", "eu": "EU", "europe": "Europe", "european union": "EU", "emea": "EMEA",
    "uk": "UK", "united kingdom": "UK", "gb": "UK", "great britain": "UK", "apac": "APAC", "asia": "Asia",
    "canada": "Canada", "ca": "Canada", "cet": "CET", "est": "EST", "pst": "PST", "worldwide": WORLDWIDE,
    "anywhere": WORLDWIDE, "global": WORLDWIDE,
    # countries by their English name, and the other names sources write them by
    "deutschland": "Germany", "espana": "Spain", "the netherlands": "Netherlands", "holland": "Netherlands",
    "nederland": "Netherlands", "italia": "Italy", "schweiz": "Switzerland", "suisse": "Switzerland",
    "osterreich": "Austria", "polska": "Poland", "czech republic": "Czechia", "turkiye": "Turkey",
    "uae": "United Arab Emirates", "korea": "South Korea", "republic of korea": "South Korea", "brasil": "Brazil",
    **{name.lower(): name for name in (
        "Germany", "France", "Spain", "Portugal", "Netherlands", "Belgium", "Luxembourg", "Ireland", "Italy",
        "Switzerland", "Austria", "Poland", "Sweden", "Norway", "Denmark", "Finland", "Iceland", "Czechia",
        "Slovakia", "Slovenia", "Hungary", "Romania", "Bulgaria", "Greece", "Croatia", "Serbia", "Ukraine",
        "Estonia", "Latvia", "Lithuania", "Cyprus", "Malta", "Turkey", "Israel", "United Arab Emirates", "Egypt",
        "Morocco", "Nigeria", "Kenya", "Ghana", "South Africa", "India", "Pakistan", "Bangladesh", "Sri Lanka",
        "Nepal", "Philippines", "Indonesia", "Malaysia", "Singapore", "Thailand", "Vietnam", "Japan",
        "South Korea", "China", "Hong Kong", "Taiwan", "Australia", "New Zealand", "Mexico", "Brazil",
        "Argentina", "Chile", "Colombia", "Peru", "Uruguay", "Costa Rica")},
}
# a two-letter code after a place is its state or province ("San Francisco, CA"), not a country
_COUNTRY_CODES = {"us", "uk", "gb", "eu"}
# cities written in more than one way (folded), as one
_PLACE_ALIASES = {
    "nyc": "new york", "new york city": "new york", "sf": "san francisco", "munchen": "munich",
    "koln": "cologne", "wien": "vienna", "praha": "prague", "warszawa": "warsaw", "lisboa": "lisbon",
    "milano": "milan", "roma": "rome", "bengaluru": "bangalore", "gurugram": "gurgaon",
}
_SEPARATORS = re.compile(r"\s*(?:[,;/|()\[\]]|\s-\s|\s–\s|\s—\s|:)\s*")
_WORKPLACE_WORDS = re.compile("|".join(p.pattern for p in (_REMOTE_WORDS, _HYBRID_WORDS, _ONSITE_WORDS)))
_NOISE = {"remote", "remotely", "fully", "only", "based", "hybrid", "onsite", "or", "and", "friendly", "first",
          "position", "role", "from", "within", "in", "the", "time", "zone", "zones", "timezone", "timezones", "tz",
          "hours", "ok"}


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
        return Workplace(field, tuple(_canonical_regions(restrictions or ())) or _regions(location), "field")
    if restrictions is not None:
        return Workplace(REMOTE, tuple(_canonical_regions(restrictions)) or (WORLDWIDE,), "field")
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
    """The regions a location names (countries, continents, time zones: as the store names them) and
    its other places (cities, states: folded to lower case without accents), each in order, without
    the words that say how the work is done.

    "Remote - US or Canada" names ("US", "Canada") and no place; "Berlin, Germany" ("Germany",) and
    ("berlin",); "San Francisco, CA (Hybrid)" no region and ("san francisco", "ca")."""
    regions: list[str] = []
    places: list[str] = []
    for part in _SEPARATORS.split(location or ""):
        words = [w for w in _folded_words(_WORKPLACE_WORDS.sub(" ", part.casefold())) if w not in _NOISE]
        if not words:
            continue
        joined = " ".join(words)
        if joined in _REGION_ALIASES and not (places and len(joined) == 2 and joined not in _COUNTRY_CODES):
            found = [_REGION_ALIASES[joined]]
        elif len(words) > 1 and all(w in _REGION_ALIASES for w in words):
            found = [_REGION_ALIASES[w] for w in words]  # "US or Canada", its "or" gone
        else:
            place = _PLACE_ALIASES.get(joined, joined)
            if place not in places:
                places.append(place)
            continue
        regions.extend(region for region in found if region not in regions)
    return tuple(regions), tuple(places)


def _regions(text: str | None) -> tuple[str, ...]:
    """Named regions in a location ("Remote - US", "Remote (US or Canada)", "Berlin, Germany"), but
    not "worldwide": that is only said of a remote job, by `_anywhere`."""
    return tuple(region for region in named_places(text)[0] if region != WORLDWIDE)


def _canonical_regions(names: Sequence[str]) -> list[str]:
    regions: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            continue
        region = _REGION_ALIASES.get(" ".join(_folded_words(name)), name.strip())
        if region not in regions:
            regions.append(region)
    return regions


def _folded_words(text: str) -> list[str]:
    # without accents, so that "México" and "Mexico", "Zürich" and "Zurich" meet
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return re.findall(r"[^\W_]+", "".join(char for char in decomposed if not unicodedata.combining(char)))
