"""Resources: thin, configurable adapters around the pure store and bucket classes."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
from pydantic import Field

from jobsync_pipeline import settings
from jobsync_pipeline.sources.bucket import DEFAULT_MAX_FILE_BYTES, Bucket
from jobsync_pipeline.sources.jobspy import Scrape, installed_scrape
from jobsync_pipeline.sources.http import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_USER_AGENT,
    HttpPolicy,
    PoliteClient,
)
from jobsync_pipeline.sources.pacing import Pacer
from jobsync_pipeline.sources.site_config import SiteConfig
from jobsync_pipeline.sources.site_crawl import site_policy
from jobsync_pipeline.store import Store
from jobsync_pipeline.store.alerts import FollowupTimings
from jobsync_pipeline.store.pacing import shared_pacer


class StoreResource(dg.ConfigurableResource):
    """The jobsync store: SQLite file by default, PostgreSQL in production (same code)."""

    url: str | None = Field(default=None, description=(
        "SQLAlchemy URL of the store, e.g. postgresql://user@host/db. Leave unset and set JOBSYNC_DATABASE_URL "
        "(it may hold a password); with neither, the local SQLite file data/local/jobsync.db."))

    def resolved_url(self) -> str:
        return self.url or settings.database_url()

    def store(self) -> Store:
        return Store(self.resolved_url())


class BucketResource(dg.ConfigurableResource):
    """The bucket the outside scraper drops `{company}.json` files into."""

    url: str | None = Field(default=None, description=(
        "A local folder or any fsspec URL (s3://bucket/prefix with the s3 extra). Unset: JOBSYNC_BUCKET_URL, "
        "else the shipped sample bucket."))
    max_file_bytes: int | None = Field(default=None, gt=0, description=(
        "Refuse a company file larger than this many bytes. Unset: JOBSYNC_MAX_FILE_BYTES, else 10 MB."))

    def bucket(self) -> Bucket:
        return Bucket(self.url or settings.bucket_url(),
                      max_file_bytes=self.max_file_bytes or settings.max_file_bytes(DEFAULT_MAX_FILE_BYTES))


class HttpResource(dg.ConfigurableResource):
    """The polite HTTP client every HTTP source shares: per-host pacing, retries, conditional GETs."""

    requests_per_second: float = Field(default=1.0, gt=0, description="Requests per second per ATS API host.")
    feed_requests_per_second: float = Field(
        default=0.5, gt=0, le=0.5, description="Requests per second per aggregator feed host (RemoteOK, "
                                                "Himalayas): at most 0.5, at least 2 seconds between requests.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts per request before the board fails.")
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    read_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a response.")
    request_deadline_seconds: float = Field(
        default=DEFAULT_DEADLINE_SECONDS, gt=0, description=(
            "Seconds one attempt at an ATS request (redirects included) may take from sending to the last byte "
            "of the answer; past it the attempt fails and is retried like a timeout. The read timeout is per "
            "read: a server dripping bytes would never trip it."))
    feed_request_deadline_seconds: float = Field(
        default=120.0, gt=0, description="The same deadline for an aggregator feed page (RemoteOK, Himalayas), "
                                         "whose answers are larger.")
    retry_after_cap: float = Field(default=120.0, gt=0,
                                   description="A Retry-After longer than this fails the board instead of waiting.")
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, description="Refuse larger responses.")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, description="Sent with every request.")
    greenhouse_base_url: str | None = Field(default=None, description=(
        "Greenhouse job board API base URL. Unset: JOBSYNC_GREENHOUSE_BASE_URL, else the real host."))
    lever_base_url: str | None = Field(default=None, description=(
        "Lever postings API base URL. Unset: JOBSYNC_LEVER_BASE_URL, else the real host."))
    remoteok_base_url: str | None = Field(default=None, description=(
        "RemoteOK API base URL. Unset: JOBSYNC_REMOTEOK_BASE_URL, else the real host."))
    himalayas_base_url: str | None = Field(default=None, description=(
        "Himalayas API base URL. Unset: JOBSYNC_HIMALAYAS_BASE_URL, else the real host."))
    pacing_store_url: str | None = Field(default=None, description=(
        "The store whose host_pacing slots every process shares, so each host's rate holds across lanes, "
        "discovery and the CLI together. Unset: the store the store resource uses by default "
        "(JOBSYNC_DATABASE_URL, else the local SQLite file)."))

    chromium_path: str = Field(default="/usr/bin/chromium", description=(
        "The system's Chromium, which a site crawled with --browser renders its pages in (no browser is ever "
        "downloaded)."))

    def base_url(self, source: str) -> str:
        return getattr(self, f"{source}_base_url") or settings.base_url(source)

    def pacer(self) -> Pacer | None:
        """The per-host slots shared by every process using the store (None for an in-memory store: each
        client then paces its own requests)."""
        return shared_pacer(self.pacing_store_url or settings.database_url())

    def client(self, requests_per_second: float | None = None, deadline_seconds: float | None = None) -> PoliteClient:
        """A client pacing each host at `requests_per_second` (default: the ATS rate), in slots shared
        with every other client and process of the instance (see `pacer`), giving each attempt
        `deadline_seconds` (default: the ATS request deadline)."""
        return PoliteClient(HttpPolicy(
            requests_per_second=requests_per_second or self.requests_per_second, max_attempts=self.max_attempts,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            deadline_seconds=deadline_seconds or self.request_deadline_seconds,
            retry_after_cap=self.retry_after_cap, max_body_bytes=self.max_body_bytes, user_agent=self.user_agent),
            pacer=self.pacer())


    def site_client(self, site: SiteConfig) -> PoliteClient:
        """A client for one crawled site: at least its request delay between requests to its host (in slots
        shared with every process, like the APIs'), each page within its timeout."""
        return PoliteClient(site_policy(
            site, max_attempts=self.max_attempts, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            retry_after_cap=self.retry_after_cap, max_body_bytes=self.max_body_bytes, user_agent=self.user_agent),
            pacer=self.pacer())


class SyncPolicyResource(dg.ConfigurableResource):
    """How the schedules and the board lifecycle behave."""

    batch_size: int = Field(default=50, ge=1, description="Boards per scheduled sync tick, stalest first.")
    retire_after_not_found: int = Field(
        default=3, ge=1, description="Retire a board (and expire its jobs) after this many consecutive 404s.")
    feed_max_age_days: float = Field(
        default=30, gt=0, description="A feed's job (RemoteOK, Himalayas) not seen for this many days expires "
                                      "(feeds list recent jobs: absence alone is not expiry).")
    step_history_syncs: int = Field(
        default=50, ge=1, description="Each board keeps the step details (sync_steps) of this many of its latest "
                                      "completed syncs; the syncs rows themselves stay.")
    feed_max_pages: int = Field(
        default=50, ge=1, description="Stop paging a feed (Himalayas) after this many pages: its newest jobs "
                                      "come first, and each page costs a paced request.")


class SearchPolicyResource(dg.ConfigurableResource):
    """How saved searches run: who gets scheduled runs, when a run counts as stuck, what a run keeps."""

    active_user_days: float = Field(
        default=30, gt=0, description="The schedule enqueues runs only for users seen (a command, an API call) "
                                      "within this many days.")
    stuck_after_minutes: float = Field(
        default=30, gt=0, description="A search run still `running` after this long lost its process: it goes "
                                      "back to `pending` (at most 3 attempts), then `failed`.")
    max_results: int = Field(default=500, ge=1, le=10_000,
                             description="The best matches a run keeps in search_run_results.")
    count_limit: int = Field(
        default=1000, ge=1, le=1_000_000,
        description="jobs_found counts matches up to this many (at least max_results); a run at the limit says "
                    "jobs_found_capped: there are at least that many. Counting every match of a broad search "
                    "means reading them all.")


class LiveSitesResource(dg.ConfigurableResource):
    """Live job-site searches through JobSpy (the `jobspy` extra), for saved searches naming live sites."""

    results_wanted_per_site: int = Field(
        default=20, ge=1, le=1000, description="Postings a search run asks of each live site (shared out over the "
                                               "search's locations); each one costs the site a scraped result.")
    max_age_days: float = Field(
        default=30, gt=0, description="A live site's posting no live search has shown for this many days expires "
                                      "(a live search lists a few of a site's jobs: absence alone is not expiry).")
    country_indeed: str = Field(
        default="usa", description="The country whose Indeed and Glassdoor a live search asks (JobSpy's "
                                   "country_indeed: usa, uk, germany, india, …).")

    def scraper(self) -> Scrape:
        """JobSpy's `scrape_jobs`, imported when a search needs it; `JobSpyMissing` without the extra."""
        return installed_scrape()


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources with their embedded defaults: each reads its environment variable when it is used."""
    return {"store": StoreResource(), "bucket": BucketResource(), "http": HttpResource(),
            "sync_policy": SyncPolicyResource(), "search_policy": SearchPolicyResource(),
            "live_sites": LiveSitesResource(), "notify": NotifyResource()}


class NotifyResource(dg.ConfigurableResource):
    """Alerts: how digests are delivered and retried, and the follow-ups of an alert confirmation."""

    allow_hosts: str | None = Field(default=None, description=(
        "Hosts or CIDR ranges (comma-separated) that channels may reach although they are loopback or private. "
        "Leave unset to read JOBSYNC_NOTIFY_ALLOW_HOSTS (empty: none)."))
    outbox_folder: str = Field(default="data/local/outbox", description=(
        "The dev default channel: a user without channels gets each digest as a Markdown file here. Empty: "
        "a user without channels gets nothing (the notifications end `skipped`)."))
    per_user: int = Field(default=100, ge=1, le=10_000, description=(
        "Notifications one delivery pass takes of one user (one digest), so one user's backlog never starves "
        "the others."))
    users_per_pass: int = Field(default=200, ge=1, description="Users one delivery pass serves.")
    max_retries: int = Field(default=3, ge=1, le=20, description=(
        "Failed deliveries a notification may have (its retry_count): after each it is tried again later "
        "(exponential backoff), after this many it stays `failed` (`jobsync notifications retry` revives it)."))
    lease_minutes: float = Field(default=10, gt=0, description=(
        "A pass that claimed notifications and died: after this long they are due again."))
    reminder_hours: float = Field(default=24, gt=0, description="A started, unconfirmed alert's reminder, after this long.")
    pause_check_hours: float = Field(default=48, gt=0, description=(
        "A started alert still unconfirmed after this long is paused."))
    followups_per_pass: int = Field(default=10, ge=1, description="Follow-ups one pass processes at most.")
    retention_days: float = Field(default=3, gt=0, description=(
        "Sent and skipped notifications, deliveries and processed follow-ups older than this are removed."))

    def allowed(self) -> str:
        return self.allow_hosts if self.allow_hosts is not None else settings.notify_allow_hosts()

    def outbox(self) -> Path | None:
        return Path(self.outbox_folder) if self.outbox_folder.strip() else None

    def timings(self) -> FollowupTimings:
        return FollowupTimings(reminder_after=timedelta(hours=self.reminder_hours),
                               pause_check_after=timedelta(hours=self.pause_check_hours))
