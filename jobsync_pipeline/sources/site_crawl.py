"""Job sites crawled by search keywords and result pages; their jobs read off schema.org JobPosting.

A site (`SiteConfig`, one partition of the lane) is crawled in the steps of `CRAWL_STEPS.fetch`, each
reported as it goes: load the config, read robots.txt (the site must answer), start a headless
browser when the site needs one, read the search result pages of every keyword for job links, then
read the job pages. Every request to the site waits its turn on the client's pacer, so the site's
`request_delay` holds between any two of them, browser navigations included (a rendered page's own
scripts and data requests go with its navigation; its images, media and fonts are not loaded at all);
robots.txt is obeyed for our user agent. A site lists only what its search shows, up to `max_jobs` pages a crawl: a job
missing from one crawl is not gone (the lane should expire such jobs like a feed's).

The payload archives the crawl in a compact, re-parseable JSON document (see `SiteCrawl.archive`):
each job page's JobPosting items exactly as extracted, so a parse never needs the site again.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser


from jobsync_pipeline.core.models import ParsedSnapshot, Posting, RawPayload
from jobsync_pipeline.core.steps import NoReporter, StepReporter, run_step
from jobsync_pipeline.sources.base import BoardError, decode_json, error_text
from jobsync_pipeline.sources.browser import DEFAULT_BROWSER_PATH, BrowserPages, BrowserUnavailable, PageFailed
from jobsync_pipeline.sources.collect import PostingCollector
from jobsync_pipeline.sources.http import FetchError, HttpPolicy, PoliteClient, retry_after_seconds
from jobsync_pipeline.sources.jobposting import (MALFORMED, NO_POSTING, extract_from_tree, extract_job_postings,
                                                 job_posting, language_code, page_tree)
from jobsync_pipeline.sources.site_config import SOURCE, SiteConfig

PAYLOAD_FORMAT = 1
# How a job link was found on a results page: the site's link selector, the page's JSON-LD ItemList,
# or every link to the site (then only pages that turn out to carry a JobPosting are jobs).
VIA_SELECTOR, VIA_ITEM_LIST, VIA_LINKS = "selector", "itemlist", "links"
DISALLOWED = "disallowed by robots.txt"
FETCH_FAILED = "fetch failed"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class JobLink:
    url: str
    via: str  # VIA_SELECTOR, VIA_ITEM_LIST or VIA_LINKS


@dataclass(frozen=True)
class PageRead:
    """One page as read: its final URL, status and body, or why it could not be read."""

    url: str
    status: int | None
    body: str | bytes = b""
    error: str | None = None


class PageReader(Protocol):
    def read(self, url: str) -> PageRead: ...


class HttpPageReader:
    """Pages over plain HTTP through the polite client (its pacing, Retry-After and backoff)."""

    def __init__(self, client: PoliteClient):
        self.client = client

    def read(self, url: str) -> PageRead:
        try:
            fetched = self.client.get(url)
        except FetchError as exc:
            return PageRead(url=url, status=exc.status, error=str(exc))
        return PageRead(url=fetched.url, status=fetched.status, body=fetched.body)


class BrowserPageReader:
    """Pages rendered in the browser, each navigation paced on the client's pacer like its requests (the
    interval counted again from the navigation's end), and a 429/503 waited out (its Retry-After, else
    the client's backoff ceiling) and retried up to the client's attempts."""

    def __init__(self, browser: BrowserPages, client: PoliteClient, timeout: float):
        self.browser, self.client, self.timeout = browser, client, timeout

    def read(self, url: str) -> PageRead:
        policy = self.client.policy
        delay = 0.0
        for attempt in range(1, policy.max_attempts + 1):
            self.client.wait_turn(url, delay)
            try:
                page = self.browser.render(url, self.timeout)
            except PageFailed as exc:
                return PageRead(url=url, status=None, error=str(exc))
            finally:
                # the slot was when Chromium was asked to go; its request leaves some milliseconds later
                # (more on a loaded machine): the next one waits a whole interval from the navigation's end
                self.client.rest(url)
            if page.status is None or 200 <= page.status < 300:
                return PageRead(url=page.url, status=page.status or 200, body=page.html)
            problem = f"GET {url} answered {page.status} in the browser"
            if page.status not in _RETRY_STATUSES:
                return PageRead(url=url, status=page.status, error=problem)
            asked = retry_after_seconds(page.headers.get("retry-after"), page.headers.get("date"))
            if asked is not None and asked > policy.retry_after_cap:
                return PageRead(url=url, status=page.status, error=(
                    f"{problem} asking to retry after {asked:.0f} s, over the {policy.retry_after_cap:.0f} s cap"))
            if attempt == policy.max_attempts:
                return PageRead(url=url, status=page.status, error=f"{problem}, gave up after {attempt} attempts")
            if asked is not None:
                self.client.rest(url, asked)  # the server spoke for the whole host
            delay = asked if asked is not None else min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the loop returns


# The pacer spaces the moments requests may start; a request leaves a little after its slot (the end of
# a sleep, the client's own code) and the first also opens the connection, so slots exactly
# `request_delay` apart could reach the site a fraction of a millisecond closer than promised. Each
# gap gets this much more, so every gap the site sees is at least its delay.
PACING_MARGIN_SECONDS = 0.01


def site_policy(config: SiteConfig, **fields: Any) -> HttpPolicy:
    """How politely to ask one site: at least its request delay between any two requests to its host,
    each page within its timeout; `fields` set the rest of the policy (attempts, caps, user agent)."""
    interval = config.request_delay + PACING_MARGIN_SECONDS if config.request_delay > 0 else 0.0
    timeouts = {"connect_timeout": min(fields.pop("connect_timeout", 10.0), config.timeout),
                "read_timeout": min(fields.pop("read_timeout", 30.0), config.timeout)}
    return HttpPolicy(requests_per_second=1 / interval if interval else None, deadline_seconds=config.timeout,
                      **timeouts, **fields)


class StepRunner:
    """Reports a crawl's steps: `step` starts one, finishes it with the counts its body filled in, or
    fails it with the error's message (then re-raises)."""

    def __init__(self, reporter: StepReporter):
        self.reporter = reporter

    def step(self, name: str, total: int | None = None):
        return run_step(self.reporter, name, total, describe=error_text)

    def advance(self, name: str, done: int, total: int | None, counts: Mapping[str, int]) -> None:
        self.reporter.advance(name, done, total, dict(counts))

    def skip(self, name: str, reason: str) -> None:
        self.reporter.skip(name, reason)


