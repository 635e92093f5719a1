"""A saved search: what a user asks of the catalog, validated once, and why a job matched it.

Pure rules, no I/O: `store/searches.py` turns the parameters into SQL (full text in the database) and
asks `reasons` why each job it found matched, for the user to read beside the results.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobsync_pipeline.core.categories import CATEGORIES
from jobsync_pipeline.core.regions import region_named

SEARCH_SOURCES = ("company_files", "greenhouse", "lever", "remoteok", "himalayas", "site_crawl", "jobspy")
# The job sites JobSpy (python-jobspy >= 1.3) searches: the values of its `jobspy.model.Site` enum (a test
# compares them when the extra is installed; this module must not import it).
LIVE_SITES = ("indeed", "linkedin", "zip_recruiter", "glassdoor", "google", "bayt", "naukri", "bdjobs", "hellowork")
MAX_CLIENT_CONTEXT_BYTES = 4096
MAX_KEYWORDS_CHARS = 300
_WORDS = re.compile(r"[^\W_]+(?:[+#.][^\W_]*)*", re.UNICODE)  # "c++", "c#", "node.js" stay one word


class SearchParameters(BaseModel):
    """What a saved search asks for; at least one filter, or it would match the whole catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: str | None = Field(default=None, max_length=MAX_KEYWORDS_CHARS,
                                 description="Words every match has in its title or description (title matches rank higher).")
    locations: tuple[str, ...] = Field(default=(), max_length=20,
                                       description="Places or regions, any of which a match names (\"London\", \"Germany\", \"EU\").")
    remote: bool = Field(default=False, description="Only jobs done remotely.")
    sources: tuple[str, ...] = Field(default=(), description=f"Only these sources: {', '.join(SEARCH_SOURCES)}.")
    categories: tuple[str, ...] = Field(default=(), description=f"Only these categories: {', '.join(CATEGORIES)}.")
    min_salary: float | None = Field(default=None, ge=0, le=10_000_000,
                                     description="Annual salary (the upper bound of the job's range) at least this.")
    posted_within_days: int | None = Field(default=None, gt=0, le=3650, description="Posted at most this many days ago.")
    live_sites: tuple[str, ...] = Field(default=(), max_length=len(LIVE_SITES),
                                        description=f"Job sites to search live as well (through JobSpy): "
                                                    f"{', '.join(LIVE_SITES)}.")

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: str | None) -> str | None:
        value = " ".join((value or "").split())
        if value and not _WORDS.search(value):
            raise ValueError(f"keywords {value!r} hold no word to search for")
        return value or None

    @field_validator("locations")
    @classmethod
    def _texts(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(" ".join(v.split()) for v in values if v and v.strip()))
        if any(len(v) > 100 for v in cleaned):
            raise ValueError("a location is at most 100 characters")
        return cleaned

    @field_validator("live_sites")
    @classmethod
    def _live_sites(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        # "ZipRecruiter", "zip-recruiter" and "zip_recruiter" are one site
        named = [re.sub(r"[\s-]+", "_", v.strip().casefold()) for v in values if v and v.strip()]
        named = ["zip_recruiter" if v == "ziprecruiter" else v for v in named]
        unknown = [v for v in named if v not in LIVE_SITES]
        if unknown:
            raise ValueError(f"unknown live site {unknown[0]!r}; live sites: {', '.join(LIVE_SITES)}")
        return tuple(dict.fromkeys(named))

    @field_validator("sources")
    @classmethod
    def _sources(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in values if v not in SEARCH_SOURCES]
        if unknown:
            raise ValueError(f"unknown source {unknown[0]!r}; sources: {', '.join(SEARCH_SOURCES)}")
        return tuple(dict.fromkeys(values))

    @field_validator("categories")
    @classmethod
    def _categories(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in values if v not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r}; categories: {', '.join(CATEGORIES)}")
        return tuple(dict.fromkeys(values))

    @model_validator(mode="after")
    def _some_filter(self) -> SearchParameters:
        # live sites alone are no filter: the catalog part would match every job, and a site is asked
        # for the search's keywords and locations
        if not (self.keywords or self.locations or self.remote or self.sources or self.categories
                or self.min_salary is not None or self.posted_within_days):
            raise ValueError("a saved search needs at least one filter (keywords, location, remote, source, "
                             "category, min salary or posted within days; live sites alone are not one): "
                             "it would match every job")
        return self

    def words(self) -> list[str]:
        """The keywords as the words the full-text index holds."""
        return [word.casefold() for word in _WORDS.findall(self.keywords or "")]

    def regions(self) -> dict[str, str | None]:
        """Each location as asked, with the region the store names it by when it is one ("Germany")."""
        return {location: region_named(location) for location in self.locations}

    def to_json(self) -> str:
        return json.dumps(self.model_dump(exclude_defaults=True), sort_keys=True, ensure_ascii=False)


def parse_client_context(text: str | None, name: str = "--client-context") -> str | None:
    """A client's context as stored: a JSON object of at most 4 KB, or None; ValueError otherwise
    (naming it as the client gave it: an option, a JSON key)."""
    if text is None:
        return None
    if len(text.encode()) > MAX_CLIENT_CONTEXT_BYTES:
        raise ValueError(f"{name} is {len(text.encode()):,} bytes; at most {MAX_CLIENT_CONTEXT_BYTES:,}")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not JSON ({exc.args[0].split(':')[0]})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object ({{...}})")
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def valid_timezone(name: str) -> str:
    """`name` when it is an IANA time zone; ValueError naming it otherwise."""
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise ValueError(f"{name!r} is not a time zone (an IANA name such as Europe/London or America/New_York)")


def reasons(parameters: SearchParameters, job: Mapping[str, Any]) -> list[str]:
    """Why `job` (a row of the catalog) matched, one phrase per filter, as a user reads it."""
    said = []
    title = (job.get("title") or "").casefold()
    words = parameters.words()
    if words:
        in_title = [w for w in words if w in title]
        said.append(f"title has {', '.join(in_title)}" if len(in_title) == len(words)
                    else f"title or description has {', '.join(words)}")
    if parameters.locations:
        where = (job.get("location") or "").casefold()
        regions = json.loads(job.get("workplace_regions") or "[]")
        hit = next((asked for asked, region in parameters.regions().items()
                    if asked.casefold() in where or (region and region in regions)), parameters.locations[0])
        said.append(f"in {hit}")
    if parameters.remote:
        said.append("remote")
    if parameters.sources:
        said.append(f"from {job.get('source')}")
    if parameters.categories:
        said.append(f"category {job.get('category')}")
    if parameters.min_salary is not None:
        top = job.get("salary_annual_max") or job.get("salary_annual_min")
        said.append(f"salary up to {top:,.0f} a year" if top else "salary")
    if parameters.posted_within_days:
        said.append(f"posted {job.get('posted_date') or 'recently'}")
    return said
