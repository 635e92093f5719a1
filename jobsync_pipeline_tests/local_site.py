"""A local job site for tests and benchmarks, served on 127.0.0.1 by `LocalServer`: search result pages
for two keywords and job pages carrying schema.org JobPosting in every shape the crawler must read.

    with local_site(request_delay=0.2) as (server, config):
        connector = SiteCrawlConnector(lambda name: config, polite_client_for)
        payload = connector.fetch(config.name)

What the site holds (every URL in its pages is relative, so the pages are the same on any port):

* `robots.txt` disallows `/jobs/private/` for every user agent (`DISALLOWED_PATH` is linked from a
  results page and must never be requested).
* "python", pages 1 and 2: plain links (no ItemList), page 2 the same as page 1, so the keyword
  stops there; among the links a page with no posting (`/about`), a link off the site, a fragment
  and the next results page. Job links carry class `job-link` for `link_selector` tests.
* "java", pages 1 and 2: a JSON-LD ItemList of job URLs (page 2 the same again).
* Job pages (`JOB_PAGES`): `@graph`, a top-level list of two postings, microdata only, no posting,
  malformed JSON-LD alone and beside a good block, HTML entities, an hourly MonetaryAmount range,
  TELECOMMUTE with an applicant Country, a past `validThrough`, one answering 429 (`Retry-After: 1`)
  once, one in Vietnamese.

`generated_site(jobs)` is a site of many similar job pages, for benchmarks.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobsync_pipeline.sources.http import PoliteClient
from jobsync_pipeline.sources.site_config import SiteConfig
from jobsync_pipeline.sources.site_crawl import site_policy
from jobsync_pipeline_tests.http_server import LocalServer, Reply

SITE_NAME = "localsite"
KEYWORDS = ("python", "java")
SEARCH_PATH = "/search?q={keyword}&page={page}"
MAX_PAGES = 3
ROBOTS_TXT = b"User-agent: *\nDisallow: /jobs/private/\n"
DISALLOWED_PATH = "/jobs/private/secret"
THROTTLED_PATH = "/jobs/busy"
NOT_A_JOB_PATH = "/about"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def html_page(body: str = "", *, json_ld: tuple[Any, ...] = (), lang: str | None = "en", title: str = "Jobs") -> bytes:
    """A page with JSON-LD blocks (objects are dumped; a string is put in as it is: malformed JSON)."""
    blocks = "".join(f'<script type="application/ld+json">{b if isinstance(b, str) else json.dumps(b)}</script>'
                     for b in json_ld)
    lang_attribute = f' lang="{lang}"' if lang else ""
    return (f'<!doctype html><html{lang_attribute}><head><meta charset="utf-8"><title>{title}</title>{blocks}'
            f"</head><body>{body}</body></html>").encode()


def job_ld(title: str, identifier: Any, **fields: Any) -> dict:
    return {"@context": "https://schema.org", "@type": "JobPosting", "title": title, "identifier": identifier,
            "hiringOrganization": {"@type": "Organization", "name": "Acme"}, "datePosted": "2026-11-20", **fields}


GRAPH = {"@context": "https://schema.org", "@graph": [
    {"@type": "WebPage", "@id": "/jobs/graph", "name": "Senior Python Engineer at Acme"},
    {"@type": "JobPosting", "title": "Senior Python Engineer",
     "identifier": {"@type": "PropertyValue", "name": "Acme", "value": "ACME-101"},
     "hiringOrganization": {"@type": "Organization", "name": "Acme", "sameAs": "https://acme.example"},
     "datePosted": "2026-11-20T09:00:00+07:00", "validThrough": "2027-01-31T17:00:00+07:00",
     "employmentType": ["FULL_TIME", "CONTRACTOR"],
     "jobLocation": [
         {"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": "Hanoi",
                                        "addressRegion": "HN", "addressCountry": "VN"}},
         {"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": "Da Nang",
                                        "addressCountry": {"@type": "Country", "name": "Vietnam"}}}],
     "baseSalary": {"@type": "MonetaryAmount", "currency": "usd", "value": {
         "@type": "QuantitativeValue", "minValue": 40000, "maxValue": 60000, "unitText": "YEAR"}},
     "description": "<p>Build the <b>platform</b>.</p><ul><li>Python</li><li>SQL</li></ul>",
     "url": "/jobs/graph"}]}

PAIR = [job_ld("Backend Developer", 1001, hiringOrganization="Pair Co", baseSalary=2500, url="/jobs/pair#1"),
        job_ld("Frontend Developer", "PAIR-2", hiringOrganization="Pair Co", baseSalary="1,500", url="/jobs/pair#2")]

MICRODATA_BODY = """
<div itemscope itemtype="https://schema.org/JobPosting">
  <h1 itemprop="title">Data &amp; ML Engineer</h1>
  <link itemprop="url" href="/jobs/microdata">
  <meta itemprop="identifier" content="MD-7">
  <meta itemprop="datePosted" content="2026-11-18">
  <div itemprop="hiringOrganization" itemscope itemtype="https://schema.org/Organization">
    <span itemprop="name">Microdata Labs</span></div>
  <div itemprop="jobLocation" itemscope itemtype="https://schema.org/Place">
    <div itemprop="address" itemscope itemtype="https://schema.org/PostalAddress">
      <span itemprop="addressLocality">Ho Chi Minh City</span>,
      <span itemprop="addressCountry">Vietnam</span></div></div>
  <div itemprop="baseSalary" itemscope itemtype="https://schema.org/MonetaryAmount">
    <meta itemprop="currency" content="VND">
    <div itemprop="value" itemscope itemtype="https://schema.org/QuantitativeValue">
      <meta itemprop="value" content="30000000"><meta itemprop="unitText" content="MONTH"></div></div>
  <span itemprop="employmentType">FULL_TIME</span>
  <div itemprop="description"><p>Train models.</p><p>Ship them.</p></div>
