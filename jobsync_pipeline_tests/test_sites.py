"""store/sites.py and sources/site_config.py: a site's configuration validated and kept in the store,
and whether it is synced, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobsync_pipeline.core.status import BoardStatus
from jobsync_pipeline.sources.site_config import SEED_SITE, SiteConfig
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.sites import SiteError

URL = "https://jobs.example.org/search/{keyword}?page={page}"


def test_defaults_and_what_a_configuration_keeps():
    site = SiteConfig(name="example", search_url=URL, keywords=" python , java,,python ")
    assert site.keywords == ("python", "java")
    assert (site.max_pages, site.request_delay, site.max_jobs, site.timeout, site.browser) == (5, 2.0, 100, 30.0, False)
    assert site.search_page("c++ developer", 2) == "https://jobs.example.org/search/c%2B%2B%20developer?page=2"
    assert site.host == "jobs.example.org"


@pytest.mark.parametrize("changes, problem", [
    ({"search_url": "ftp://x.org/{keyword}/{page}"}, "http(s) URL"),
    ({"search_url": "https://x.org/jobs?page={page}"}, "no {keyword}"),
    ({"search_url": "https://x.org/{keyword}"}, "no {page}"),
    ({"search_url": "https://x.org/{keyword}/{page}/{other}"}, "other than"),
    ({"keywords": " , "}, "at least one keyword"),
    ({"max_pages": 0}, "greater than or equal to 1"),
    ({"request_delay": -1}, "greater than or equal to 0"),
    ({"max_jobs": 0}, "greater than or equal to 1"),
    ({"timeout": 0}, "greater than 0"),
    ({"link_selector": "a[["}, "not a CSS selector"),
    ({"language": "english"}, "ISO 639"),
    ({"name": "../etc"}, "path separator"),
])
def test_a_bad_configuration_is_refused_with_its_reason(changes, problem):
    with pytest.raises(ValidationError) as refused:
        SiteConfig.model_validate({"name": "example", "search_url": URL, "keywords": ["python"], **changes})
    assert problem in str(refused.value)


def test_sites_are_stored_changed_and_switched_on_and_off(store_url):
    store = Store(store_url)
    info = store.sites.add(SiteConfig(name="example", search_url=URL, keywords=["python"], link_selector="a.job"))
    assert info.active and info.status == BoardStatus.ACTIVE
    assert store.boards.status("site_crawl", "example") == BoardStatus.ACTIVE
    with pytest.raises(SiteError, match="exists already"):
        store.sites.add(SiteConfig(name="example", search_url=URL, keywords=["x"]))
    changed = store.sites.set("example", {"max_pages": 2, "keywords": "go,rust"}, active=False)
    assert changed.config.max_pages == 2 and changed.config.keywords == ("go", "rust")
    assert changed.config.link_selector == "a.job"  # what was not named stays
    assert not changed.active and store.boards.status("site_crawl", "example") == BoardStatus.INACTIVE
    assert store.sites.active() == [] and store.boards.syncable("site_crawl") == []
    with pytest.raises(ValidationError):
        store.sites.set("example", {"max_pages": -3})
    assert store.sites.config("example").max_pages == 2  # a refused change writes nothing
    store.sites.set("example", {}, active=True)
    assert store.sites.active() == ["example"]
    with pytest.raises(SiteError, match="no site 'nope'"):
        store.sites.set("nope", {"max_pages": 1})


def test_the_seed_site_is_added_once_and_inactive(store_url):
    store = Store(store_url)
    seeded = store.sites.seed()
    assert seeded.config == SEED_SITE and not seeded.active
    assert seeded.config.keywords == ("python-developer", "java-developer", "javascript-developer")
    assert (seeded.config.max_pages, seeded.config.request_delay, seeded.config.max_jobs) == (5, 2.0, 100)
    assert store.sites.seed() is None
    assert [i.config.name for i in store.sites.list()] == ["topcv"]
