"""Site crawl: the crawler's own cost, the pace it keeps, and the cost of reading JobPosting off a page.

Against the local job site of the tests (`jobsync_pipeline_tests.local_site`, a `LocalServer` on
127.0.0.1), with the product's `SiteCrawlConnector` over a `PoliteClient` paced at the site's delay:

* Throughput: a generated site of `--jobs` job pages (20 to a results page, JSON-LD JobPosting, ~3 KB
  each) crawled at request_delay 0, so the figure is the crawler's own cost (HTTP, extraction, the
  archive) and the local server's, the whole fetch and its crawl step alone (job pages only); then the
  parse of the payload. `--browser` adds the same crawl
  rendered in Chromium (`--browser-jobs` pages), when /usr/bin/chromium is there.
* Pacing: a short crawl (robots.txt, two results pages, three job pages: 6 requests) at the default
  request_delay of 2.0 s; the gaps between the requests as the client sent them and as the server
  received them. The pacer spaces the slots 10 ms more than the delay (`PACING_MARGIN_SECONDS`: a
  request leaves a little after its slot, and the first one also opens the connection); the script
  exits non-zero when any gap, as sent or as received, is under the delay.
* Extraction: `extract_job_postings` on every job page of the test site (JSON-LD, @graph, microdata,
  malformed, …) and on a generated page, `--rounds` times each: median and p95 per page, in ms
  (extruct's own import, ~0.3 s once per process, left out).

    .venv/bin/python benchmarks/site_crawl.py [--jobs 200] [--rounds 50] [--browser] [--browser-jobs 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere: the package and its test helpers

from jobsync_pipeline.sources.deadline import DeadlineTransport  # noqa: E402
from jobsync_pipeline.sources.http import PoliteClient  # noqa: E402
from jobsync_pipeline.sources.jobposting import extract_job_postings  # noqa: E402
from jobsync_pipeline.sources.site_config import DEFAULT_REQUEST_DELAY  # noqa: E402
from jobsync_pipeline.sources.site_crawl import SiteCrawlConnector, parse_site_crawl, site_policy  # noqa: E402
from jobsync_pipeline_tests.local_site import (JOB_PAGES, generated_job_page, generated_site,  # noqa: E402
                                               polite_client_for)

CHROMIUM = "/usr/bin/chromium"
PACED_JOBS = 3  # robots.txt + 2 results pages + 3 job pages = 6 requests


class StepClock:
    """A StepReporter noting when each step started and ended."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self, step, total=None):
        self.started[step] = time.perf_counter()

    def advance(self, step, done, total=None, counts=None):
        pass

    def finish(self, step, counts=None):
        self.seconds[step] = time.perf_counter() - self.started[step]

    def fail(self, step, error, counts=None):
        raise SystemExit(f"step {step} failed: {error}")

    def skip(self, step, reason):
        pass


def crawl(config) -> tuple[object, float, StepClock]:
    connector = SiteCrawlConnector(lambda name: config, polite_client_for, browser_path=CHROMIUM)
    steps = StepClock()
    try:
        started = time.perf_counter()
        payload = connector.fetch(config.name, progress=steps)
        return payload, time.perf_counter() - started, steps
    finally:
        connector.close()


def throughput(jobs: int, *, browser: bool = False) -> None:
    with generated_site(jobs, browser=browser) as (server, config):
        payload, seconds, steps = crawl(config)
        requests = len(server.hits)
    started = time.perf_counter()
    parsed = parse_site_crawl(payload)
    parse_seconds = time.perf_counter() - started
    mode = "Chromium" if browser else "HTTP"
    browser_start = f", browser start {steps.seconds['start_browser']:.2f} s" if browser else ""
    print(f"throughput ({mode}, request_delay 0): {jobs} job pages, {requests} requests in {seconds:.2f} s = "
          f"{requests / seconds:.1f} pages/s; crawl step alone {jobs / steps.seconds['crawl']:.1f} job pages/s"
          f"{browser_start}; {parsed.found} postings, payload {len(payload.body) / 1024:.0f} KB, "
          f"parse {parse_seconds * 1000:.0f} ms")
    if parsed.found != jobs:
        raise SystemExit(f"expected {jobs} postings, parsed {parsed.found}")


class StampedTransport(DeadlineTransport):
    """The client's own transport, noting when each request leaves (after the pacer let it go)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []

    def handle_request(self, request):
        self.sent.append(time.monotonic())
        return super().handle_request(request)


def pacing() -> bool:
    """The gaps as the client sent the requests (what the pacer guarantees) and as the server received
    them (what the site sees: the first request also opens the connection, so it arrives a little later)."""
    transport = StampedTransport()
    # max_jobs above the jobs listed: the second results page is read (and brings nothing new)
    with generated_site(PACED_JOBS, request_delay=DEFAULT_REQUEST_DELAY, max_jobs=PACED_JOBS + 1) as (server, config):
        client = PoliteClient(site_policy(config), transport=transport)
        connector = SiteCrawlConnector(lambda name: config, lambda c: client)
        started = time.perf_counter()
        connector.fetch(config.name)
        seconds = time.perf_counter() - started
        connector.close()
        received = [hit.at for hit in server.hits]
    ok = True
    for side, times in (("sent", transport.sent), ("received", received)):
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        print(f"pacing (request_delay {DEFAULT_REQUEST_DELAY:.1f} s), {side}: {len(times)} requests in "
              f"{seconds:.2f} s; gap mean {statistics.mean(gaps):.4f} s, min {min(gaps):.4f} s, "
              f"max {max(gaps):.4f} s")
        ok = ok and min(gaps) >= DEFAULT_REQUEST_DELAY
    return ok


def extraction(rounds: int) -> None:
    """Per page, extruct imported already: the test site's 14 shapes, and a generated page."""
    for label, pages in (("test pages", JOB_PAGES), ("generated page", {"/jobs/gen-1": generated_job_page(1)})):
        timings: list[float] = []
        for _ in range(rounds):
            for path, body in pages.items():
                started = time.perf_counter()
                extract_job_postings(body, f"http://127.0.0.1{path}")
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        size = statistics.mean(len(body) for body in pages.values()) / 1024
        print(f"extraction, {label} ({len(pages)}, {size:.1f} KB on average) x {rounds}: "
              f"median {statistics.median(timings):.3f} ms, p95 {p95:.3f} ms per page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="job pages of the throughput crawl")
    parser.add_argument("--rounds", type=int, default=50, help="extractions of each page")
    parser.add_argument("--browser", action="store_true", help="also crawl in Chromium")
    parser.add_argument("--browser-jobs", type=int, default=50, help="job pages of the Chromium crawl")
    args = parser.parse_args()

    extract_job_postings(generated_job_page(0), "http://127.0.0.1/")  # extruct's import (~0.3 s) is no crawl's
    throughput(args.jobs)
    if args.browser:
        if os.path.exists(CHROMIUM):
            throughput(args.browser_jobs, browser=True)
        else:
            print(f"throughput (Chromium): skipped, no Chromium at {CHROMIUM}")
    paced = pacing()
    extraction(args.rounds)
    if not paced:
        raise SystemExit(f"FAILED: requests closer than the {DEFAULT_REQUEST_DELAY} s request delay")


if __name__ == "__main__":
    main()
