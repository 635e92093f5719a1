"""A crawled site's configuration, validated: where its search pages are, what to search, how politely.

Stored in the store's `sites` table (`jobsync sites add/set`), never in code; a site's name is its
partition of the `site_crawl` lane.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobsync_pipeline.sources.bucket import board_name_problem

SOURCE = "site_crawl"  # the source whose boards are the configured sites
DEFAULT_MAX_PAGES = 5
DEFAULT_REQUEST_DELAY = 2.0
DEFAULT_MAX_JOBS = 100
DEFAULT_TIMEOUT = 30.0


class SiteConfig(BaseModel):
    """One job site to crawl by search keywords and result pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The site's name: its partition of the site_crawl lane.")
    search_url: str = Field(description=(
        "The search results URL, holding {keyword} and {page}: https://example.org/jobs/{keyword}?page={page}"))
    keywords: tuple[str, ...] = Field(min_length=1, description="What to search for, one search per keyword.")
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1, le=1000,
                           description="Result pages read per keyword at most (fewer when a page brings no new job).")
    request_delay: float = Field(default=DEFAULT_REQUEST_DELAY, ge=0, le=3600,
                                 description="Seconds at least between two requests to the site.")
    max_jobs: int = Field(default=DEFAULT_MAX_JOBS, ge=1, le=100_000,
                          description="Job pages read per crawl at most.")
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=600,
                           description="Seconds one page may take to arrive (or to render, with a browser).")
    browser: bool = Field(default=False, description=(
        "Render pages in headless Chromium (the browser extra and a system Chromium) instead of plain HTTP."))
    link_selector: str | None = Field(default=None, description=(
        "A CSS selector for the job links of a results page; unset: links to pages carrying a JobPosting, or "
        "the page's JSON-LD ItemList."))
    language: str | None = Field(default=None, description=(
        "Keep only postings in this language (an ISO 639-1 code such as en or vi); unset: any language."))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = board_name_problem(value)
        if problem:
            raise ValueError(f"site name {value!r} {problem}")
        return value

    @field_validator("search_url")
    @classmethod
    def _search_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value.replace("{keyword}", "k").replace("{page}", "1"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"search URL {value!r} is not an http(s) URL with a host")
        for field in ("{keyword}", "{page}"):
            if field not in value:
                raise ValueError(f"search URL {value!r} has no {field}")
        try:
            value.format(keyword="k", page=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"search URL {value!r} holds a field other than {{keyword}} and {{page}}: {exc}") from None
        return value

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords(cls, value):
        if isinstance(value, str):
            value = value.split(",")
        cleaned = tuple(dict.fromkeys(k.strip() for k in value if k and k.strip()))
        if not cleaned:
            raise ValueError("at least one keyword is needed")
        return cleaned

    @field_validator("link_selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from cssselect import GenericTranslator, SelectorError

        try:
            GenericTranslator().css_to_xpath(value)
        except SelectorError as exc:
            raise ValueError(f"link selector {value!r} is not a CSS selector: {exc}") from None
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        if not value.isalpha() or len(value) not in (2, 3):
            raise ValueError(f"language {value!r} is not an ISO 639 code such as en or vi")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.search_url.replace("{keyword}", "k").replace("{page}", "1")).netloc

    def search_page(self, keyword: str, page: int) -> str:
        from urllib.parse import quote

        return self.search_url.format(keyword=quote(keyword, safe=""), page=page)


# The example site `jobsync sites seed` ships, inactive: shaped like TopCV's search (a national board
# whose job pages carry JSON-LD JobPosting).
SEED_SITE = SiteConfig(
    name="topcv",
    search_url="https://www.topcv.vn/tim-viec-lam-{keyword}?page={page}",
    keywords=("python-developer", "java-developer", "javascript-developer"),
    max_pages=5, request_delay=2.0, max_jobs=100)