# --- job links on a results page ---------------------------------------------------------------------


def job_links(body: str | bytes, page_url: str, config: SiteConfig,
              excluded: AbstractSet[str] = frozenset()) -> list[JobLink]:
    """The job links of a results page: the site's link selector's, else its ItemList's, else every
    link to the site; absolute, without fragments, once each, never a page in `excluded`."""
    try:
        tree = page_tree(body)
    except Exception:  # lxml's ParserError for an empty page: a page without links
        return []
    if config.link_selector:
        hrefs, via = [_href(element) for element in tree.cssselect(config.link_selector)], VIA_SELECTOR
    else:
        hrefs, via = extract_from_tree(tree, page_url).item_urls, VIA_ITEM_LIST
        if not hrefs:
            hrefs, via = tree.xpath("//a/@href"), VIA_LINKS
    site = _site_of(config.search_page("k", 1))
    links: dict[str, JobLink] = {}
    for href in hrefs:
        url = _site_url(href, page_url, site)
        if url and url not in excluded and url != page_url:
            links.setdefault(url, JobLink(url, via))
    return list(links.values())


def _href(element: Any) -> str | None:
    """A matched element's link: its own href, or its first link's (a selector matching job cards)."""
    href = element.get("href")
    if href:
        return href
    inner = element.xpath(".//a[@href]/@href")
    return inner[0] if inner else None


def _site_of(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme)


def _site_url(href: str | None, page_url: str, site: tuple[str, int | None]) -> str | None:
    """`href` resolved against the page, fragment dropped, when it is an http(s) URL on the site's host."""
    if not href or not href.strip():
        return None
    try:
        url = urldefrag(urljoin(page_url, href.strip())).url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or _site_of(url) != site:
            return None
    except ValueError:  # a malformed port or IPv6 address in a link
        return None
    return url


# --- the crawl ---------------------------------------------------------------------------------------


