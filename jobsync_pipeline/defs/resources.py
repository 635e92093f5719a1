"""Resources: thin, configurable adapters around the pure store and bucket classes."""

import dagster as dg
from pydantic import Field

from jobsync_pipeline.settings import BUCKET_URL_VAR, DATABASE_URL_VAR
from jobsync_pipeline.sources.bucket import DEFAULT_MAX_FILE_BYTES, Bucket
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


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "store": StoreResource(url=dg.EnvVar(DATABASE_URL_VAR)),
        "bucket": BucketResource(url=dg.EnvVar(BUCKET_URL_VAR)),
    }
