"""Where jobsync finds its store, bucket, API hosts and Dagster instance: the environment, else the
embedded defaults. Read when a resource or command needs them, never at import, and never written back."""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from jobsync_pipeline.sources import greenhouse, himalayas, lever, remoteok

DATABASE_URL_VAR = "JOBSYNC_DATABASE_URL"
BUCKET_URL_VAR = "JOBSYNC_BUCKET_URL"
DAGSTER_HOME_VAR = "DAGSTER_HOME"
REMOTEOK_TAGS_VAR = "JOBSYNC_REMOTEOK_TAGS"
MAX_FILE_BYTES_VAR = "JOBSYNC_MAX_FILE_BYTES"
POOL_WAIT_VAR = "JOBSYNC_POOL_WAIT_SECONDS"
NOTIFY_ALLOW_HOSTS_VAR = "JOBSYNC_NOTIFY_ALLOW_HOSTS"
OPS_CHANNELS_VAR = "JOBSYNC_OPS_CHANNELS"
BACKFILL_BOARDS_PER_RUN_VAR = "JOBSYNC_BACKFILL_BOARDS_PER_RUN"
DEFAULT_BACKFILL_BOARDS_PER_RUN = 1000
EXECUTOR_VAR = "JOBSYNC_EXECUTOR"
CELERY_BROKER_URL_VAR = "JOBSYNC_CELERY_BROKER_URL"
CELERY_BACKEND_URL_VAR = "JOBSYNC_CELERY_BACKEND_URL"
EXECUTORS = ("multiprocess", "celery")
DEFAULT_CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POOL_WAIT_SECONDS = 300.0
BASE_URL_VARS = {
    "greenhouse": "JOBSYNC_GREENHOUSE_BASE_URL",
    "lever": "JOBSYNC_LEVER_BASE_URL",
    "remoteok": "JOBSYNC_REMOTEOK_BASE_URL",
    "himalayas": "JOBSYNC_HIMALAYAS_BASE_URL",
}
DEFAULT_BASE_URLS = {
    "greenhouse": greenhouse.DEFAULT_BASE_URL,
    "lever": lever.DEFAULT_BASE_URL,
    "remoteok": remoteok.DEFAULT_BASE_URL,
    "himalayas": himalayas.DEFAULT_BASE_URL,
}

# Shipped with the package (package data), so an installed jobsync finds them wherever it runs.
PACKAGE_DATA = Path(str(files("jobsync_pipeline") / "data"))
SAMPLE_BUCKET = PACKAGE_DATA / "sample_bucket"
SEED_BOARDS = PACKAGE_DATA / "seed_boards.json"
DISCOVERY_CANDIDATES = PACKAGE_DATA / "discovery_candidates.txt"

# Laptop defaults, relative to the folder jobsync runs in (the project root for the README's commands).
LOCAL_STORE = Path("data") / "local" / "jobsync.db"
LOCAL_DAGSTER_HOME = Path(".dagster_home")


def database_url() -> str:
    """JOBSYNC_DATABASE_URL, else the local SQLite file data/local/jobsync.db."""
    return os.environ.get(DATABASE_URL_VAR) or f"sqlite:///{LOCAL_STORE.resolve()}"


def bucket_url() -> str:
    """JOBSYNC_BUCKET_URL, else the shipped sample bucket's first snapshot."""
    return os.environ.get(BUCKET_URL_VAR) or str(SAMPLE_BUCKET / "snapshot_1")


def ops_channels() -> list[str]:
    """JOBSYNC_OPS_CHANNELS: the operators' apprise URLs, comma-separated (empty: alerts are only logged)."""
    return [url.strip() for url in os.environ.get(OPS_CHANNELS_VAR, "").split(",") if url.strip()]


def notify_allow_hosts() -> str:
    """JOBSYNC_NOTIFY_ALLOW_HOSTS: hosts or CIDR ranges channels may reach although private (empty: none)."""
    return os.environ.get(NOTIFY_ALLOW_HOSTS_VAR, "")