</div>"""

BROKEN_LD = '{"@context": "https://schema.org", "@type": "JobPosting", "title": "Broken" "identifier": "B-1"}'
BREADCRUMB_BROKEN = '{"@type": "BreadcrumbList", "itemListElement": [{"position": 1,}'

ENTITIES = job_ld("R&amp;D Engineer &ndash; Tools", "ENT-1", hiringOrganization={"name": "Smith &amp; Sons"},
                  description="&lt;p&gt;Fish &amp;amp; chips, every &lt;b&gt;Friday&lt;/b&gt;&lt;/p&gt;")
HOURLY = job_ld("Support Engineer", "HR-1", baseSalary={
    "@type": "MonetaryAmount", "currency": "EUR",
    "value": {"@type": "QuantitativeValue", "minValue": 25, "maxValue": 35.5, "unitText": "HOUR"}},
    jobLocation={"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": "Berlin",
                                               "addressCountry": "DE"}})
REMOTE = job_ld("Remote Python Developer", "RM-1", jobLocationType="TELECOMMUTE",
                applicantLocationRequirements={"@type": "Country", "name": "Vietnam"})
EXPIRED = job_ld("Old Java Job", "EX-1", validThrough="2020-01-31")
THROTTLED = job_ld("Busy Engineer", "BUSY-1")
VIETNAMESE = job_ld("Lập trình viên Python", "VI-1", inLanguage="vi")
MIXED = job_ld("Mixed Blocks Engineer", "MIX-1")

# path -> page body; /jobs/busy answers 429 first (see `routes`)
JOB_PAGES: dict[str, bytes] = {
    "/jobs/graph": html_page("<h1>Senior Python Engineer</h1>", json_ld=(GRAPH,)),
    "/jobs/pair": html_page("<h1>Two jobs</h1>", json_ld=(PAIR,)),
    "/jobs/microdata": html_page(MICRODATA_BODY),
    "/jobs/broken": html_page("<h1>Broken</h1>", json_ld=(BROKEN_LD,)),
    "/jobs/mixed": html_page("<h1>Mixed</h1>", json_ld=(BREADCRUMB_BROKEN, MIXED)),
    "/jobs/entities": html_page("<h1>R&amp;D Engineer</h1>", json_ld=(ENTITIES,)),
    "/jobs/hourly": html_page("<h1>Support</h1>", json_ld=(HOURLY,)),
    "/jobs/remote": html_page("<h1>Remote</h1>", json_ld=(REMOTE,)),
    "/jobs/expired": html_page("<h1>Old</h1>", json_ld=(EXPIRED,)),
    THROTTLED_PATH: html_page("<h1>Busy</h1>", json_ld=(THROTTLED,)),
    "/jobs/vi": html_page("<h1>Lập trình viên Python</h1>", json_ld=(VIETNAMESE,), lang="vi"),
    "/jobs/empty": html_page("<h1>This job is no longer listed</h1>"),
    DISALLOWED_PATH: html_page("<h1>Private</h1>", json_ld=(job_ld("Secret", "SECRET-1"),)),
    NOT_A_JOB_PATH: html_page("<h1>About us</h1><p>No jobs here.</p>"),
}
PYTHON_JOBS = ("/jobs/graph", "/jobs/pair", "/jobs/microdata", "/jobs/broken", "/jobs/entities", DISALLOWED_PATH,
               THROTTLED_PATH)
JAVA_JOBS = ("/jobs/hourly", "/jobs/remote", "/jobs/expired", "/jobs/vi", "/jobs/empty", "/jobs/mixed", "/jobs/graph")


def search_path(keyword: str, page: int) -> str:
    return SEARCH_PATH.format(keyword=keyword, page=page)


def links_listing(keyword: str, jobs: tuple[str, ...]) -> bytes:
    """A results page of plain links: the jobs (class job-link) among links that are not jobs."""
    cards = "".join(f'<li><a class="job-link" href="{path}">{path}</a> <a href="{path}#apply">apply</a></li>'
                    for path in jobs)
    return html_page(f'<nav><a href="{NOT_A_JOB_PATH}">About</a> <a href="https://elsewhere.example/jobs/1">x</a> '
                     f'<a href="mailto:jobs@example.org">mail</a></nav><ul>{cards}</ul>'
                     f'<a href="{search_path(keyword, 2)}">next</a>', title=f"{keyword} jobs")


def item_list_listing(keyword: str, jobs: tuple[str, ...]) -> bytes:
    """A results page listing its jobs in a JSON-LD ItemList (and as links, for a selector)."""
    item_list = {"@context": "https://schema.org", "@type": "ItemList", "itemListElement": [
        {"@type": "ListItem", "position": n, "url": path} for n, path in enumerate(jobs, start=1)]}
    cards = "".join(f'<a class="job-link" href="{path}">{path}</a>' for path in jobs)
    return html_page(f'<a href="{NOT_A_JOB_PATH}">About</a>{cards}', json_ld=(item_list,), title=f"{keyword} jobs")


def routes() -> dict[str, Any]:
    """The site's routes for `LocalServer`; a path not listed answers 404."""
    site: dict[str, Any] = {"/robots.txt": Reply(body=ROBOTS_TXT, headers={"Content-Type": "text/plain"})}
    for page in (1, 2):  # page 2 repeats page 1: no new job link, the keyword stops there
        site[search_path("python", page)] = Reply(body=links_listing("python", PYTHON_JOBS), headers=HTML)
        site[search_path("java", page)] = Reply(body=item_list_listing("java", JAVA_JOBS), headers=HTML)
    for path, body in JOB_PAGES.items():
        site[path] = Reply(body=body, headers=HTML)
    site[THROTTLED_PATH] = [Reply(429, b"slow down", {"Retry-After": "1"}), Reply(body=JOB_PAGES[THROTTLED_PATH],
                                                                               headers=HTML)]
    return site


