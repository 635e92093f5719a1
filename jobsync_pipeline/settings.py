"""Where jobsync finds its store, bucket and Dagster instance: the environment, else embedded defaults."""
from __future__ import annotations

import os
from pathlib import Path

from jobsync_pipeline.sources import greenhouse, himalayas, lever, remoteok

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DATA_DIR = PROJECT_ROOT / "data" / "local"
SAMPLE_BUCKET_DIR = PROJECT_ROOT / "data" / "sample_bucket"

DATABASE_URL_VAR = "JOBSYNC_DATABASE_URL"
BUCKET_URL_VAR = "JOBSYNC_BUCKET_URL"
DAGSTER_HOME_VAR = "DAGSTER_HOME"
GREENHOUSE_URL_VAR = "JOBSYNC_GREENHOUSE_BASE_URL"
LEVER_URL_VAR = "JOBSYNC_LEVER_BASE_URL"
REMOTEOK_URL_VAR = "JOBSYNC_REMOTEOK_BASE_URL"
HIMALAYAS_URL_VAR = "JOBSYNC_HIMALAYAS_BASE_URL"
REMOTEOK_TAGS_VAR = "JOBSYNC_REMOTEOK_TAGS"

DEFAULT_DATABASE_URL = f"sqlite:///{LOCAL_DATA_DIR / 'jobsync.db'}"
DEFAULT_BUCKET_URL = str(SAMPLE_BUCKET_DIR / "snapshot_1")
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
DEFAULT_URLS = {
    BUCKET_URL_VAR: DEFAULT_BUCKET_URL,
    GREENHOUSE_URL_VAR: greenhouse.DEFAULT_BASE_URL,
    LEVER_URL_VAR: lever.DEFAULT_BASE_URL,
    REMOTEOK_URL_VAR: remoteok.DEFAULT_BASE_URL,
    HIMALAYAS_URL_VAR: himalayas.DEFAULT_BASE_URL,
}


def remoteok_tags() -> tuple[str, ...]:
    """The RemoteOK tags to cycle through (its static partitions): JOBSYNC_REMOTEOK_TAGS, comma-separated,
    else the default 13. Read when the code location loads; changing them changes the partitions."""
    configured = [tag.strip() for tag in os.environ.get(REMOTEOK_TAGS_VAR, "").split(",") if tag.strip()]
    return tuple(dict.fromkeys(configured)) or remoteok.DEFAULT_TAGS


def apply_defaults(*, dagster_home: bool = False) -> None:
    """Fill the unset jobsync variables with the embedded defaults (SQLite file, sample bucket, real API hosts).

    Called by the entry points (`definitions.py`, the CLI) before Dagster resolves `dg.EnvVar`s, so a
    laptop needs no configuration while production sets every variable. The CLI also asks for the
    local Dagster instance folder; a code server must not pick the instance, the webserver does.
    """
    if not os.environ.get(DATABASE_URL_VAR):
        LOCAL_DATA_DIR.mkdir(parents=True, exist_ok=True)
        os.environ[DATABASE_URL_VAR] = DEFAULT_DATABASE_URL
    for name, default in DEFAULT_URLS.items():
        if not os.environ.get(name):
            os.environ[name] = default
    if dagster_home and not os.environ.get(DAGSTER_HOME_VAR):
        os.environ[DAGSTER_HOME_VAR] = str(prepare_default_dagster_home())


def prepare_default_dagster_home() -> Path:
    """The local instance folder; its dagster.yaml is the project's embedded one (a symlink, never a copy)."""
    DEFAULT_DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    link = DEFAULT_DAGSTER_HOME / "dagster.yaml"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    return DEFAULT_DAGSTER_HOME
