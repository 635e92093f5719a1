"""The one region resolver: which countries and wider regions a location string or a feed's
restriction list names, written as the store names them ("US", "UK", "Germany", "North America").

Every source goes through here: a Greenhouse location ("Bangalore, India - Remote"), a Lever
`allLocations` entry, RemoteOK's free text and Himalayas' `locationRestrictions` ("Svalbard and Jan
Mayen") all resolve with the same names, so a search for jobs open in Italy finds them whichever
source said it. Countries come from ISO 3166 (pycountry: names, common and official names), wider
regions and the other ways people write countries from the tables below.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

WORLDWIDE = "Worldwide"

# The store's name for countries whose ISO name is not how people write them.
_CANONICAL = {
    "US": "US", "GB": "UK", "RU": "Russia", "TR": "Turkey", "CZ": "Czechia", "CD": "DR Congo", "CG": "Congo",
    "BN": "Brunei", "VA": "Vatican City", "FK": "Falkland Islands", "FM": "Micronesia", "PS": "Palestine",
    "VG": "British Virgin Islands", "VI": "US Virgin Islands", "MF": "Saint Martin", "SX": "Sint Maarten",
    "KP": "North Korea", "KR": "South Korea", "CI": "Côte d'Ivoire", "CV": "Cape Verde", "SZ": "Eswatini",
    "TL": "Timor-Leste", "IR": "Iran", "SY": "Syria", "TW": "Taiwan", "MD": "Moldova", "TZ": "Tanzania",
    "VE": "Venezuela", "BO": "Bolivia", "LA": "Laos", "VN": "Vietnam",
}
# Other ways of writing a country or a wider region (folded: lower case, no accents, words only).
_ALIASES = {
    "us": "US", "usa": "US", "u s": "US", "u s a": "US", "america": "US", "united states of america": "US",
    "uk": "UK", "gb": "UK", "great britain": "UK", "britain": "UK", "england": "UK", "scotland": "UK",
    "wales": "UK", "northern ireland": "UK",
    "ca": "Canada", "north america": "North America", "na": "North America", "amer": "Americas", "americas": "Americas",
    "latam": "Latin America", "latin america": "Latin America", "south america": "South America",
    "central america": "Central America", "caribbean": "Caribbean", "carribbean": "Caribbean",
    "eu": "EU", "european union": "EU", "europe": "Europe", "emea": "EMEA", "apac": "APAC", "asia": "Asia",
    "asia pacific": "APAC", "middle east": "Middle East", "mena": "MENA", "africa": "Africa",
    "oceania": "Oceania", "nordics": "Nordics", "scandinavia": "Nordics", "dach": "DACH", "benelux": "Benelux",
    "southeast asia": "Southeast Asia", "south east asia": "Southeast Asia", "east asia": "East Asia",
    "western europe": "Western Europe", "eastern europe": "Eastern Europe", "central europe": "Central Europe",
    "northern europe": "Northern Europe", "southern europe": "Southern Europe", "sub saharan africa": "Africa",
    "cet": "CET", "est": "EST", "pst": "PST",
    "worldwide": WORLDWIDE, "anywhere": WORLDWIDE, "global": WORLDWIDE, "international": WORLDWIDE,
    "deutschland": "Germany", "espana": "Spain", "the netherlands": "Netherlands", "holland": "Netherlands",
    "nederland": "Netherlands", "italia": "Italy", "schweiz": "Switzerland", "suisse": "Switzerland",
    "osterreich": "Austria", "polska": "Poland", "czech republic": "Czechia", "turkiye": "Turkey",
    "uae": "United Arab Emirates", "korea": "South Korea", "republic of korea": "South Korea",
    "brasil": "Brazil", "russia": "Russia", "ivory coast": "Côte d'Ivoire", "cabo verde": "Cape Verde",
    "hong kong sar": "Hong Kong", "macau": "Macao", "burma": "Myanmar", "swaziland": "Eswatini",
    "east timor": "Timor-Leste", "vatican": "Vatican City", "drc": "DR Congo",
}
# A country named like a US state: after a city it is the state ("Atlanta, Georgia").
_STATE_NAMES = {"georgia"}
# Codes that stay countries after a city ("London, UK"); any other two letters there are a state or
# province ("San Francisco, CA", "Toronto, ON").
_COUNTRY_CODES = {"us", "uk", "gb", "eu"}
# "North & South America", "Central and Eastern Europe": directions that share the noun after them.
_DIRECTIONS = {"north", "south", "east", "west", "central", "northern", "southern", "eastern", "western",
               "latin", "southeast", "south east"}
CONJUNCTIONS = re.compile(r"\s*(?:&|\+|\band\b|\bor\b)\s*")


def fold(text: str) -> str:
    """Lower case, accents gone, words joined by single spaces: "São Paulo" → "sao paulo"."""
    return " ".join(re.findall(r"[^\W_]+", fold_keep(text)))


def fold_keep(text: str) -> str:
    """`fold` without dropping the punctuation: lower case, accents gone."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in pycountry.countries:
        canonical = _CANONICAL.get(country.alpha_2) or getattr(country, "common_name", None) or country.name
        for written in (country.name, getattr(country, "common_name", None), getattr(country, "official_name", None),
                        canonical):
            if written:
                names.setdefault(fold(written), canonical)
    names.update(_ALIASES)
    return names


def region_named(text: str, *, after_place: bool = False) -> str | None:
    """The region `text` names as a whole (a country, a continent, a time zone), or None.
    `after_place`: it follows a city, where two letters are a state and "Georgia" is one too."""
    folded = fold(text)
    if after_place and ((len(folded) == 2 and folded not in _COUNTRY_CODES) or folded in _STATE_NAMES):
        return None
    return _names().get(folded)


def regions_in(words: str, *, after_place: bool = False, hyphenated: bool = False) -> tuple[list[str], str] | None:
    """The regions a part of a location names, and what of it is left as a place: one region ("Italy"),
    several joined ("US or Canada", "North & South America", "US Canada"), or a region before a place
    ("US Chicago", from `hyphenated` "US-Chicago": US, and "chicago" left). None when the part names no
    region."""
    single = region_named(words, after_place=after_place)
    if single is not None:
        return [single], ""
    pieces = [piece for piece in CONJUNCTIONS.split(words) if fold(piece)]
    if len(pieces) > 1:
        last = fold(pieces[-1]).split()
        noun = last[-1] if len(last) > 1 else None
        found = []
        for piece in pieces:
            folded = fold(piece)
            region = region_named(piece) or (region_named(f"{folded} {noun}") if noun and folded in _DIRECTIONS else None)
            if region is None:
                break
            found.append(region)
        else:
            return found, ""
    folded = fold(words).split()
    if len(folded) > 1 and all(region_named(word) for word in folded):
        return [region_named(word) for word in folded], ""  # "US Canada", a separator lost
    if hyphenated and len(folded) > 1 and (first := region_named(folded[0])) and first != WORLDWIDE:
        return [first], " ".join(folded[1:])
    return None


def canonical_regions(names: list[str]) -> list[str]:
    """A feed's list of allowed regions (Himalayas `locationRestrictions`) in the store's names, in order,
    once each; a name the resolver does not know is kept as written."""
    regions: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            continue
        found = regions_in(name)
        for region in found[0] if found else [name.strip()]:
            if region not in regions:
                regions.append(region)
    return regions