def site_config(server: LocalServer, **overrides: Any) -> SiteConfig:
    fields: dict[str, Any] = {"name": SITE_NAME, "search_url": server.url(SEARCH_PATH), "keywords": KEYWORDS,
                              "max_pages": MAX_PAGES, "request_delay": 0.0, "max_jobs": 100, "timeout": 10.0,
                              "language": "en"}
    return SiteConfig(**{**fields, **overrides})


@contextmanager
def local_site(**overrides: Any) -> Iterator[tuple[LocalServer, SiteConfig]]:
    """The site running, and its config (`overrides` change any SiteConfig field)."""
    with LocalServer(routes()) as server:
        yield server, site_config(server, **overrides)


def polite_client_for(config: SiteConfig, **policy: Any) -> PoliteClient:
    """A client as the lane builds one for a site: paced at its request delay, its timeout the deadline
    (quick backoff: a local server's trouble is a test's)."""
    return PoliteClient(site_policy(config, **{"backoff_base": 0.01, **policy}))


# --- many pages, for benchmarks ----------------------------------------------------------------------


def generated_job_page(n: int) -> bytes:
    posting = job_ld(f"Engineer {n}", f"GEN-{n}", url=f"/jobs/gen-{n}", validThrough="2027-06-30",
                     jobLocation={"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": "Hanoi",
                                                                "addressCountry": "VN"}},
                     baseSalary={"@type": "MonetaryAmount", "currency": "USD", "value": {
                         "@type": "QuantitativeValue", "minValue": 1000 + n, "maxValue": 2000 + n,
                         "unitText": "MONTH"}},
                     description=f"<p>Role {n}: build things.</p>" * 20)
    return html_page(f"<h1>Engineer {n}</h1>" + "<p>Lorem ipsum dolor sit amet.</p>" * 50, json_ld=(posting,))


def generated_routes(jobs: int, per_page: int = 20) -> dict[str, Any]:
    """A site of `jobs` job pages listed `per_page` to a results page of the keyword "bench"; the page
    after the last repeats it."""
    site: dict[str, Any] = {"/robots.txt": Reply(body=b"User-agent: *\nDisallow:\n")}
    paths = [f"/jobs/gen-{n}" for n in range(jobs)]
    pages = max(1, -(-jobs // per_page))
    for page in range(1, pages + 2):
        chunk = tuple(paths[(min(page, pages) - 1) * per_page:min(page, pages) * per_page])
        site[search_path("bench", page)] = Reply(body=item_list_listing("bench", chunk), headers=HTML)
    for n, path in enumerate(paths):
        site[path] = Reply(body=generated_job_page(n), headers=HTML)
    return site


@contextmanager
def generated_site(jobs: int, per_page: int = 20, **overrides: Any) -> Iterator[tuple[LocalServer, SiteConfig]]:
    """A site of `jobs` job pages and its config (all of them crawled unless `overrides` say less)."""
    pages = max(1, -(-jobs // per_page)) + 1
    with LocalServer(generated_routes(jobs, per_page)) as server:
        yield server, site_config(server, **{"keywords": ("bench",), "max_pages": pages, "max_jobs": jobs,
                                             "language": None, **overrides})
