"""`jobsync sites …`, `jobsync sync site_crawl --progress` and `jobsync syncs list|show` through the
installed entry point, as operators run them, against the local job site."""
from __future__ import annotations

import json

import pytest

from jobsync_pipeline.core.steps import CRAWL_STEPS
from jobsync_pipeline_tests.local_site import SITE_NAME, local_site
from jobsync_pipeline_tests.test_cli import env, jobsync  # noqa: F401 - the fixture

SITE_KEYS = ["name", "search_url", "keywords", "max_pages", "request_delay", "max_jobs", "timeout", "browser",
             "link_selector", "language", "active", "status", "created_at", "updated_at", "last_synced_at"]
SYNC_KEYS = ["id", "source", "board", "run_id", "status", "counts", "error", "started_at", "finished_at",
             "duration_seconds"]
STEP_KEYS = ["name", "status", "done", "total", "counts", "error", "started_at", "finished_at", "seconds"]


def ok(env, *args) -> dict | list:
    done = jobsync(env, *args, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def refused(env, *args) -> str:
    """A command a user got wrong: exit 1 and one line on stderr, no traceback."""
    done = jobsync(env, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_sites_are_seeded_added_changed_and_listed(env):
    seeded = ok(env, "sites", "seed")
    assert seeded["added"] and list(seeded["site"]) == SITE_KEYS
    site = seeded["site"]
    assert (site["name"], site["active"], site["max_pages"], site["request_delay"], site["max_jobs"]) == (
        "topcv", False, 5, 2.0, 100)
    assert site["keywords"] == ["python-developer", "java-developer", "javascript-developer"]
    assert ok(env, "sites", "seed")["added"] is False

    added = ok(env, "sites", "add", "example", "--search-url", "https://jobs.example.org/{keyword}?page={page}",
               "--keywords", "python,go", "--max-pages", "2", "--request-delay", "3", "--link-selector", "a.job")
    assert (added["active"], added["keywords"], added["max_pages"], added["request_delay"], added["timeout"]) == (
        True, ["python", "go"], 2, 3.0, 30.0)
    changed = ok(env, "sites", "set", "example", "--inactive", "--max-jobs", "7", "--browser")
    assert (changed["active"], changed["status"], changed["max_jobs"], changed["browser"], changed["max_pages"]) == (
        False, "inactive", 7, True, 2)
    assert [s["name"] for s in ok(env, "sites", "list")] == ["example", "topcv"]
    text = jobsync(env, "sites", "list").stdout
    assert "example (inactive): https://jobs.example.org/{keyword}?page={page} for python, go" in text


@pytest.mark.parametrize("args, says", [
    (("add", "x", "--search-url", "https://x.org/jobs", "--keywords", "a"), "search-url: search URL"),
    (("add", "x", "--search-url", "https://x.org/{keyword}/{page}", "--keywords", " , "), "at least one keyword"),
    (("add", "x", "--search-url", "https://x.org/{keyword}/{page}", "--keywords", "a", "--max-pages", "0"),
     "max-pages"),
    (("add", "x", "--search-url", "https://x.org/{keyword}/{page}", "--keywords", "a", "--link-selector", "a[["),
     "not a CSS selector"),
    (("set", "nope", "--max-pages", "2"), "no site 'nope'"),
])
def test_a_bad_site_is_one_line_and_writes_nothing(env, args, says):
    assert says in refused(env, "sites", *args)
    assert ok(env, "sites", "list") == []


def test_a_crawl_from_the_command_line_shows_its_steps_live_and_afterwards(env):
    ok(env, "sites", "seed")
    assert "site 'topcv' is inactive; `jobsync sites set topcv --active`" in refused(
        env, "sync", "site_crawl", "--board", "topcv")
    assert "no site 'nowhere'" in refused(env, "sync", "site_crawl", "--board", "nowhere")
    with local_site() as (server, config):
        ok(env, "sites", "add", SITE_NAME, "--search-url", config.search_url, "--keywords", ",".join(config.keywords),
           "--request-delay", "0", "--language", "en")
        done = jobsync(env, "sync", "site_crawl", "--board", SITE_NAME, "--progress")
    assert done.returncode == 0, done.stderr
    # not a terminal: one line per step change, in order, each step's end among them
    ended = [line for line in done.stderr.splitlines() if " completed " in line or " skipped " in line]
    assert [line.split()[2] for line in ended] == list(CRAWL_STEPS.all())
    assert f"{SITE_NAME}  " in done.stdout and "success" in done.stdout  # the usual table

    (sync,) = ok(env, "syncs", "list", "--source", "site_crawl")
    assert list(sync) == SYNC_KEYS and sync["status"] == "success" and sync["counts"]["new"] > 0
    assert ok(env, "syncs", "list", "--source", "site_crawl", "--board", "topcv") == []
    shown = ok(env, "syncs", "show", str(sync["id"]))
    assert [s["name"] for s in shown["steps"]] == list(CRAWL_STEPS.all())
    assert all(list(s) == STEP_KEYS for s in shown["steps"])
    crawl = next(s for s in shown["steps"] if s["name"] == "crawl")
    assert crawl["status"] == "completed" and crawl["done"] == crawl["total"] and crawl["counts"]["jobs_found"] > 0
    text = jobsync(env, "syncs", "show", str(sync["id"])).stdout
    assert f"site_crawl/{SITE_NAME}" in text and "✓ crawl" in text and "- start_browser" in text
    assert "no sync 999" in refused(env, "syncs", "show", "999")