class SiteCrawl:
    """One crawl of one site: its steps after `initialize`, what they found, and the payload they make."""

    def __init__(self, config: SiteConfig, client: PoliteClient, steps: StepRunner, *,
                 browser_path: str = DEFAULT_BROWSER_PATH):
        self.config, self.client, self.steps, self.browser_path = config, client, steps, browser_path
        self.crawled_at = datetime.now(timezone.utc)
        self.robots = RobotFileParser()
        self.robots_record: dict[str, Any] = {}
        self.reader: PageReader = HttpPageReader(client)
        self.browser: BrowserPages | None = None
        self.search_urls = {config.search_page(k, p) for k in config.keywords for p in range(1, config.max_pages + 1)}
        self.listings: list[dict] = []
        self.links: dict[str, JobLink] = {}
        self.pages: list[dict] = []
        self.disallowed: list[str] = []
        self.counts: Counter = Counter()

    def run(self) -> RawPayload:
        self.check_availability()
        try:
            self.start_browser()
            self.generate_urls()
            self.crawl()
        finally:
            self.close_browser()
        return RawPayload(board=self.config.name, location=self.config.search_url, body=self.archive(),
                          fetched_at=self.crawled_at)

    # -- check_availability --

    def robots_url(self) -> str:
        parts = urlsplit(self.config.search_page("k", 1))
        return f"{parts.scheme}://{parts.netloc}/robots.txt"

    def check_availability(self) -> None:
        """Reads robots.txt; absent (a 3xx or 4xx) allows everything, as RFC 9309 says. No answer at all,
        or a server error, means the site is not available: the crawl stops here."""
        url = self.robots_url()
        with self.steps.step("check_availability") as counts:
            try:
                fetched = self.client.get(url)
            except FetchError as exc:
                if exc.status is None or exc.status == 429 or exc.status >= 500:
                    raise BoardError(f"site {self.config.name}: {self.config.host} is not available: {exc}") from exc
                self.robots_record = {"url": url, "status": exc.status, "found": False}
                rules = ""
            else:
                self.robots_record = {"url": url, "status": fetched.status, "found": True}
                rules = fetched.body.decode("utf-8", errors="replace")
            self.robots.parse(rules.splitlines())
            # kept for the operator: the pace is the site's request_delay, which robots.txt does not change
            self.robots_record["crawl_delay"] = self.robots.crawl_delay(self.client.policy.user_agent)
            counts["robots_found"] = int(self.robots_record["found"])

    def allowed(self, url: str) -> bool:
        return self.robots.can_fetch(self.client.policy.user_agent, url)

    # -- start_browser --

    def start_browser(self) -> None:
        if not self.config.browser:
            self.steps.skip("start_browser", "plain HTTP")
            return
        with self.steps.step("start_browser"):
            try:
                self.browser = BrowserPages(self.browser_path, user_agent=self.client.policy.user_agent)
            except BrowserUnavailable as exc:
                raise BoardError(f"site {self.config.name} needs a browser: {exc}") from None
            self.reader = BrowserPageReader(self.browser, self.client, self.config.timeout)

    def close_browser(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None

    # -- generate_urls --

    def generate_urls(self) -> None:
        """Every keyword's result pages, 1 to `max_pages`, up to the first one with no new job link."""
        config = self.config
        total = len(config.keywords) * config.max_pages
        with self.steps.step("generate_urls", total) as counts:
            for keyword in config.keywords:
                seen: set[str] = set()
                for page in range(1, config.max_pages + 1):
                    listing, new_here = self.read_listing(keyword, page, seen)
                    self.listings.append(listing)
                    self._count_listing(listing, counts)
                    self.steps.advance("generate_urls", len(self.listings), total, counts)
                    if not new_here or self._enough_links():
                        break
                if self._enough_links():
                    break
            self._check_listings()

    def read_listing(self, keyword: str, page: int, seen: set[str]) -> tuple[dict, bool]:
        """A results page's archive record, and whether it brought a job link this keyword had not."""
        url = self.config.search_page(keyword, page)
        listing: dict[str, Any] = {"url": url, "keyword": keyword, "page": page, "status": None}
        if not self.allowed(url):
            listing["problem"] = DISALLOWED
            return listing, False
        read = self.reader.read(url)
        listing["status"] = read.status
        if read.error:
            listing["problem"] = f"{FETCH_FAILED}: {read.error}"
            return listing, False
        links = job_links(read.body, read.url, self.config, self.search_urls)
        new = [link for link in links if link.url not in self.links]
        self.links.update((link.url, link) for link in new)
        new_here = [link.url for link in links if link.url not in seen]
        seen.update(new_here)
        listing.update(links=[link.url for link in links], via=links[0].via if links else None, new_links=len(new))
        return listing, bool(new_here)

    def _count_listing(self, listing: dict, counts: Counter) -> None:
        problem = listing.get("problem")
        counts["pages"] += problem is None
        counts["links"] += listing.get("new_links", 0)
        counts["disallowed"] += problem == DISALLOWED
        counts["failed_pages"] += problem is not None and problem != DISALLOWED

    def _enough_links(self) -> bool:
        # links found through the selector or an ItemList are all jobs: more than max_jobs is wasted asking
        return (len(self.links) >= self.config.max_jobs
                and all(link.via != VIA_LINKS for link in self.links.values()))

    def _check_listings(self) -> None:
        if any(listing.get("problem") is None for listing in self.listings):
            return
        problems = [listing["problem"] for listing in self.listings]
        if all(problem == DISALLOWED for problem in problems):
            raise BoardError(f"site {self.config.name}: robots.txt disallows every search page "
                             f"({self.listings[0]['url']})")
        first = next(problem for problem in problems if problem != DISALLOWED)
        raise BoardError(f"site {self.config.name}: every search page failed ({len(problems)}; first: {first})")

    # -- crawl --

    def crawl(self) -> None:
        """The job pages, up to `max_jobs` of them (a link to the site that carries no posting is no job)."""
        to_visit = []
        for link in self.links.values():
            if self.allowed(link.url):
                to_visit.append(link)
            else:
                self.disallowed.append(link.url)
        targeted = all(link.via != VIA_LINKS for link in to_visit)
        total = min(len(to_visit), self.config.max_jobs) if targeted else len(to_visit)
        with self.steps.step("crawl", total) as counts:
            counts["disallowed"] = len(self.disallowed)
            job_pages = 0
            for done, link in enumerate(to_visit, start=1):
                if job_pages >= self.config.max_jobs:
                    break
                page = self.read_job_page(link)
                self.pages.append(page)
                job_pages += _is_job_page(page)
                self._count_page(page, counts)
                self.steps.advance("crawl", done, total, counts)
            self.counts.update(counts)

    def read_job_page(self, link: JobLink) -> dict:
        """A job page's archive record: what it carries, or why it could not be read."""
        read = self.reader.read(link.url)
        page: dict[str, Any] = {"url": read.url, "via": link.via, "status": read.status}
        if read.url != link.url:
            page["link"] = link.url
        if read.error:
            page.update(items=[], language=None, problem=f"{FETCH_FAILED}: {read.error}")
            return page
        found = extract_job_postings(read.body, read.url)
        page.update(items=found.postings, language=found.language, problem=found.problem)
        if found.malformed:
            page["malformed"] = found.malformed
        return page

    def _count_page(self, page: dict, counts: Counter) -> None:
        problem = page["problem"] or ""
        counts["pages"] += 1
        counts["jobs_found"] += len(page["items"])
        counts["failed_pages"] += problem.startswith(FETCH_FAILED)
        counts["no_posting"] += problem == NO_POSTING
        counts["malformed"] += problem.startswith(MALFORMED)

    # -- the payload --

    def archive(self) -> bytes:
        """The crawl as UTF-8 JSON: `{"format", "site", "config", "crawled_at", "user_agent", "robots",
        "listings": [{url, keyword, page, status, links, via, new_links, problem?}], "pages": [{url, link?,
        via, status, items, language, problem, malformed?}], "disallowed": [url], "counts"}`."""
        listing_counts = Counter()
        for listing in self.listings:
            self._count_listing(listing, listing_counts)
        counts = {
            "listing_pages": listing_counts["pages"], "failed_listing_pages": listing_counts["failed_pages"],
            "links": len(self.links), "pages": self.counts["pages"], "jobs_found": self.counts["jobs_found"],
            "failed_pages": self.counts["failed_pages"], "no_posting": self.counts["no_posting"],
            "malformed": self.counts["malformed"],
            "disallowed": listing_counts["disallowed"] + len(self.disallowed)}
        document = {
            "format": PAYLOAD_FORMAT, "site": self.config.name, "config": self.config.model_dump(mode="json"),
            "crawled_at": self.crawled_at.isoformat(), "user_agent": self.client.policy.user_agent,
            "robots": self.robots_record, "listings": self.listings, "pages": self.pages,
            "disallowed": self.disallowed, "counts": counts}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _is_job_page(page: dict) -> bool:
    """Whether a page read counts against `max_jobs`: every page a selector or ItemList pointed at, and a
    page found among all links when it carries a posting (or a broken one)."""
    return page["via"] != VIA_LINKS or bool(page["items"]) or (page["problem"] or "").startswith(MALFORMED)


# --- the parse ---------------------------------------------------------------------------------------


def crawl_records(pages: list) -> Iterator[dict]:
    """One record per posting of every page, and one per page that should have had a posting and has
    none (no posting, malformed JSON-LD, a failed fetch), which the builder refuses with its reason.

    A page found among all links of a results page is a job only if it carries a posting: one without
    is not refused, unless its JSON-LD is malformed (it may have been a job's)."""
    for page in pages:
        if not isinstance(page, dict):
            yield {"problem": "not a crawled page", "page": page}
            continue
        url = page.get("url")
        items = page.get("items") or []
        # "id" is what a refused record is known by among the bad records: the page it came from
        for item in items:
            yield {"id": url, "page": url, "language": page.get("language"), "item": item}
        problem = page.get("problem")
        if items or not problem:
            continue
        problem = str(problem)
        if page.get("via") != VIA_LINKS or problem.startswith(MALFORMED):
            yield {"id": url, "page": url, "problem": problem}


def crawl_posting(record: dict, site: str, language: str | None) -> tuple[Posting, bool]:
    """The builder of a crawl's records: a posting, or ValueError with the page's problem, or for a
    posting in another language than the site's `language`."""
    if "problem" in record:
        raise ValueError(record["problem"])
    item = record["item"]
    stated = language_code(item.get("inLanguage")) if isinstance(item, dict) else None
    found = stated or language_code(record.get("language"))
    if language and found and found != language:
        raise ValueError(f"language {found}, not the site's {language}")
    return job_posting(item, record.get("page") or "", site, source=SOURCE)


def parse_site_crawl(payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
    """A crawl's postings; raises `BoardError` for a payload that is not a crawl's archive."""
    archive = decode_json(payload.body, payload.location, replace_bad_utf8=True)
    if not isinstance(archive, dict) or not isinstance(archive.get("pages"), list):
        raise BoardError(f"{payload.location}: not a site crawl (expected {{\"pages\": [...]}})")
    site = archive.get("site") if isinstance(archive.get("site"), str) else payload.board
    config = archive.get("config") if isinstance(archive.get("config"), dict) else {}
    language = language_code(config.get("language"))
    collector = PostingCollector(lambda record: crawl_posting(record, site, language))
    return collector.snapshot(site, crawl_records(archive["pages"]),
                              snapshot_at=_timestamp(archive.get("crawled_at")) or payload.fetched_at)


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --- the connector -----------------------------------------------------------------------------------


class SiteCrawlConnector:
    """Sites named by partition, crawled through the polite client `client_for` gives for each site's config."""

    name = SOURCE

    def __init__(self, site_config: Callable[[str], SiteConfig], client_for: Callable[[SiteConfig], PoliteClient],
                 *, browser_path: str = DEFAULT_BROWSER_PATH):
        self.site_config = site_config
        self.client_for = client_for
        self.browser_path = browser_path
        self._clients: dict[SiteConfig, PoliteClient] = {}

    def fetch(self, board: str, previous: RawPayload | None = None,
              progress: StepReporter | None = None) -> RawPayload:
        """The site's crawl as a payload; raises BoardError (its step failed) when the site cannot be
        crawled at all: unknown, unreachable, no browser, every search page failed."""
        steps = StepRunner(progress if progress is not None else NoReporter())
        with steps.step("initialize") as counts:
            config = self._config(board)
            client = self._client(config)
            counts["keywords"] = len(config.keywords)
        return SiteCrawl(config, client, steps, browser_path=self.browser_path).run()

    def _config(self, board: str) -> SiteConfig:
        try:
            return self.site_config(board)
        except BoardError:
            raise
        except (LookupError, ValueError) as exc:  # an unknown site, a config that no longer validates
            raise BoardError(f"site {board!r}: {exc}") from exc

    def _client(self, config: SiteConfig) -> PoliteClient:
        # one client per config: its pacer remembers the site's last request from one crawl to the next
        if config not in self._clients:
            self._clients[config] = self.client_for(config)
        return self._clients[config]

    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot:
        return parse_site_crawl(payload)

    def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