class ConfigError(ValueError):
    """A jobsync environment variable holds something jobsync cannot use; the message says what to set."""


def max_file_bytes(default: int) -> int:
    """JOBSYNC_MAX_FILE_BYTES (a whole number of bytes, > 0), else `default`."""
    text = os.environ.get(MAX_FILE_BYTES_VAR, "").strip().replace("_", "")
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"{MAX_FILE_BYTES_VAR}={os.environ[MAX_FILE_BYTES_VAR]!r} is not a size in bytes; "
                         "set a whole number, e.g. 52428800 for 50 MB")
    return int(text)


def pool_wait_seconds() -> float:
    """JOBSYNC_POOL_WAIT_SECONDS: how long a CLI sync waits for its API host's pool slot (default 300)."""
    text = os.environ.get(POOL_WAIT_VAR, "").strip()
    if not text:
        return DEFAULT_POOL_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ConfigError(f"{POOL_WAIT_VAR}={text!r} is not a number of seconds; set e.g. 300")
    return seconds


def base_url(source: str) -> str:
    """JOBSYNC_{SOURCE}_BASE_URL, else the source's real API host."""
    return os.environ.get(BASE_URL_VARS[source]) or DEFAULT_BASE_URLS[source]


def remoteok_tags() -> tuple[str, ...]:
    """The RemoteOK tags to cycle through (its static partitions): JOBSYNC_REMOTEOK_TAGS, comma-separated,
    else the default 13. Read when the code location loads; changing them changes the partitions."""
    configured = [tag.strip() for tag in os.environ.get(REMOTEOK_TAGS_VAR, "").split(",") if tag.strip()]
    return tuple(dict.fromkeys(configured)) or remoteok.DEFAULT_TAGS


def backfill_boards_per_run() -> int:
    """JOBSYNC_BACKFILL_BOARDS_PER_RUN: a backfill of a lane's boards is split into runs of at most this many
    boards (default 1,000). Not much more: Dagster stores a run's planned check evaluations once per
    partition, each with the run's whole list of partitions, so that part of a run's start grows with the
    square of its boards (seconds at 1,000, most of ten minutes and gigabytes at 10,000). Fewer spread a
    backfill over a distributed executor's workers."""
    text = os.environ.get(BACKFILL_BOARDS_PER_RUN_VAR, "").strip().replace("_", "")
    if not text:
        return DEFAULT_BACKFILL_BOARDS_PER_RUN
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"{BACKFILL_BOARDS_PER_RUN_VAR}={os.environ[BACKFILL_BOARDS_PER_RUN_VAR]!r} is not a number "
                          f"of boards; set a whole number > 0, e.g. 100 (default {DEFAULT_BACKFILL_BOARDS_PER_RUN})")
    return int(text)


def executor() -> str:
    """JOBSYNC_EXECUTOR: where the runs' steps execute, read when the definitions are built: `multiprocess`
    (the default: Dagster's, a process per step beside the run's) or `celery` (on Celery workers,
    deploy/celery/)."""
    text = os.environ.get(EXECUTOR_VAR, "").strip().lower()
    if not text:
        return "multiprocess"
    if text not in EXECUTORS:
        raise ConfigError(f"{EXECUTOR_VAR}={os.environ[EXECUTOR_VAR]!r} is not an executor; set one of "
                          f"{', '.join(EXECUTORS)}, or leave it unset for multiprocess")
    return text


def celery_broker_url_set() -> bool:
    """Whether JOBSYNC_CELERY_BROKER_URL is set (else the executor uses DEFAULT_CELERY_BROKER_URL, a Redis on
    this machine)."""
    return bool(os.environ.get(CELERY_BROKER_URL_VAR, "").strip())


def celery_backend_url_set() -> bool:
    """Whether JOBSYNC_CELERY_BACKEND_URL is set (else the step results go back through the broker's Redis)."""
    return bool(os.environ.get(CELERY_BACKEND_URL_VAR, "").strip())
