"""Resources: thin, configurable adapters around the pure store and bucket classes."""

import dagster as dg
from pydantic import Field

from jobsync_pipeline.settings import (BUCKET_URL_VAR, DATABASE_URL_VAR, GREENHOUSE_URL_VAR, HIMALAYAS_URL_VAR,
                                      LEVER_URL_VAR, REMOTEOK_URL_VAR)
from jobsync_pipeline.sources.bucket import DEFAULT_MAX_FILE_BYTES, Bucket
from jobsync_pipeline.sources.greenhouse import DEFAULT_BASE_URL as GREENHOUSE_URL
from jobsync_pipeline.sources.http import DEFAULT_MAX_BODY_BYTES, DEFAULT_USER_AGENT, HttpPolicy, PoliteClient
from jobsync_pipeline.sources.himalayas import DEFAULT_BASE_URL as HIMALAYAS_URL
from jobsync_pipeline.sources.lever import DEFAULT_BASE_URL as LEVER_URL
from jobsync_pipeline.sources.remoteok import DEFAULT_BASE_URL as REMOTEOK_URL
from jobsync_pipeline.store import Store


class StoreResource(dg.ConfigurableResource):
    """The jobsync store: SQLite file by default, PostgreSQL in production (same code)."""

    url: str = Field(description="SQLAlchemy URL of the store, e.g. sqlite:///data/local/jobsync.db or "
                                 "postgresql://user@host/db. Set JOBSYNC_DATABASE_URL; it may hold a password.")

    def store(self) -> Store:
        return Store(self.url)


class BucketResource(dg.ConfigurableResource):
    """The bucket the outside scraper drops `{company}.json` files into."""

    url: str = Field(description="A local folder or any fsspec URL (s3://bucket/prefix with the s3 extra). "
                                 "Set JOBSYNC_BUCKET_URL; the default is the shipped sample folder.")
    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, gt=0,
                                description="Refuse a company file larger than this many bytes.")

    def bucket(self) -> Bucket:
        return Bucket(self.url, max_file_bytes=self.max_file_bytes)


class HttpResource(dg.ConfigurableResource):
    """The polite HTTP client every HTTP source shares: per-host pacing, retries, conditional GETs."""

    requests_per_second: float = Field(default=1.0, gt=0, description="Requests per second per ATS API host.")
    feed_requests_per_second: float = Field(
        default=0.5, gt=0, le=0.5, description="Requests per second per aggregator feed host (RemoteOK, "
                                                "Himalayas): at most 0.5, at least 2 seconds between requests.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts per request before the board fails.")
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    read_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a response.")
    retry_after_cap: float = Field(default=120.0, gt=0,
                                   description="A Retry-After longer than this fails the board instead of waiting.")
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, description="Refuse larger responses.")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, description="Sent with every request.")
    greenhouse_base_url: str = Field(default=GREENHOUSE_URL, description="Greenhouse job board API base URL.")
    lever_base_url: str = Field(default=LEVER_URL, description="Lever postings API base URL.")
    remoteok_base_url: str = Field(default=REMOTEOK_URL, description="RemoteOK API base URL.")
    himalayas_base_url: str = Field(default=HIMALAYAS_URL, description="Himalayas API base URL.")

    def client(self, requests_per_second: float | None = None) -> PoliteClient:
        """A client pacing each host at `requests_per_second` (default: the ATS rate)."""
        return PoliteClient(HttpPolicy(
            requests_per_second=requests_per_second or self.requests_per_second, max_attempts=self.max_attempts,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            retry_after_cap=self.retry_after_cap, max_body_bytes=self.max_body_bytes, user_agent=self.user_agent))


class SyncPolicyResource(dg.ConfigurableResource):
    """How the schedules and the board lifecycle behave."""

    batch_size: int = Field(default=50, ge=1, description="Boards per scheduled sync tick, stalest first.")
    retire_after_not_found: int = Field(
        default=3, ge=1, description="Retire a board (and expire its jobs) after this many consecutive 404s.")
    feed_max_age_days: float = Field(
        default=30, gt=0, description="A feed's job (RemoteOK, Himalayas) not seen for this many days expires "
                                      "(feeds list recent jobs: absence alone is not expiry).")
    feed_max_pages: int = Field(
        default=50, ge=1, description="Stop paging a feed (Himalayas) after this many pages: its newest jobs "
                                      "come first, and each page costs a paced request.")


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "store": StoreResource(url=dg.EnvVar(DATABASE_URL_VAR)),
        "bucket": BucketResource(url=dg.EnvVar(BUCKET_URL_VAR)),
        "http": HttpResource(greenhouse_base_url=dg.EnvVar(GREENHOUSE_URL_VAR),
                             lever_base_url=dg.EnvVar(LEVER_URL_VAR),
                             remoteok_base_url=dg.EnvVar(REMOTEOK_URL_VAR),
                             himalayas_base_url=dg.EnvVar(HIMALAYAS_URL_VAR)),
        "sync_policy": SyncPolicyResource(),
    }
